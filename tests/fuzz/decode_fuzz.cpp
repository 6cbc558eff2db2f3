// Coverage-guided fuzzer (libFuzzer) for everything that decodes guest
// input: frame headers, resynchronisation, and every request and reply of
// the operation list, and NOTIFY. Built and run by tests/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/codec.h"
#include "protocol/frame.h"

using namespace fsout::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  if (size >= kFrameHeaderSize) {
    FrameHeader header;
    (void)decode_frame_header(input.first<kFrameHeaderSize>(), header);
  }
  (void)find_frame_header(input);
  {
    NotifyMessage note;  // host to guest
    (void)decode_message(input, note);
    AttrNotice notice;
    (void)decode_message(input, notice);
  }
  // The first byte picks an operation so that the fuzzer can specialise.
  if (size == 0) return 0;
  uint16_t opcode = uint16_t(1 + data[0] % 35);
  auto body = input.subspan(1);
  switch (opcode) {
#define FSOUT_FUZZ(number, name, request, reply)                            \
  case number: {                                                            \
    request q;                                                              \
    if (decode_message(body, q)) {                                          \
      std::vector<uint8_t> again;                                           \
      encode_message(again, q);                                             \
      request twice;                                                        \
      if (!decode_message(again, twice) || !(twice == q)) __builtin_trap(); \
    }                                                                       \
    reply p;                                                                \
    (void)decode_reply(body, p);                                            \
    break;                                                                  \
  }
    FSOUT_OPERATIONS(FSOUT_FUZZ)
#undef FSOUT_FUZZ
  }
  return 0;
}
