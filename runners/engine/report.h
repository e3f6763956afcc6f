// Renders run summaries: text (default), JSON (the schema the Python orchestration reads),
// KTAP (kselftest) and JUnit XML. Mutant kill matrices in text and JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runners/engine/mutants.h"
#include "runners/engine/results.h"

namespace tdxhp::engine {

// Where a result comes from: tdxhp version and commit, the kernel release, the run's target with
// its flavour and what is known of the TDX module.
nlohmann::json provenance_json(const RunSummary&);
nlohmann::json to_json(const RunSummary&);
nlohmann::json to_json(const MutantMatrix&);
std::string to_text(const RunSummary&);
std::string to_text(const MutantMatrix&);
std::string to_ktap(const RunSummary&);
std::string to_junit(const RunSummary&);

// results.json, results.ktap and junit.xml under dir (atomic writes).
void write_result_files(const std::string& dir, const RunSummary&);
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace tdxhp::engine
