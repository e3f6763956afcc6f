// `tdxhp export --c`: a case file as one self-contained C program in the style of a KVM
// selftest on libkvm-selftests, for kernel developers to run without tdxhp (issue 17).
#pragma once

#include <string>

#include "domain/case_file.h"

namespace tdxhp::exporter {

// Flavours a reproducer can build: a SW-protected VM (private memory through guest_memfd and
// KVM_SET_MEMORY_ATTRIBUTES, as in 6.12) or a plain VM (one memfd per slot, no private memory).
// A TD is not exported yet.
enum class Flavour { SwProt, Plain };

// Why flavour cannot express case c ("" when it can); names the op or config field.
std::string refusal(const CaseFile& c, Flavour f);

// The C source. Expected results come from replaying c on the clean sim with the oracle in
// lockstep: each step's return code the oracle accepted, and each read's value the oracle
// requires. Throws std::runtime_error when the clean sim cannot build the case's config.
std::string export_c(const CaseFile& c, Flavour f, const std::string& case_path);

}  // namespace tdxhp::exporter
