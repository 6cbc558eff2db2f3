// The id map (host/identity.h): parsing of the command-line forms, both
// directions of the mapping, overflow ids, squash, and callers in host terms.
#include "host/identity.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace fsout::host {
namespace {

TEST(IdMap, ParsesRangesAndRefusesBadOnes) {
  IdRange r = IdMap::parse_range("1000:201000:100");
  EXPECT_EQ(r.guest, 1000u);
  EXPECT_EQ(r.host, 201000u);
  EXPECT_EQ(r.count, 100u);
  for (const char* bad : {"", "1000:2000", "1:2:3:4", "a:1:1", "1:-1:1", "1:1:0", "4294967295:0:1",
                          "4294967290:0:10", " 1:1:1", "1::1"})
    EXPECT_THROW(IdMap::parse_range(bad), std::invalid_argument) << bad;
  EXPECT_EQ(IdMap::parse_squash("4321:4322"), std::make_pair(4321u, 4322u));
  for (const char* bad : {"", "1", "1:2:3", "x:1", "1:"})
    EXPECT_THROW(IdMap::parse_squash(bad), std::invalid_argument) << bad;
}

TEST(IdMap, IdentityByDefault) {
  IdMap ids;
  EXPECT_TRUE(ids.identity());
  EXPECT_EQ(ids.uid_to_host(0), 0u);
  EXPECT_EQ(ids.uid_to_host(123456), 123456u);
  EXPECT_EQ(ids.gid_to_guest(77), 77u);
}

TEST(IdMap, RangesMapBothWaysAndOverflowOutside) {
  IdMap ids;
  ids.add_uid_range({0, 0, 1});
  ids.add_uid_range({1000, 201000, 100});
  EXPECT_FALSE(ids.identity());
  EXPECT_EQ(ids.uid_to_host(0), 0u);
  EXPECT_EQ(ids.uid_to_host(1000), 201000u);
  EXPECT_EQ(ids.uid_to_host(1099), 201099u);
  EXPECT_EQ(ids.uid_to_host(1100), std::nullopt);
  EXPECT_EQ(ids.uid_to_host(999), std::nullopt);
  EXPECT_EQ(ids.uid_to_guest(201050), 1050u);
  EXPECT_EQ(ids.uid_to_guest(1000), kOverflowId);
  EXPECT_EQ(ids.uid_to_guest(201100), kOverflowId);
  // Groups without ranges stay the identity.
  EXPECT_EQ(ids.gid_to_host(1000), 1000u);
  EXPECT_THROW(ids.add_uid_range({1050, 300000, 10}), std::invalid_argument);  // guest overlap
  EXPECT_THROW(ids.add_uid_range({5000, 201090, 20}), std::invalid_argument);  // host overlap
}

TEST(IdMap, CallersInHostTerms) {
  IdMap ids;
  ids.add_uid_range({1000, 201000, 100});
  ids.add_gid_range({1000, 201000, 100});
  auto caller = to_host(ids, protocol::Caller{1005, 1006, {1007, 5, 1099}});
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller.value().uid, 201005u);
  EXPECT_EQ(caller.value().gid, 201006u);
  // An unmapped supplementary group is dropped (it grants nothing on the host).
  EXPECT_EQ(caller.value().groups, (std::vector<gid_t>{201007, 201099}));
  EXPECT_EQ(to_host(ids, protocol::Caller{5, 1006, {}}).error(), EOVERFLOW);
  EXPECT_EQ(to_host(ids, protocol::Caller{1005, 5, {}}).error(), EOVERFLOW);
}

TEST(IdMap, SquashMakesEveryCallerOneUser) {
  IdMap ids;
  ids.set_squash(4321, 4322);
  EXPECT_TRUE(ids.squash());
  auto caller = to_host(ids, protocol::Caller{0, 0, {1, 2, 3}});
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller.value().uid, 4321u);
  EXPECT_EQ(caller.value().gid, 4322u);
  EXPECT_TRUE(caller.value().groups.empty());
  EXPECT_EQ(ids.uid_to_host(99999), 4321u);
}

}  // namespace
}  // namespace fsout::host
