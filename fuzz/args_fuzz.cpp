// libFuzzer harness for the CLI argument parser: the input is an argument list, one argument
// per line after the verb; it either parses or is a UsageError (exit 2), whose message stays short.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "runners/cli/args.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> words{"tdxhp"};
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\n') {
      words.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  words.push_back(cur);
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  try {
    tdxhp::cli::parse_args(static_cast<int>(words.size()), argv.data());
  } catch (const tdxhp::cli::UsageError& e) {
    if (std::string(e.what()).size() > 400) std::abort();  // messages quote a short prefix only
  }
  return 0;
}
