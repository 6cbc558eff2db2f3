// Codec: every message of the operation list round-trips, and malformed
// input (truncated, oversized, bad names, trailing bytes, garbage) is refused.
#include "protocol/codec.h"

#include <gtest/gtest.h>

#include <random>

#include "protocol/frame.h"

namespace fsout::protocol {
namespace {

// Fills every field of a message with distinct, valid values.
struct Filler {
  uint64_t counter = 1;
  template <class T>
  void fill(T& v) {
    if constexpr (std::is_integral_v<T>) {
      v = static_cast<T>(counter * 0x9E3779B97F4A7C15ull + counter);
      ++counter;
    } else if constexpr (std::is_same_v<T, Name>) {
      v.value = "name-" + std::to_string(counter++);
    } else if constexpr (IsBounded<T>::value) {
      v.value =
          std::string(std::min<size_t>(IsBounded<T>::kLimit, 7 + counter % 5), 'a' + counter % 26);
      ++counter;
    } else if constexpr (std::is_same_v<T, Tail>) {
      static const uint8_t kData[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
      v.data = std::span<const uint8_t>(kData, sizeof(kData));
    } else if constexpr (IsVector<T>::value) {
      v.resize(2);
      for (auto& item : v) fill(item);
    } else {
      std::apply([&](auto&... field) { (fill(field), ...); }, v.fields());
    }
  }
};

// Messages whose last field is a Tail (it takes the rest of the payload).
template <class T>
constexpr bool ends_in_tail = std::is_same_v<T, WriteRequest> || std::is_same_v<T, DataReply> ||
                              std::is_same_v<T, OpenReadReply>;

template <class T>
void expect_round_trip(const char* what) {
  SCOPED_TRACE(what);
  T original{};
  Filler().fill(original);
  std::vector<uint8_t> bytes;
  encode_message(bytes, original);
  T decoded{};
  ASSERT_TRUE(decode_message(bytes, decoded));
  EXPECT_TRUE(decoded == original);

  // Every strict prefix is refused (no message ends early by accident).
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    T partial{};
    bool accepted = decode_message(std::span<const uint8_t>(bytes.data(), cut), partial);
    // A message ending in a Tail accepts a shorter tail: that is its meaning.
    if constexpr (!ends_in_tail<T>) {
      EXPECT_FALSE(accepted) << "prefix of " << cut << " of " << bytes.size() << " bytes";
    }
  }
  // Trailing garbage is refused (except after a Tail, which takes the rest).
  if constexpr (!ends_in_tail<T>) {
    bytes.push_back(0);
    T longer{};
    EXPECT_FALSE(decode_message(bytes, longer));
  }
  // Reply framing: status 0 + message.
  std::vector<uint8_t> reply;
  encode_reply(reply, original);
  T from_reply{};
  EXPECT_EQ(decode_reply(reply, from_reply), 0u);
  EXPECT_TRUE(from_reply == original);
}

TEST(Codec, EveryOperationRoundTrips) {
#define FSOUT_ROUND_TRIP(number, name, request, reply) \
  expect_round_trip<request>(#name " request");        \
  expect_round_trip<reply>(#name " reply");
  FSOUT_OPERATIONS(FSOUT_ROUND_TRIP)
#undef FSOUT_ROUND_TRIP
}

TEST(Codec, NotifyRoundTrips) {
  expect_round_trip<NotifyMessage>("NOTIFY");
  expect_round_trip<AttrNotice>("NOTIFY attr");
}

TEST(Codec, OpcodesAreNamedAndUnique) {
  std::set<std::string> names;
#define FSOUT_NAMES(number, name, request, reply) \
  EXPECT_STREQ(opcode_name(number), #name);       \
  EXPECT_TRUE(names.insert(#name).second) << #name;
  FSOUT_OPERATIONS(FSOUT_NAMES)
#undef FSOUT_NAMES
  EXPECT_EQ(opcode_name(0), nullptr);
  EXPECT_EQ(opcode_name(999), nullptr);
  EXPECT_FALSE(is_known_opcode(0xFFFF));
}

TEST(Codec, ErrorReplyCarriesOnlyTheStatus) {
  std::vector<uint8_t> bytes;
  encode_error_reply(bytes, 2);
  EntryReply reply;
  EXPECT_EQ(decode_reply(bytes, reply), 2u);
  bytes.push_back(1);  // an error reply with a body is malformed
  EXPECT_EQ(decode_reply(bytes, reply), kMalformedReply);
  EXPECT_EQ(decode_reply(std::span<const uint8_t>(bytes.data(), 3), reply), kMalformedReply);
}

std::vector<uint8_t> lookup_with_name(const std::string& name) {
  std::vector<uint8_t> bytes;
  Writer w(bytes);
  w.u64(1);
  w.bytes(name);
  return bytes;
}

TEST(Codec, NamesThatAreNotOneComponentAreRefused) {
  LookupRequest request;
  EXPECT_TRUE(decode_message(lookup_with_name("file.txt"), request));
  EXPECT_EQ(request.name.value, "file.txt");
  EXPECT_TRUE(decode_message(lookup_with_name("..."), request));
  EXPECT_TRUE(decode_message(lookup_with_name(std::string(1024, 'x')), request));
  for (std::string bad :
       {std::string(""), std::string("."), std::string(".."), std::string("a/b"), std::string("/"),
        std::string("../etc"), std::string("x\0y", 3), std::string(1025, 'x')})
    EXPECT_FALSE(decode_message(lookup_with_name(bad), request)) << "'" << bad << "'";
}

TEST(Codec, OversizedFieldsAreRefusedBeforeAllocation) {
  // A string that claims 4 GiB in a 20-byte message.
  std::vector<uint8_t> bytes;
  Writer w(bytes);
  w.u64(1);
  w.u32(0xFFFFFFFF);
  w.raw("abcd", 4);
  LookupRequest lookup;
  EXPECT_FALSE(decode_message(bytes, lookup));
  // A list that claims a billion items.
  bytes.clear();
  w.u32(1000000000);
  ForgetRequest forget;
  EXPECT_FALSE(decode_message(bytes, forget));
  // A symlink target over the path limit.
  SymlinkRequest symlink;
  symlink.parent = NodeId{1};
  symlink.name.value = "l";
  symlink.target.value = std::string(kMaxPathBytes + 1, 't');
  bytes.clear();
  encode_message(bytes, symlink);
  SymlinkRequest decoded;
  EXPECT_FALSE(decode_message(bytes, decoded));
}

TEST(Frame, HeaderRoundTripsAndRejectsDamage) {
  FrameHeader header{FrameKind::kReply, 17, 0x1122334455667788ull, 4096};
  uint8_t bytes[kFrameHeaderSize];
  encode_frame_header(header, bytes);
  FrameHeader decoded;
  ASSERT_EQ(decode_frame_header(std::span<const uint8_t, kFrameHeaderSize>(bytes), decoded),
            HeaderStatus::kOk);
  EXPECT_EQ(decoded, header);
  for (size_t i = 0; i < kFrameHeaderSize; ++i) {
    uint8_t damaged[kFrameHeaderSize];
    std::memcpy(damaged, bytes, sizeof(bytes));
    damaged[i] ^= 0x40;
    EXPECT_NE(decode_frame_header(std::span<const uint8_t, kFrameHeaderSize>(damaged), decoded),
              HeaderStatus::kOk)
        << "byte " << i;
  }
}

TEST(Frame, FindsAHeaderAfterGarbage) {
  std::vector<uint8_t> stream(100, 'F');  // many false starts of the magic
  uint8_t header[kFrameHeaderSize];
  encode_frame_header({FrameKind::kRequest, 1, 7, 0}, header);
  stream.insert(stream.end(), header, header + sizeof(header));
  auto found = find_frame_header(stream);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, 100u);
  EXPECT_FALSE(find_frame_header(std::span<const uint8_t>(stream.data(), 110)).has_value());
}

// Random garbage through every decoder: nothing may crash or read out of
// bounds (this runs under ASan/UBSan; tests/fuzz has the coverage-guided one).
TEST(Codec, RandomGarbageNeverCrashes) {
  std::mt19937_64 random(12345);
  std::vector<uint8_t> bytes;
  for (int round = 0; round < 3000; ++round) {
    bytes.resize(random() % 200);
    for (auto& b : bytes) b = uint8_t(random());
    // Bias some inputs towards plausible small lengths.
    if (bytes.size() > 12 && round % 2) bytes[8] = bytes[9] = bytes[10] = 0;
#define FSOUT_GARBAGE(number, name, request, reply) \
  {                                                 \
    request q;                                      \
    (void)decode_message(bytes, q);                 \
    reply p;                                        \
    (void)decode_reply(bytes, p);                   \
  }
    FSOUT_OPERATIONS(FSOUT_GARBAGE)
#undef FSOUT_GARBAGE
    FrameHeader header;
    if (bytes.size() >= kFrameHeaderSize)
      (void)decode_frame_header(std::span<const uint8_t>(bytes).first<kFrameHeaderSize>(), header);
    (void)find_frame_header(bytes);
  }
  SUCCEED();
}

}  // namespace
}  // namespace fsout::protocol

// docs/PROTOCOL.md is the source of truth: its operation table must list
// every operation of the code with the same number.
#include <fstream>
#include <sstream>
namespace fsout::protocol {
namespace {
TEST(ProtocolDocument, ListsEveryOperation) {
  std::ifstream in(FSOUT_SOURCE_DIR "/docs/PROTOCOL.md");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
#define FSOUT_DOC(number, name, request, reply) \
  EXPECT_NE(doc.find("| " #number " | " #name " |"), std::string::npos) << #name;
  FSOUT_OPERATIONS(FSOUT_DOC)
#undef FSOUT_DOC
}
}  // namespace
}  // namespace fsout::protocol
