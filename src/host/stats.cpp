#include "host/stats.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <string>

#include "protocol/messages.h"

namespace fsout::host {

// Buckets 0..3 hold 0, 1, 2 and 3 us; from 4 us on, each power of two [2^k, 2^(k+1)) is cut
// into 4 equal buckets: 4*(k-1) + (the two bits after the leading one).
size_t latency_bucket(uint64_t us) {
  if (us < 4) return us;
  const unsigned k = 63 - std::countl_zero(us);
  const size_t bucket = 4 * (k - 1) + ((us >> (k - 2)) & 3);
  return std::min(bucket, kLatencyBuckets - 1);
}

uint64_t bucket_upper_bound(size_t bucket) {
  if (bucket < 4) return bucket + 1;
  const unsigned k = unsigned(bucket / 4) + 1, quarter = unsigned(bucket % 4);
  return uint64_t(5 + quarter) << (k - 2);
}

uint64_t OpSnapshot::percentile(double fraction) const {
  if (count == 0) return 0;
  const uint64_t rank = std::max<uint64_t>(1, uint64_t(std::ceil(fraction * double(count))));
  uint64_t seen = 0;
  for (size_t b = 0; b < kLatencyBuckets; ++b) {
    seen += buckets[b];
    // Never above the slowest request seen: the last bucket's bound says less than max.
    if (seen >= rank) return std::min(bucket_upper_bound(b), max_us);
  }
  return max_us;
}

void StatsSnapshot::add(const StatsSnapshot& other) {
  for (size_t i = 0; i < kStatOpcodes; ++i) {
    ops[i].count += other.ops[i].count;
    ops[i].errors += other.ops[i].errors;
    ops[i].max_us = std::max(ops[i].max_us, other.ops[i].max_us);
    for (size_t b = 0; b < kLatencyBuckets; ++b) ops[i].buckets[b] += other.ops[i].buckets[b];
  }
  bytes_read += other.bytes_read;
  bytes_written += other.bytes_written;
  notifications += other.notifications;
}

uint64_t StatsSnapshot::requests() const {
  uint64_t n = 0;
  for (const auto& op : ops) n += op.count;
  return n;
}

uint64_t StatsSnapshot::errors() const {
  uint64_t n = 0;
  for (const auto& op : ops) n += op.errors;
  return n;
}

nlohmann::json StatsSnapshot::to_json() const {
  nlohmann::json operations = nlohmann::json::object();
  for (size_t i = 0; i < kStatOpcodes; ++i) {
    const OpSnapshot& op = ops[i];
    if (op.count == 0) continue;
    const char* name = protocol::opcode_name(uint16_t(i));
    std::string key = name ? name : "op" + std::to_string(i);
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    operations[key] = {{"count", op.count},
                       {"errors", op.errors},
                       {"p50_us", op.percentile(0.50)},
                       {"p90_us", op.percentile(0.90)},
                       {"p99_us", op.percentile(0.99)},
                       {"max_us", op.max_us}};
  }
  return {{"requests", requests()},         {"errors", errors()},
          {"bytes_read", bytes_read},       {"bytes_written", bytes_written},
          {"notifications", notifications}, {"operations", std::move(operations)}};
}

void RequestStats::record(uint16_t opcode, bool error, std::chrono::nanoseconds took) {
  if (opcode >= kStatOpcodes) return;
  Op& op = ops_[opcode];
  const uint64_t us = uint64_t(std::max<int64_t>(0, took.count())) / 1000;
  op.count.fetch_add(1, std::memory_order_relaxed);
  if (error) op.errors.fetch_add(1, std::memory_order_relaxed);
  op.buckets[latency_bucket(us)].fetch_add(1, std::memory_order_relaxed);
  uint64_t max = op.max_us.load(std::memory_order_relaxed);
  while (us > max && !op.max_us.compare_exchange_weak(max, us, std::memory_order_relaxed)) {
  }
}

StatsSnapshot RequestStats::snapshot() const {
  StatsSnapshot s;
  for (size_t i = 0; i < kStatOpcodes; ++i) {
    s.ops[i].count = ops_[i].count.load(std::memory_order_relaxed);
    s.ops[i].errors = ops_[i].errors.load(std::memory_order_relaxed);
    s.ops[i].max_us = ops_[i].max_us.load(std::memory_order_relaxed);
    for (size_t b = 0; b < kLatencyBuckets; ++b)
      s.ops[i].buckets[b] = ops_[i].buckets[b].load(std::memory_order_relaxed);
  }
  s.bytes_read = bytes_read_.load(std::memory_order_relaxed);
  s.bytes_written = bytes_written_.load(std::memory_order_relaxed);
  s.notifications = notifications_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace fsout::host
