// What fsoutd counts for `fsout admin`: per operation the requests, the errors and a latency
// histogram; bytes read and written; notifications sent. Serving threads add to a
// RequestStats with relaxed atomics (no lock on the request path); the admin channel takes
// snapshots, which add up to an export's totals.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>

namespace fsout::host {

// Latency buckets: 4 per power of two of microseconds (each bucket's bounds within 25 %); the
// last one, from 7 * 2^30 us (2 hours), also holds everything longer (percentiles are capped
// at the largest time seen).
constexpr size_t kLatencyBuckets = 128;
constexpr size_t kStatOpcodes = 64;  // opcodes 0..63 (the protocol has fewer)

size_t latency_bucket(uint64_t microseconds);
uint64_t bucket_upper_bound(size_t bucket);  // exclusive, microseconds

struct OpSnapshot {
  uint64_t count = 0, errors = 0, max_us = 0;
  std::array<uint64_t, kLatencyBuckets> buckets{};
  // The upper bound (us) of the bucket holding the `fraction` quantile; 0 without requests.
  uint64_t percentile(double fraction) const;
};

struct StatsSnapshot {
  std::array<OpSnapshot, kStatOpcodes> ops{};
  uint64_t bytes_read = 0, bytes_written = 0, notifications = 0;
  void add(const StatsSnapshot& other);
  uint64_t requests() const;
  uint64_t errors() const;
  // {"requests", "errors", "bytes_read", "bytes_written", "notifications",
  //  "operations": {"LOOKUP": {"count", "errors", "p50_us", "p90_us", "p99_us", "max_us"}}}
  nlohmann::json to_json() const;
};

class RequestStats {
 public:
  void record(uint16_t opcode, bool error, std::chrono::nanoseconds took);
  void add_read(uint64_t bytes) { bytes_read_.fetch_add(bytes, std::memory_order_relaxed); }
  void add_written(uint64_t bytes) { bytes_written_.fetch_add(bytes, std::memory_order_relaxed); }
  void add_notifications(uint64_t n) { notifications_.fetch_add(n, std::memory_order_relaxed); }
  StatsSnapshot snapshot() const;

 private:
  struct Op {
    std::atomic<uint64_t> count{0}, errors{0}, max_us{0};
    std::array<std::atomic<uint64_t>, kLatencyBuckets> buckets{};
  };
  std::array<Op, kStatOpcodes> ops_{};
  std::atomic<uint64_t> bytes_read_{0}, bytes_written_{0}, notifications_{0};
};

}  // namespace fsout::host
