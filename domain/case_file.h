// Case files (DESIGN.md "Case files"): versioned JSON, self-contained, editable by hand.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "domain/types.h"

namespace tdxhp {

constexpr int kCaseFormat = 1;
constexpr Gfn kGfnLimit = Gfn{1} << 40;  // 52-bit guest physical address width

struct CaseFile {
  int format = kCaseFormat;
  std::string id;            // file stem: SC-*, MUT-*, or a failure signature
  std::string description;
  Scenario scenario;
  std::optional<uint64_t> seed;
  std::string reproduce;     // RapidCheck reproduce string, when it came from a run
  std::string target = "sim";
  std::vector<std::string> mutants;   // sim mutants that were on when it failed
  std::string property;               // property id that found it
  std::optional<Violation> violation; // the first violation seen
  std::vector<std::string> scenarios; // SC-* shapes it exercises
  // Fixture contract: passes on the clean sim; fails under `mutant` with one of `invariants`.
  struct Catches {
    std::string mutant;
    std::vector<std::string> invariants;
  };
  std::optional<Catches> catches;
};

// Thrown for anything malformed; what() names the file, the field path and the problem.
class CaseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

CaseFile parse_case(const std::string& json_text, const std::string& origin = "case");
CaseFile load_case(const std::string& path);
std::string dump_case(const CaseFile&);
// Writes to a temporary file, fsyncs, then renames: a crash never leaves half a case.
void save_case(const std::string& path, const CaseFile&);

// The case a real target is running, on disk before it runs so a host crash mid-case loses
// nothing. Rewritten in place, one pwrite and one fdatasync per case (no new inode, no rename):
// 1.1 ms here against 2.8 ms for save_case. A shorter case is padded with spaces, which JSON
// ignores, so the file's size only grows. A crash during the write itself can tear the file, but
// then the case in it had not started: the previous one had finished.
class PendingCaseFile {
 public:
  explicit PendingCaseFile(std::string path) : path_(std::move(path)) {}
  ~PendingCaseFile();
  PendingCaseFile(const PendingCaseFile&) = delete;
  PendingCaseFile& operator=(const PendingCaseFile&) = delete;
  void save(const CaseFile&);
  void remove();  // nothing is running
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  size_t size_ = 0;
};
// The fixture that pins mutant `id` in `dir`: <id>.json, else a case whose `catches` names it
// (a real-KVM INV-*.json fixture, issue 13); "" when there is none. Unreadable files are skipped.
std::string fixture_for_mutant(const std::string& dir, std::string_view id);

// Structural checks shared by the parser and the generators: slots in range, not overlapping.
// Returns an error message naming the field, or empty when valid.
// Limits of what a case may ask for (exit 2 beyond them): KVM allows 32764 memslots per address
// space, tdxhp models fewer; the others bound what one case makes the model hold.
constexpr size_t kMaxSlots = 256;
constexpr size_t kMaxOps = 100000;
constexpr uint64_t kMaxBuildPages = 65536;         // 256 MiB of TDH.MEM.PAGE.ADD
constexpr uint64_t kMaxPrefaultFolios = 1u << 18;  // folios one prefault may allocate
constexpr int kMaxDepth = 16;                      // JSON nesting of a case file
constexpr uint64_t kMaxCaseBytes = 64ull << 20;    // a case file's size

std::string validate_config(const Config&);
std::string validate_op(const Op&);
// A prefault allocates every folio of its range: at most kMaxPrefaultFolios of the config's
// backing per op ("ops[2].npages: ..." names the offending one).
std::string validate_prefaults(const Config&, const std::vector<Op>&);

}  // namespace tdxhp
