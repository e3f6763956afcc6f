// `tdxhp export --c`: a case file as one self-contained C program in the style of a KVM
// selftest on libkvm-selftests, for kernel developers to run without tdxhp (issue 17).
#pragma once

#include <string>

#include "domain/case_file.h"

namespace tdxhp::exporter {

// Flavours a reproducer can build: a SW-protected VM (private memory through guest_memfd and
// KVM_SET_MEMORY_ATTRIBUTES, as in 6.12), a plain VM (one memfd per slot, no private memory),
// or a TD on the TDX selftest library of the huge-page series' tree (intel/tdx), which this
// machine can compile against a stand-in but never run (export_tdx.cpp).
enum class Flavour { SwProt, Plain, Tdx };
const char* flavour_name(Flavour f);

// Why flavour cannot express case c ("" when it can); names the op or config field.
std::string refusal(const CaseFile& c, Flavour f);
std::string tdx_refusal(const CaseFile& c);
// swprot, else plain, else tdx: the first flavour that can express c (tdx may still refuse).
Flavour default_flavour(const CaseFile& c);

// The C source. Expected results come from replaying c on the clean sim with the oracle in
// lockstep: each step's return code the oracle accepted, and each read's value the oracle
// requires. Throws std::invalid_argument when the flavour refuses c, std::runtime_error when
// the clean sim cannot build the case's config.
std::string export_c(const CaseFile& c, Flavour f, const std::string& case_path);
std::string export_tdx(const CaseFile& c, const std::string& case_path);

}  // namespace tdxhp::exporter
