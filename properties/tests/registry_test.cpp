#include <gtest/gtest.h>

#include <map>

#include "domain/catalog.h"
#include "properties/registry.h"

namespace tdxhp {
namespace {

TEST(Registry, EveryInvariantBelongsToExactlyOneProperty) {
  std::map<std::string, int> owners;
  for (auto& p : properties())
    for (auto& inv : p.invariants) {
      EXPECT_NE(find_invariant(inv), nullptr) << p.id << " names unknown " << inv;
      ++owners[inv];
    }
  for (auto& inv : invariants()) EXPECT_EQ(owners[std::string(inv.id)], 1) << inv.id;
}

TEST(Registry, MissingCapabilityIsASkipWithTheTargetsReason) {
  Caps plain;
  plain.has = {Cap::PrivateMemory, Cap::PunchHole, Cap::GuestData, Cap::LeafLevels};
  plain.missing[Cap::Accept] = "not a TDX VM";
  auto why = skip_reason(*find_property("accept-level"), plain);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("accept"), std::string::npos);
  EXPECT_NE(why->find("not a TDX VM"), std::string::npos);
  EXPECT_FALSE(skip_reason(*find_property("data-atomic"), plain));
  EXPECT_FALSE(skip_reason(*find_property("precise-conversion"), plain));  // punch is enough
  EXPECT_TRUE(skip_reason(*find_property("sim-internals"), plain));
}

TEST(Registry, ProfileCarriesTheTargetCaps) {
  Caps c;
  c.has = {Cap::PrivateMemory};
  auto g = profile_for(*find_property("data-atomic"), c);
  EXPECT_EQ(g.caps.has, c.has);
}

}  // namespace
}  // namespace tdxhp
