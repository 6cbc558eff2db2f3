// Frame layout shared by every transport. A frame is a fixed 24-byte header
// followed by `length` payload bytes. All integers are little-endian.
//
//   offset size field
//   0      4    magic       "FSO1" (0x314F5346)
//   4      1    format      frame format version (1)
//   5      1    kind        0 request, 1 reply, 2 notify
//   6      2    opcode      operation number (see messages.h)
//   8      8    request_id  chosen by the guest, echoed in the reply
//   16     4    length      payload length in bytes
//   20     4    check       FNV-1a over bytes 0..19
//
// The check lets a reader find the next frame after garbage (a byte stream
// that outlives its writer, such as a virtio-serial port, may hold the tail
// of an old session's frame).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace fsout::protocol {

inline constexpr uint32_t kFrameMagic = 0x314F5346;  // "FSO1" read as little-endian
inline constexpr uint8_t kFrameFormat = 1;
inline constexpr size_t kFrameHeaderSize = 24;

enum class FrameKind : uint8_t { kRequest = 0, kReply = 1, kNotify = 2 };

struct FrameHeader {
  FrameKind kind = FrameKind::kRequest;
  uint16_t opcode = 0;
  uint64_t request_id = 0;
  uint32_t length = 0;

  bool operator==(const FrameHeader&) const = default;
};

void encode_frame_header(const FrameHeader& header, uint8_t out[kFrameHeaderSize]);

enum class HeaderStatus { kOk, kBadMagic, kBadCheck, kBadFormat, kBadKind };

// Decodes and validates a header; does not look at the payload.
HeaderStatus decode_frame_header(std::span<const uint8_t, kFrameHeaderSize> bytes,
                                 FrameHeader& header);

// Offset of the first position in `bytes` where a valid header starts, or
// nullopt. Used to resynchronise after garbage.
std::optional<size_t> find_frame_header(std::span<const uint8_t> bytes);

uint32_t header_check(const uint8_t* bytes, size_t size);

}  // namespace fsout::protocol
