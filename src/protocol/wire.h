// Little-endian primitives and the byte Writer/Reader the codec is built on.
// The Reader never reads past its buffer: every get checks the remaining size
// and latches a failure, so decoding hostile input is safe by construction.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fsout::protocol {

inline void store_le16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
inline void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline void store_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline uint16_t load_le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
inline uint32_t load_le32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) {
    grow(2, [&](uint8_t* p) { store_le16(p, v); });
  }
  void u32(uint32_t v) {
    grow(4, [&](uint8_t* p) { store_le32(p, v); });
  }
  void u64(uint64_t v) {
    grow(8, [&](uint8_t* p) { store_le64(p, v); });
  }
  void raw(const void* data, size_t size) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    out_.insert(out_.end(), bytes, bytes + size);
  }
  // Length-prefixed byte string.
  void bytes(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  std::vector<uint8_t>& buffer() { return out_; }

  // When set, a trailing Tail field is not copied but left in `tail` for the
  // sender to pass as its own iovec (file data in READ replies, WRITE requests).
  bool defer_tail = false;
  std::span<const uint8_t> tail;

 private:
  template <class F>
  void grow(size_t n, F store) {
    size_t at = out_.size();
    out_.resize(at + n);
    store(out_.data() + at);
  }
  std::vector<uint8_t>& out_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : data_(in.data()), left_(in.size()) {}
  bool ok() const { return ok_; }
  size_t left() const { return left_; }
  void fail() {
    ok_ = false;
    left_ = 0;
  }

  uint8_t u8() { return take(1) ? data_[-1] : 0; }
  uint16_t u16() { return take(2) ? load_le16(data_ - 2) : 0; }
  uint32_t u32() { return take(4) ? load_le32(data_ - 4) : 0; }
  uint64_t u64() { return take(8) ? load_le64(data_ - 8) : 0; }
  // A length-prefixed byte string of at most `limit` bytes.
  std::string_view bytes(size_t limit) {
    uint32_t size = u32();
    if (!ok_ || size > limit || size > left_) {
      fail();
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(data_), size);
    data_ += size;
    left_ -= size;
    return s;
  }
  // Everything that is left (the data of READ replies and WRITE requests).
  std::span<const uint8_t> rest() {
    std::span<const uint8_t> s(data_, left_);
    data_ += left_;
    left_ = 0;
    return s;
  }

 private:
  bool take(size_t n) {
    if (!ok_ || left_ < n) {
      fail();
      return false;
    }
    data_ += n;
    left_ -= n;
    return true;
  }
  const uint8_t* data_;
  size_t left_;
  bool ok_ = true;
};

}  // namespace fsout::protocol
