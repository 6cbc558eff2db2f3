#include "transport/stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "protocol/messages.h"

namespace fsout::transport {

using protocol::FrameHeader;
using protocol::kFrameHeaderSize;

namespace {
constexpr size_t kReadChunk = 256 * 1024;
// A frame whose bytes stop for this long on a resyncing stream belongs to a
// writer that went away (a live writer sends a frame without pausing).
constexpr int kStallMs = 1000;
}  // namespace

FrameStream::FrameStream(int fd, bool resync)
    : fd_(fd),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      resync_(resync),
      max_payload_(protocol::kDefaultMaxMessage) {
  int flags = fcntl(fd_, F_GETFL);
  if (flags >= 0) fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
}

FrameStream::~FrameStream() {
  close(fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void FrameStream::shutdown() {
  stopped_ = true;
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
  }
  ::shutdown(fd_, SHUT_RDWR);  // harmless on non-sockets (ENOTSOCK)
}

void FrameStream::stop_reading() { ::shutdown(fd_, SHUT_RD); }

bool FrameStream::wait_writable() {
  pollfd fds[2] = {{fd_, POLLOUT, 0}, {wake_fd_, POLLIN, 0}};
  for (;;) {
    int n = poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || fds[1].revents) return false;
    if (fds[0].revents & POLLOUT) return true;
    if (!resync_) return false;  // a socket that hung up
    // A virtio-serial port reports POLLHUP while no host is connected, and
    // its writes wait for one: look again shortly instead of spinning.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (stopped_) return false;
    return true;
  }
}

FrameStream::Fill FrameStream::fill(bool mid_frame, Deadline deadline) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buffer_.size() - end_ < kReadChunk) {
    // Move what is unread to the front, then make room for one chunk.
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.size() - end_ < kReadChunk) buffer_.resize(end_ + kReadChunk);
  }
  for (;;) {
    if (stopped_) return Fill::kClosed;
    ssize_t n = read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n > 0) {
      end_ += size_t(n);
      return Fill::kData;
    }
    if (n == 0) return Fill::kClosed;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Fill::kClosed;
    int timeout = (resync_ && mid_frame) ? kStallMs : -1;
    bool deadline_first = false;
    if (deadline) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline -
                                                               std::chrono::steady_clock::now());
      if (left.count() <= 0) return Fill::kTimedOut;
      if (timeout < 0 || left.count() < timeout) {
        timeout = int(std::min<int64_t>(left.count(), INT32_MAX));
        deadline_first = true;
      }
    }
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int ready = poll(fds, 2, timeout);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || fds[1].revents) return Fill::kClosed;
    if (ready == 0) return deadline_first ? Fill::kTimedOut : Fill::kStalled;
    if ((fds[0].revents & (POLLHUP | POLLERR)) && !(fds[0].revents & POLLIN)) return Fill::kClosed;
  }
}

FrameStream::ReadStatus FrameStream::read_frame(FrameHeader& header, std::vector<uint8_t>& payload,
                                                int limit_ms) {
  Deadline deadline;
  if (limit_ms >= 0)
    deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
  for (;;) {
    while (end_ - begin_ < kFrameHeaderSize) {
      Fill f = fill(end_ > begin_, deadline);
      if (f == Fill::kClosed) return ReadStatus::kClosed;
      if (f == Fill::kTimedOut) return ReadStatus::kTimedOut;
      if (f == Fill::kStalled) begin_ = end_;  // a torn header: drop it
    }
    std::span<const uint8_t> available(buffer_.data() + begin_, end_ - begin_);
    auto status = protocol::decode_frame_header(available.first<kFrameHeaderSize>(), header);
    if (status == protocol::HeaderStatus::kOk && header.length > max_payload_) {
      if (!resync_) {
        fault_ = "frame of " + std::to_string(header.length) + " bytes exceeds the limit of " +
                 std::to_string(max_payload_);
        return ReadStatus::kFault;
      }
      status = protocol::HeaderStatus::kBadCheck;  // treat as garbage and move on
    }
    if (status != protocol::HeaderStatus::kOk) {
      if (!resync_) {
        fault_ = status == protocol::HeaderStatus::kBadMagic    ? "bad frame magic"
                 : status == protocol::HeaderStatus::kBadCheck  ? "bad frame header check"
                 : status == protocol::HeaderStatus::kBadFormat ? "unknown frame format"
                                                                : "unknown frame kind";
        return ReadStatus::kFault;
      }
      // Skip to the next position that holds a valid header; keep a possible
      // header prefix at the end of the buffer.
      auto next = protocol::find_frame_header(available.subspan(1));
      if (next)
        begin_ += 1 + *next;
      else
        begin_ = std::max(begin_ + 1, end_ - (kFrameHeaderSize - 1));
      continue;
    }
    size_t frame_size = kFrameHeaderSize + header.length;
    bool stalled = false;
    while (end_ - begin_ < frame_size) {
      Fill f = fill(true, deadline);
      if (f == Fill::kClosed) return ReadStatus::kClosed;
      if (f == Fill::kTimedOut) return ReadStatus::kTimedOut;
      if (f == Fill::kStalled) {
        stalled = true;
        break;
      }
    }
    if (stalled) {
      // Abandon the torn frame; a new session's bytes may follow its header.
      begin_ += 1;
      continue;
    }
    payload.assign(buffer_.data() + begin_ + kFrameHeaderSize,
                   buffer_.data() + begin_ + frame_size);
    begin_ += frame_size;
    return ReadStatus::kFrame;
  }
}

void append_frame(std::vector<uint8_t>& out, FrameHeader header, std::span<const uint8_t> body) {
  header.length = static_cast<uint32_t>(body.size());
  size_t at = out.size();
  out.resize(at + kFrameHeaderSize);
  protocol::encode_frame_header(header, out.data() + at);
  out.insert(out.end(), body.begin(), body.end());
}

bool FrameStream::write_frame(FrameHeader header, std::span<const uint8_t> body,
                              std::span<const uint8_t> tail, std::span<const uint8_t> before) {
  uint8_t head[kFrameHeaderSize];
  header.length = static_cast<uint32_t>(body.size() + tail.size());
  protocol::encode_frame_header(header, head);
  constexpr int kParts = 4;
  iovec iov[kParts] = {{const_cast<uint8_t*>(before.data()), before.size()},
                       {head, sizeof(head)},
                       {const_cast<uint8_t*>(body.data()), body.size()},
                       {const_cast<uint8_t*>(tail.data()), tail.size()}};
  std::lock_guard lock(write_mutex_);
  int first = 0;
  while (first < kParts) {
    if (stopped_) return false;
    if (iov[first].iov_len == 0) {
      ++first;
      continue;
    }
    ssize_t n = writev(fd_, iov + first, kParts - first);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (!wait_writable()) return false;
        continue;
      }
      return false;
    }
    size_t done = size_t(n);
    while (first < kParts && done >= iov[first].iov_len) {
      done -= iov[first].iov_len;
      ++first;
    }
    if (first < kParts) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + done;
      iov[first].iov_len -= done;
    }
  }
  return true;
}

}  // namespace fsout::transport
