// libFuzzer harness for the case-file parser: any input either parses or is a CaseError
// (exit 2 in the CLI); a parsed case must also survive a save/load round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "domain/case_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  tdxhp::CaseFile c;
  try {
    c = tdxhp::parse_case(text, "fuzz.json");
  } catch (const tdxhp::CaseError&) {
    return 0;
  }
  const std::string saved = tdxhp::dump_case(c);
  const tdxhp::CaseFile again = tdxhp::parse_case(saved, "saved.json");  // a CaseError here is a bug
  if (tdxhp::dump_case(again) != saved) std::abort();
  return 0;
}
