#include "domain/case_file.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace tdxhp {
namespace {

constexpr const char* kGood = R"({
  "format": 1, "id": "demo",
  "config": {"slots": [{"gfn": "0x0", "npages": 1024}], "backing": "hugetlb-2m"},
  "ops": [
    {"op": "convert", "gfn": "0x200", "npages": 1, "to": "shared"},
    {"op": "accept", "gfn": "0x200", "level": "2M"},
    {"op": "access", "gfn": 5, "write": true, "value": "0xabc"},
    {"op": "inject", "site": "demote", "fault": "busy"}
  ]
})";

std::string error_of(const std::string& text) {
  try {
    parse_case(text, "t.json");
  } catch (const CaseError& e) {
    return e.what();
  }
  return "";
}

TEST(CaseFile, RoundTrips) {
  CaseFile c = parse_case(kGood, "t.json");
  ASSERT_EQ(c.scenario.ops.size(), 4u);
  EXPECT_EQ(std::get<Convert>(c.scenario.ops[0]).range, (GfnRange{0x200, 1}));
  EXPECT_EQ(std::get<Accept>(c.scenario.ops[1]).level, Level::L2M);
  EXPECT_EQ(std::get<Access>(c.scenario.ops[2]).value, 0xabcu);
  CaseFile again = parse_case(dump_case(c), "again");
  EXPECT_EQ(dump_case(again), dump_case(c));
  EXPECT_EQ(again.scenario.config, c.scenario.config);
}

TEST(CaseFile, NotJsonNamesThePosition) {
  std::string e = error_of("{\"format\": 1,\n  \"ops\": [}");
  EXPECT_NE(e.find("t.json: not valid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
}

TEST(CaseFile, UnknownOpNamesTheField) {
  std::string text = kGood;
  text.replace(text.find("\"accept\""), 8, "\"acept\"");
  std::string e = error_of(text);
  EXPECT_NE(e.find("ops[1].op: unknown op kind \"acept\""), std::string::npos) << e;
}

TEST(CaseFile, BadLevelNamesTheField) {
  std::string text = kGood;
  text.replace(text.find("\"2M\""), 4, "\"3M\"");
  std::string e = error_of(text);
  EXPECT_NE(e.find("ops[1].level: expected one of 4K, 2M, 1G, got \"3M\""), std::string::npos) << e;
}

TEST(CaseFile, OutOfRangeGfnNamesTheField) {
  std::string text = kGood;
  text.replace(text.find("\"0x200\", \"npages\": 1"), 7, "\"0xffffffffffff\"");
  std::string e = error_of(text);
  EXPECT_NE(e.find("ops[0].gfn: gfn 0xffffffffffff is beyond the 52-bit GPA space"), std::string::npos) << e;
}

TEST(CaseFile, MissingFieldAndWrongTypes) {
  EXPECT_NE(error_of(R"({"format": 1, "config": {"slots": [{"gfn": 0, "npages": 8}]}})").find("ops: missing"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"format": 2})").find("format: unsupported case format 2"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find("top level"), std::string::npos);
  EXPECT_NE(error_of(R"({"format": 1, "config": {"slots": [{"gfn": -1, "npages": 8}]}, "ops": []})")
                .find("config.slots[0].gfn: must not be negative"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"format": 1, "config": {"slots": [{"gfn": "zz", "npages": 8}]}, "ops": []})")
                .find("config.slots[0].gfn: expected a number"),
            std::string::npos);
}

TEST(CaseFile, OverlappingSlotsAreRejected) {
  std::string e = error_of(
      R"({"format": 1, "config": {"slots": [{"gfn": 0, "npages": 1024}, {"gfn": 512, "npages": 8}]}, "ops": []})");
  EXPECT_NE(e.find("overlaps"), std::string::npos) << e;
}

// The bad inputs of shared/findings (new-user-and-bad-input.md D4-D6, D10), rebuilt here: each
// is refused with the field and the limit, and none reaches the sim.
std::string with_config(const std::string& config, const std::string& ops = "[]") {
  return R"({"format": 1, "config": )" + config + R"(, "ops": )" + ops + "}";
}

TEST(CaseFile, DeepNestingIsRefusedWhileParsing) {  // D4: a stack overflow printing the value
  const std::string deep = std::string(100000, '[') + "true" + std::string(100000, ']');
  const std::string e = error_of(R"({"format": 1, "ops": [{"op": "access", "gfn": 0, "write": )" + deep + "}]}");
  EXPECT_NE(e.find("nesting deeper than 16 levels"), std::string::npos) << e.substr(0, 300);
  EXPECT_LT(e.size(), 200u);
}

TEST(CaseFile, ErrorsQuoteOnlyAShortEscapedPrefix) {
  std::string text = kGood;
  text.replace(text.find("\"2M\""), 4, "\"\\u001b[31m" + std::string(500, 'x') + "\"");
  const std::string e = error_of(text);
  EXPECT_NE(e.find("ops[1].level: expected one of 4K, 2M, 1G, got \"\\u001b[31mxxx"), std::string::npos) << e;
  EXPECT_LT(e.size(), 160u) << e;
  EXPECT_EQ(e.find('\x1b'), std::string::npos);
}

TEST(CaseFile, NumbersAreDecimalOrHexOnly) {
  for (const char* bad : {"\"010\"", "\" 1\"", "\"-1\"", "\"+1\"", "\"0x\"", "\"18446744073709551616\"", "1.5"}) {
    const std::string e = error_of(with_config(R"({"slots": [{"gfn": )" + std::string(bad) + R"(, "npages": 8}]})"));
    EXPECT_NE(e.find("config.slots[0].gfn: "), std::string::npos) << bad << ": " << e;
  }
  EXPECT_EQ(error_of(with_config(R"({"slots": [{"gfn": "0x10", "npages": "16"}]})")), "");
}

TEST(CaseFile, GmemOffsetNearTwoToThe64IsRefused) {  // D5: SIGSEGV in the sim
  const std::string e =
      error_of(with_config(R"({"slots": [{"gfn": "0x100000", "npages": 4096, "gmem_offset": "0xffffffffffffffff"}]})"));
  EXPECT_NE(e.find("config: slots[0].gmem_offset: "), std::string::npos) << e;
}

TEST(CaseFile, HugePrefaultIsRefusedBeforeAnythingRuns) {  // D6: 24 GB and an OOM kill
  const std::string e = error_of(with_config(R"({"slots": [{"gfn": 0, "npages": 1099511627776}], "backing": "hugetlb-2m"})",
                                             R"([{"op": "prefault", "gfn": 0, "npages": 1099511627776}])"));
  EXPECT_NE(e.find("ops[0].npages: a prefault faults in at most 262144 folios"), std::string::npos) << e;
  // The limit counts folios: 2^18 folios of 1G (2^36 pages) are fine.
  EXPECT_EQ(error_of(with_config(R"({"slots": [{"gfn": 0, "npages": 1099511627776}], "backing": "hugetlb-1g"})",
                                 R"([{"op": "prefault", "gfn": 0, "npages": 68719476736}])")),
            "");
}

TEST(CaseFile, BadBuildPagesAreInputErrors) {  // D10: reported as a property failure with no reason
  EXPECT_NE(error_of(with_config(R"({"slots": [{"gfn": "0x100000", "npages": 4096}],
                                     "build_pages": [{"gfn": "0x13ffff", "npages": 2}]})"))
                .find("config: build_pages[0]: gfn [0x13ffff, 0x140001) (8K) is not inside one memslot"),
            std::string::npos);
  EXPECT_NE(error_of(with_config(R"({"slots": [{"gfn": "0x100000", "npages": 4096}],
                                     "build_pages": [{"gfn": "0x100000", "npages": 4294967296}]})"))
                .find("config: build_pages[0].npages: at most 65536 build pages in all"),
            std::string::npos);
  EXPECT_NE(error_of(with_config(R"({"slots": [{"gfn": 0, "npages": 8}], "initially_private": false,
                                     "build_pages": [{"gfn": 0, "npages": 1}]})"))
                .find("initially_private is false"),
            std::string::npos);
}

TEST(CaseFile, SlotAndOpCountsAreBounded) {
  std::string slots;
  for (int i = 0; i < 257; ++i) slots += std::string(i ? "," : "") + R"({"gfn": )" + std::to_string(i * 8) + R"(, "npages": 8})";
  EXPECT_NE(error_of(with_config(R"({"slots": [)" + slots + "]}")).find("config.slots: at most 256 memslots, got 257"),
            std::string::npos);
}

TEST(CaseFile, ADirectoryIsNotACaseFile) {
  try {
    load_case(::testing::TempDir());
    FAIL() << "loaded a directory";
  } catch (const CaseError& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST(CaseFile, SaveIsAtomicAndLoadable) {
  auto dir = std::filesystem::temp_directory_path() / ("tdxhp-case-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / "c.json").string();
  CaseFile c = parse_case(kGood, "t.json");
  save_case(path, c);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_EQ(dump_case(load_case(path)), dump_case(c));
  std::filesystem::remove_all(dir);
  try {
    load_case(path);
    FAIL() << "loading a missing file must throw";
  } catch (const CaseError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot open"), std::string::npos);
  }
}

TEST(CaseFile, PendingCaseIsRewrittenInPlaceAndALaterShorterCaseStillLoads) {
  auto dir = std::filesystem::temp_directory_path() / ("tdxhp-pending-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "pending-p.json").string();
  CaseFile longer = parse_case(kGood, "t.json"), shorter = longer;
  longer.description = std::string(500, 'x');
  shorter.description = "short";
  {
    PendingCaseFile pending(path);
    pending.save(longer);
    EXPECT_EQ(dump_case(load_case(path)), dump_case(longer));
    pending.save(shorter);  // padded to the longer one's size: what is left of it must not show
    EXPECT_EQ(dump_case(load_case(path)), dump_case(shorter));
    EXPECT_GT(std::filesystem::file_size(path), dump_case(shorter).size());
  }
  EXPECT_TRUE(std::filesystem::exists(path)) << "a case left open (a crash) stays on disk";
  PendingCaseFile again(path);
  again.save(shorter);
  EXPECT_EQ(std::filesystem::file_size(path), dump_case(shorter).size()) << "a new run starts the file afresh";
  again.remove();
  EXPECT_FALSE(std::filesystem::exists(path));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tdxhp
