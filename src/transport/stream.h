// Framing over one file descriptor: the only place that reads or writes the
// bytes of a session. Writes are serialised by a mutex, so any thread may
// send; one thread reads.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "protocol/frame.h"

namespace fsout::transport {

// Encodes a whole frame (header and body) at the end of `out`.
void append_frame(std::vector<uint8_t>& out, protocol::FrameHeader header,
                  std::span<const uint8_t> body);

class FrameStream {
 public:
  // Takes ownership of `fd`. With `resync`, a bad header is skipped over to
  // the next valid one instead of being a fault, and a frame whose payload
  // stops arriving mid-way is abandoned: this is for streams that outlive
  // their writers (serial ports), where a new session follows an old one's
  // leftovers.
  FrameStream(int fd, bool resync);
  ~FrameStream();
  FrameStream(const FrameStream&) = delete;
  FrameStream& operator=(const FrameStream&) = delete;

  enum class ReadStatus { kFrame, kClosed, kFault, kTimedOut };
  // Reads the next whole frame; `payload` receives its bytes. With `limit_ms` >= 0, gives
  // up after that long without a whole frame (kTimedOut; a part read stays for the next
  // call).
  ReadStatus read_frame(protocol::FrameHeader& header, std::vector<uint8_t>& payload,
                        int limit_ms = -1);

  // Writes one frame (header + body + tail) atomically with respect to other
  // writers. Returns false when the stream is broken.
  // `before`: whole frames (see append_frame) that go out first, in the
  // same write (so the peer reads them with the frame, in one wake-up).
  bool write_frame(protocol::FrameHeader header, std::span<const uint8_t> body,
                   std::span<const uint8_t> tail = {}, std::span<const uint8_t> before = {});

  // Serial ports, when the peer at the other end changed: what is left unread is a frame
  // the old peer did not finish, and must not take the new peer's first bytes as its rest.
  void discard_input() { begin_ = end_ = 0; }

  // Wakes a blocked reader and makes every later call fail.
  void shutdown();
  // Sockets: reads end (as at the end of the stream), writes still go out.
  void stop_reading();

  void set_max_payload(uint32_t bytes) { max_payload_ = bytes; }
  uint32_t max_payload() const { return max_payload_; }
  // Why the last read was a fault, for the log.
  const std::string& fault() const { return fault_; }
  bool resyncs() const { return resync_; }
  int fd() const { return fd_; }

 private:
  enum class Fill { kData, kClosed, kStalled, kTimedOut };
  using Deadline = std::optional<std::chrono::steady_clock::time_point>;
  Fill fill(bool mid_frame, Deadline deadline);
  bool wait_writable();

  int fd_;
  int wake_fd_;  // eventfd written by shutdown()
  bool resync_;
  bool stopped_ = false;
  uint32_t max_payload_;
  std::string fault_;
  std::vector<uint8_t> buffer_;
  size_t begin_ = 0, end_ = 0;
  std::mutex write_mutex_;
};

}  // namespace fsout::transport
