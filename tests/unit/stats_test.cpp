// Request statistics (host/stats.h): the latency buckets and their bounds, percentiles from
// the histogram, counting from several threads, adding snapshots, and the JSON document.
#include "host/stats.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace fsout::host {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

constexpr uint16_t kLookup = 2, kRead = 16, kWrite = 17;

uint64_t lower_bound_of(size_t bucket) { return bucket == 0 ? 0 : bucket_upper_bound(bucket - 1); }

// Whether v lies in its bucket's bounds; reports the first value that does not.
bool in_its_bucket(uint64_t v) {
  const size_t b = latency_bucket(v);
  if (b >= kLatencyBuckets) {
    ADD_FAILURE() << v << " us: bucket " << b << " out of range";
    return false;
  }
  if (lower_bound_of(b) <= v && v < bucket_upper_bound(b)) return true;
  ADD_FAILURE() << v << " us: bucket " << b << " is [" << lower_bound_of(b) << ", "
                << bucket_upper_bound(b) << ")";
  return false;
}

TEST(StatsBuckets, EveryValueIsInsideItsBucketsBounds) {
  for (uint64_t v = 0; v <= 1000000; ++v)
    if (!in_its_bucket(v)) break;
  // Around every power of two up to the last bucket, and a few values in between.
  for (unsigned k = 1; k < 33; ++k) {
    const uint64_t p = uint64_t(1) << k;
    for (uint64_t v : {p - 1, p, p + 1, p + p / 4 - 1, p + p / 4, p + p / 2, p + 3 * p / 4})
      in_its_bucket(v);
  }
  for (uint64_t v : {uint64_t(60) * 1000000, uint64_t(3600) * 1000000, uint64_t(4000000000)})
    in_its_bucket(v);
}

TEST(StatsBuckets, SmallValuesHaveTheirOwnBucket) {
  for (uint64_t v = 0; v < 4; ++v) {
    EXPECT_EQ(latency_bucket(v), v);
    EXPECT_EQ(bucket_upper_bound(v), v + 1);
  }
  EXPECT_EQ(latency_bucket(4), 4u);
  EXPECT_EQ(latency_bucket(5), 5u);
  EXPECT_EQ(latency_bucket(8), 8u);
}

TEST(StatsBuckets, BoundsIncreaseAndAreWithinAQuarter) {
  for (size_t b = 1; b < kLatencyBuckets; ++b) {
    ASSERT_LT(bucket_upper_bound(b - 1), bucket_upper_bound(b)) << b;
    // From 4 us on, a bucket is at most 25 % wider than its lower bound.
    if (lower_bound_of(b) >= 4) {
      EXPECT_LE(4 * (bucket_upper_bound(b) - lower_bound_of(b)), lower_bound_of(b)) << b;
    }
  }
  // Every bucket is reachable: its lower bound falls into it.
  for (size_t b = 0; b < kLatencyBuckets; ++b) EXPECT_EQ(latency_bucket(lower_bound_of(b)), b);
}

TEST(StatsBuckets, HugeValuesCountInTheLastBucket) {
  EXPECT_EQ(latency_bucket(UINT64_MAX), kLatencyBuckets - 1);
  EXPECT_EQ(latency_bucket(uint64_t(1) << 40), kLatencyBuckets - 1);
  // 71 minutes (2^32 us) still has a bucket of its own below the last.
  EXPECT_LT(latency_bucket(uint64_t(1) << 32), kLatencyBuckets - 1);
}

OpSnapshot recorded(const std::vector<std::pair<uint64_t, int>>& latencies_and_counts) {
  RequestStats stats;
  for (const auto& [us, n] : latencies_and_counts)
    for (int i = 0; i < n; ++i) stats.record(kLookup, false, microseconds(us));
  return stats.snapshot().ops[kLookup];
}

TEST(StatsPercentile, KnownDistribution) {
  const OpSnapshot op = recorded({{10, 100}, {5000, 1}});
  EXPECT_EQ(op.count, 101u);
  EXPECT_EQ(op.max_us, 5000u);
  const uint64_t p50 = op.percentile(0.50), p90 = op.percentile(0.90), p99 = op.percentile(0.99);
  // The bound of the bucket holding 10 us: [10, 12).
  EXPECT_GE(p50, 10u);
  EXPECT_LE(p50, bucket_upper_bound(latency_bucket(10)));
  EXPECT_LE(p50, 12u);
  EXPECT_EQ(p90, p50);
  EXPECT_LE(p99, 12u);
  EXPECT_GE(p99, 10u);
  // The slowest request: its bucket goes to 5120, but nothing took more than 5000.
  EXPECT_EQ(op.percentile(1.0), 5000u);
}

TEST(StatsPercentile, EmptyIsZero) {
  const OpSnapshot op;
  for (double f : {0.0, 0.5, 0.99, 1.0}) EXPECT_EQ(op.percentile(f), 0u) << f;
}

TEST(StatsPercentile, NeverAboveTheMaximum) {
  for (uint64_t us : {0, 1, 5, 9, 10, 13, 1000, 4097, 123456, 7000000}) {
    const OpSnapshot op = recorded({{us, 3}});
    EXPECT_EQ(op.max_us, us);
    for (double f : {0.01, 0.5, 0.9, 0.99, 1.0}) {
      EXPECT_LE(op.percentile(f), us) << us << " at " << f;
      // And not below the value either (the bucket's bound, cut down to the maximum).
      EXPECT_GE(op.percentile(f), us) << us << " at " << f;
    }
  }
}

TEST(StatsPercentile, SplitsBetweenTwoValues) {
  // 90 fast (100 us) and 10 slow (10000 us): p50 and p90 are fast, p99 slow.
  const OpSnapshot op = recorded({{100, 90}, {10000, 10}});
  EXPECT_GE(op.percentile(0.50), 100u);
  EXPECT_LE(op.percentile(0.50), 125u);
  EXPECT_LE(op.percentile(0.90), 125u);
  EXPECT_GE(op.percentile(0.99), 10000u);
  EXPECT_LE(op.percentile(0.99), 10000u);
}

TEST(StatsRecord, CountsExactlyFromSeveralThreads) {
  RequestStats stats;
  constexpr int kThreads = 4, kEach = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&stats, t] {
      for (int i = 0; i < kEach; ++i) {
        stats.record(kRead, i % 10 == 0, microseconds(i % 1000 + t));
        if (i % 4 == 0) stats.record(kWrite, false, microseconds(1));
        stats.add_read(3);
      }
      stats.add_written(uint64_t(t) + 1);
      stats.add_notifications(2);
    });
  for (auto& thread : threads) thread.join();
  const StatsSnapshot s = stats.snapshot();
  EXPECT_EQ(s.ops[kRead].count, uint64_t(kThreads) * kEach);
  EXPECT_EQ(s.ops[kRead].errors, uint64_t(kThreads) * kEach / 10);
  EXPECT_EQ(s.ops[kRead].max_us, 999u + kThreads - 1);
  uint64_t in_buckets = 0;
  for (uint64_t n : s.ops[kRead].buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, uint64_t(kThreads) * kEach);
  EXPECT_EQ(s.ops[kWrite].count, uint64_t(kThreads) * kEach / 4);
  EXPECT_EQ(s.ops[kWrite].buckets[1], uint64_t(kThreads) * kEach / 4);
  EXPECT_EQ(s.ops[kLookup].count, 0u);
  EXPECT_EQ(s.requests(), uint64_t(kThreads) * kEach * 5 / 4);
  EXPECT_EQ(s.errors(), uint64_t(kThreads) * kEach / 10);
  EXPECT_EQ(s.bytes_read, uint64_t(kThreads) * kEach * 3);
  EXPECT_EQ(s.bytes_written, 1u + 2 + 3 + 4);
  EXPECT_EQ(s.notifications, 2u * kThreads);
}

TEST(StatsRecord, DurationsInMicrosecondsAndOutOfRangeOpcodes) {
  RequestStats stats;
  stats.record(kLookup, false, nanoseconds(1999));  // 1 us
  stats.record(kLookup, false, nanoseconds(-5));    // a clock step back: 0
  stats.record(kStatOpcodes, true, microseconds(7));
  stats.record(uint16_t(1000), true, microseconds(7));
  const StatsSnapshot s = stats.snapshot();
  EXPECT_EQ(s.ops[kLookup].count, 2u);
  EXPECT_EQ(s.ops[kLookup].buckets[0], 1u);
  EXPECT_EQ(s.ops[kLookup].buckets[1], 1u);
  EXPECT_EQ(s.ops[kLookup].max_us, 1u);
  EXPECT_EQ(s.requests(), 2u);
  EXPECT_EQ(s.errors(), 0u);
}

TEST(StatsSnapshot, AddSumsCountsAndKeepsTheLargerMaximum) {
  RequestStats one, two;
  one.record(kLookup, false, microseconds(10));
  one.record(kLookup, true, microseconds(300));
  one.add_read(100);
  one.add_notifications(1);
  two.record(kLookup, false, microseconds(20));
  two.record(kRead, true, microseconds(50));
  two.add_read(11);
  two.add_written(7);
  StatsSnapshot total = one.snapshot();
  total.add(two.snapshot());
  EXPECT_EQ(total.ops[kLookup].count, 3u);
  EXPECT_EQ(total.ops[kLookup].errors, 1u);
  EXPECT_EQ(total.ops[kLookup].max_us, 300u);
  EXPECT_EQ(total.ops[kLookup].buckets[latency_bucket(10)], 1u);
  EXPECT_EQ(total.ops[kLookup].buckets[latency_bucket(20)], 1u);
  EXPECT_EQ(total.ops[kLookup].buckets[latency_bucket(300)], 1u);
  EXPECT_EQ(total.ops[kRead].count, 1u);
  EXPECT_EQ(total.ops[kRead].max_us, 50u);
  EXPECT_EQ(total.requests(), 4u);
  EXPECT_EQ(total.errors(), 2u);
  EXPECT_EQ(total.bytes_read, 111u);
  EXPECT_EQ(total.bytes_written, 7u);
  EXPECT_EQ(total.notifications, 1u);
  // Adding a smaller maximum keeps the larger one.
  StatsSnapshot other = two.snapshot();
  other.add(one.snapshot());
  EXPECT_EQ(other.ops[kLookup].max_us, 300u);
}

TEST(StatsSnapshot, Json) {
  RequestStats stats;
  for (int i = 0; i < 3; ++i) stats.record(kLookup, i == 0, microseconds(10 * (i + 1)));
  stats.record(kRead, false, microseconds(5000));
  stats.record(63, true, microseconds(1));  // no such operation
  stats.add_read(4096);
  stats.add_written(100);
  stats.add_notifications(2);
  const nlohmann::json j = stats.snapshot().to_json();
  EXPECT_EQ(j.at("requests"), 5);
  EXPECT_EQ(j.at("errors"), 2);
  EXPECT_EQ(j.at("bytes_read"), 4096);
  EXPECT_EQ(j.at("bytes_written"), 100);
  EXPECT_EQ(j.at("notifications"), 2);
  const nlohmann::json& ops = j.at("operations");
  ASSERT_TRUE(ops.is_object());
  EXPECT_EQ(ops.size(), 3u) << ops.dump();  // only operations that were asked for
  ASSERT_TRUE(ops.contains("LOOKUP")) << ops.dump();
  ASSERT_TRUE(ops.contains("READ")) << ops.dump();
  ASSERT_TRUE(ops.contains("OP63")) << ops.dump();
  const nlohmann::json& lookup = ops.at("LOOKUP");
  EXPECT_EQ(lookup.at("count"), 3);
  EXPECT_EQ(lookup.at("errors"), 1);
  EXPECT_EQ(lookup.at("max_us"), 30);
  EXPECT_GE(lookup.at("p50_us").get<uint64_t>(), 20u);
  EXPECT_LE(lookup.at("p50_us").get<uint64_t>(), 24u);
  EXPECT_EQ(lookup.at("p99_us"), 30);
  const nlohmann::json& read = ops.at("READ");
  EXPECT_EQ(read.at("count"), 1);
  EXPECT_EQ(read.at("errors"), 0);
  EXPECT_EQ(read.at("p50_us"), 5000);
  EXPECT_EQ(read.at("p90_us"), 5000);
  EXPECT_EQ(read.at("max_us"), 5000);
  // An empty snapshot still has every field.
  const nlohmann::json empty = StatsSnapshot{}.to_json();
  EXPECT_EQ(empty.at("requests"), 0);
  EXPECT_TRUE(empty.at("operations").is_object());
  EXPECT_TRUE(empty.at("operations").empty());
}

}  // namespace
}  // namespace fsout::host
