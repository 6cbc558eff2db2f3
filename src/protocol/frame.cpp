#include "protocol/frame.h"

#include <cstring>

#include "protocol/wire.h"

namespace fsout::protocol {

uint32_t header_check(const uint8_t* bytes, size_t size) {
  // FNV-1a: a cheap guard against garbage and misalignment, not an integrity
  // check of the payload (the transports below are reliable byte streams).
  uint32_t hash = 2166136261u;
  for (size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 16777619u;
  }
  return hash;
}

void encode_frame_header(const FrameHeader& header, uint8_t out[kFrameHeaderSize]) {
  store_le32(out + 0, kFrameMagic);
  out[4] = kFrameFormat;
  out[5] = static_cast<uint8_t>(header.kind);
  store_le16(out + 6, header.opcode);
  store_le64(out + 8, header.request_id);
  store_le32(out + 16, header.length);
  store_le32(out + 20, header_check(out, 20));
}

HeaderStatus decode_frame_header(std::span<const uint8_t, kFrameHeaderSize> bytes,
                                 FrameHeader& header) {
  const uint8_t* p = bytes.data();
  if (load_le32(p) != kFrameMagic) return HeaderStatus::kBadMagic;
  if (load_le32(p + 20) != header_check(p, 20)) return HeaderStatus::kBadCheck;
  if (p[4] != kFrameFormat) return HeaderStatus::kBadFormat;
  if (p[5] > static_cast<uint8_t>(FrameKind::kNotify)) return HeaderStatus::kBadKind;
  header.kind = static_cast<FrameKind>(p[5]);
  header.opcode = load_le16(p + 6);
  header.request_id = load_le64(p + 8);
  header.length = load_le32(p + 16);
  return HeaderStatus::kOk;
}

std::optional<size_t> find_frame_header(std::span<const uint8_t> bytes) {
  for (size_t i = 0; i + kFrameHeaderSize <= bytes.size(); ++i) {
    if (bytes[i] != 0x46) continue;  // first byte of the magic, 'F'
    FrameHeader ignored;
    if (decode_frame_header(bytes.subspan(i).first<kFrameHeaderSize>(), ignored) ==
        HeaderStatus::kOk)
      return i;
  }
  return std::nullopt;
}

}  // namespace fsout::protocol
