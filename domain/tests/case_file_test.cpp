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

}  // namespace
}  // namespace tdxhp
