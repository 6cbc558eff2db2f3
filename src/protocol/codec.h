// Table-driven codec: every message declares its fields (FSOUT_FIELDS) and
// these two templates walk them. Decoding is strict: a field past the end, a
// string over its limit, a bad name or trailing bytes all fail the message.
#pragma once

#include <span>
#include <type_traits>
#include <vector>

#include "protocol/messages.h"
#include "protocol/name.h"
#include "protocol/wire.h"

namespace fsout::protocol {

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};
template <class T>
struct IsBounded : std::false_type {};
template <size_t L, bool B>
struct IsBounded<Bounded<L, B>> : std::true_type {
  static constexpr size_t kLimit = L;
  static constexpr bool kBinary = B;
};

template <class T>
void encode_value(Writer& w, const T& v) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    w.u8(v);
  } else if constexpr (std::is_same_v<T, uint16_t>) {
    w.u16(v);
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    w.u32(v);
  } else if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>) {
    w.u64(static_cast<uint64_t>(v));
  } else if constexpr (std::is_same_v<T, Name> || IsBounded<T>::value) {
    w.bytes(v.value);
  } else if constexpr (std::is_same_v<T, Tail>) {
    if (w.defer_tail)
      w.tail = v.data;
    else
      w.raw(v.data.data(), v.data.size());
  } else if constexpr (IsVector<T>::value) {
    w.u32(static_cast<uint32_t>(v.size()));
    for (const auto& item : v) encode_value(w, item);
  } else {
    std::apply([&](const auto&... field) { (encode_value(w, field), ...); }, v.fields());
  }
}

template <class T>
void decode_value(Reader& r, T& v) {
  if (!r.ok()) return;
  if constexpr (std::is_same_v<T, uint8_t>) {
    v = r.u8();
  } else if constexpr (std::is_same_v<T, uint16_t>) {
    v = r.u16();
  } else if constexpr (std::is_same_v<T, uint32_t>) {
    v = r.u32();
  } else if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, int64_t>) {
    v = static_cast<T>(r.u64());
  } else if constexpr (std::is_same_v<T, Name>) {
    // SECURITY: names from the guest are checked here, before any use.
    v.value = std::string(r.bytes(kMaxNameBytes));
    if (r.ok() && !is_valid_name(v.value)) r.fail();
  } else if constexpr (IsBounded<T>::value) {
    v.value = std::string(r.bytes(IsBounded<T>::kLimit));
    // SECURITY: see Bounded: a C string with a NUL inside is refused, never truncated.
    if (!IsBounded<T>::kBinary && r.ok() && v.value.find('\0') != std::string::npos) r.fail();
  } else if constexpr (std::is_same_v<T, Tail>) {
    v.data = r.rest();
  } else if constexpr (IsVector<T>::value) {
    uint32_t count = r.u32();
    // Every item takes at least one byte: a count larger than what is left
    // is a lie, refused before anything is allocated.
    if (!r.ok() || count > r.left() || count > kMaxListItems) {
      r.fail();
      return;
    }
    v.clear();
    v.resize(count);
    for (auto& item : v) decode_value(r, item);
  } else {
    std::apply([&](auto&... field) { (decode_value(r, field), ...); }, v.fields());
  }
}

template <class T>
void encode_message(std::vector<uint8_t>& out, const T& message) {
  Writer w(out);
  encode_value(w, message);
}

template <class T>
bool decode_message(std::span<const uint8_t> in, T& message) {
  Reader r(in);
  decode_value(r, message);
  return r.ok() && r.left() == 0;
}

// A reply payload is a canonical errno (0 = success) followed, on success,
// by the reply message.
template <class T>
void encode_reply(std::vector<uint8_t>& out, const T& reply) {
  Writer w(out);
  w.u32(0);
  encode_value(w, reply);
}
// As encode_reply, but file data (a Tail) is returned instead of copied.
template <class T>
std::span<const uint8_t> encode_reply_deferring_tail(std::vector<uint8_t>& out, const T& reply) {
  Writer w(out);
  w.defer_tail = true;
  w.u32(0);
  encode_value(w, reply);
  return w.tail;
}
template <class T>
std::span<const uint8_t> encode_message_deferring_tail(std::vector<uint8_t>& out,
                                                       const T& message) {
  Writer w(out);
  w.defer_tail = true;
  encode_value(w, message);
  return w.tail;
}
inline void encode_error_reply(std::vector<uint8_t>& out, uint32_t canonical_errno) {
  Writer w(out);
  w.u32(canonical_errno);
}

// Splits a reply payload: returns the status, and on success decodes `reply`.
// A malformed payload yields kMalformedReply.
inline constexpr uint32_t kMalformedReply = 0xFFFFFFFF;
template <class T>
uint32_t decode_reply(std::span<const uint8_t> in, T& reply) {
  if (in.size() < 4) return kMalformedReply;
  uint32_t status = load_le32(in.data());
  if (status != 0) return in.size() == 4 ? status : kMalformedReply;
  return decode_message(in.subspan(4), reply) ? 0 : kMalformedReply;
}

}  // namespace fsout::protocol
