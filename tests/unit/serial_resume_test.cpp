// The guest's side of a host restart on a serial port (virtio-serial), against a host
// played by the test on a pty: the port stays open while the host end goes away and comes
// back, so what the old host left half written is still in the guest's stream, and the new
// host's first bytes (its HELLO answer, then a burst of notifications) must not be taken
// for the rest of it. And a host that never answers one HELLO is asked again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "client/connection.h"
#include "protocol/codec.h"
#include "transport/stream.h"

namespace fsout {
namespace {

using namespace protocol;
using namespace std::chrono_literals;
using client::Connection;

const std::string kToken(32, 'a');

// The host end of the port: a raw tty, read frame by frame (skipping garbage).
class FakeHost {
 public:
  explicit FakeHost(const std::string& device) {
    int fd = open(device.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    termios raw{};
    tcgetattr(fd, &raw);
    cfmakeraw(&raw);
    tcsetattr(fd, TCSANOW, &raw);
    stream_ = std::make_unique<transport::FrameStream>(fd, true);
  }
  // The next request of kind `opcode` within `limit`, skipping others.
  bool next(Opcode opcode, FrameHeader& header, std::vector<uint8_t>& payload,
            std::chrono::milliseconds limit = 10s) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || stream_->read_frame(header, payload, int(left.count())) !=
                                   transport::FrameStream::ReadStatus::kFrame)
        return false;
      if (header.kind != FrameKind::kRequest) continue;
      if (header.opcode == uint16_t(opcode)) return true;
      // A real host answers every HELLO (the guest waits for its latest one).
      if (answer_hellos_ && header.opcode == uint16_t(Opcode::kHello)) {
        answer_hello(header, true);
        ++hellos_answered_;
      }
    }
  }
  // From now on, next() answers the HELLOs it passes over.
  void answer_hellos() { answer_hellos_ = true; }
  int hellos_answered() const { return hellos_answered_; }
  template <class Reply>
  void reply(const FrameHeader& request, const Reply& reply) {
    std::vector<uint8_t> body;
    encode_reply(body, reply);
    EXPECT_TRUE(
        stream_->write_frame({FrameKind::kReply, request.opcode, request.request_id, 0}, body));
  }
  void answer_hello(const FrameHeader& request, bool resumed) {
    HelloReply hello;
    hello.capabilities = kCapAllKnown & ~kCapNotify & ~kCapDirAttrs;
    hello.session.value = kToken;
    hello.flags = resumed ? kHelloResumed : 0;
    hello.root = kRootNode;
    reply(request, hello);
  }
  // Notifications the guest does not act on (a bare Connection has no callback): bytes
  // that a torn frame of the old host would swallow.
  void notify_burst(size_t frames) {
    std::vector<uint8_t> junk(500, 0x5a);
    for (size_t i = 0; i < frames; ++i)
      EXPECT_TRUE(stream_->write_frame({FrameKind::kNotify, 77, 0, 0}, junk));
  }
  // Dies in the middle of a reply: its header and a little of its body.
  void die_mid_reply(const FrameHeader& request) {
    uint8_t head[kFrameHeaderSize];
    encode_frame_header({FrameKind::kReply, request.opcode, request.request_id, 4000}, head);
    EXPECT_EQ(write(stream_->fd(), head, sizeof(head)), ssize_t(sizeof(head)));
    std::vector<uint8_t> part(100, 0x11);
    EXPECT_EQ(write(stream_->fd(), part.data(), part.size()), ssize_t(part.size()));
    tcdrain(stream_->fd());
    stream_.reset();  // the host end closes: the guest reads a hang-up
  }

 private:
  std::unique_ptr<transport::FrameStream> stream_;
  bool answer_hellos_ = false;
  int hellos_answered_ = 0;
};

class SerialResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    termios raw{};
    cfmakeraw(&raw);
    char name[256];
    ASSERT_EQ(openpty(&master_, &slave_, name, &raw, nullptr), 0);
    device_ = name;
    close(slave_);  // the fake hosts open the device themselves
  }
  // A guest connected through the first host, with one LOOKUP the first host dies
  // answering; then `second_host` plays the next one. The LOOKUP must be answered.
  // Returns how many HELLOs the guest said after `second_host` was done.
  int restart_during_a_reply(const std::function<void(FakeHost&)>& second_host) {
    auto first = std::make_unique<FakeHost>(device_);
    std::thread hello([&] {
      FrameHeader header;
      std::vector<uint8_t> payload;
      ASSERT_TRUE(first->next(Opcode::kHello, header, payload));
      first->answer_hello(header, false);
    });
    client::Options options;
    options.reconnect_seconds = 30;
    Connection guest(master_, true, options, "serial guest");
    hello.join();
    guest.start();
    auto answered = std::make_shared<std::promise<uint64_t>>();
    guest.call_async<Opcode::kLookup>(LookupRequest{kRootNode, Name{"file"}},
                                      [answered](int error, const EntryReply& entry) {
                                        answered->set_value(error ? 0 : entry.node.value);
                                      });
    FrameHeader lookup;
    std::vector<uint8_t> payload;
    EXPECT_TRUE(first->next(Opcode::kLookup, lookup, payload));
    first->die_mid_reply(lookup);
    first.reset();
    std::this_thread::sleep_for(500ms);  // the guest sees the host gone, says HELLO again

    FakeHost next(device_);
    second_host(next);
    next.answer_hellos();
    // The guest sends its LOOKUP again, under the same id.
    FrameHeader again;
    EXPECT_TRUE(next.next(Opcode::kLookup, again, payload)) << "the guest did not send it again";
    EXPECT_EQ(again.request_id, lookup.request_id);
    EntryReply entry;
    entry.node = NodeId{42};
    next.reply(again, entry);
    auto future = answered->get_future();
    EXPECT_EQ(future.wait_for(20s), std::future_status::ready) << "the guest hangs";
    if (future.wait_for(0s) == std::future_status::ready) {
      EXPECT_EQ(future.get(), 42u);
    }
    guest.close();
    return next.hellos_answered();
  }

  int master_ = -1, slave_ = -1;
  std::string device_;
};

TEST_F(SerialResumeTest, WhatTheOldHostLeftHalfWrittenDoesNotSwallowTheNewHostsAnswer) {
  const int said_again = restart_during_a_reply([](FakeHost& host) {
    // The HELLOs the guest says to the new host: the first, and any within 300 ms after
    // it; the guest waits for the answer to its latest.
    FrameHeader header, latest;
    std::vector<uint8_t> payload;
    int seen = 0;
    auto until = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < until)
      if (host.next(Opcode::kHello, header, payload, 50ms)) {
        HelloRequest request;
        EXPECT_TRUE(decode_message(payload, request));
        EXPECT_EQ(request.session.value, kToken) << "the guest did not ask to resume";
        latest = header;
        if (seen++ == 0) until = std::chrono::steady_clock::now() + 300ms;
      }
    ASSERT_GT(seen, 0) << "the guest said no HELLO to the new host";
    // The answer and, in the same burst, more than the torn reply's missing 3900 bytes.
    host.answer_hello(latest, true);
    host.notify_burst(12);
  });
  // Had the torn reply taken the answer for its rest, the guest would have heard nothing
  // and said HELLO again.
  EXPECT_EQ(said_again, 0) << "the answer to HELLO was lost in the old host's torn reply";
}

TEST_F(SerialResumeTest, AHelloThatGetsNoAnswerIsSaidAgain) {
  (void)restart_during_a_reply([](FakeHost& host) {
    // Every HELLO of the first 1.5 s here is lost (the guest may have said several while
    // no host was there; once one got through, it waits for its answer).
    FrameHeader header;
    std::vector<uint8_t> payload;
    const auto deaf_until = std::chrono::steady_clock::now() + 1500ms;
    int lost = 0;
    while (std::chrono::steady_clock::now() < deaf_until)
      if (host.next(Opcode::kHello, header, payload, 100ms)) ++lost;
    EXPECT_GT(lost, 0) << "the guest said no HELLO to the new host";
    ASSERT_TRUE(host.next(Opcode::kHello, header, payload))
        << "the guest never said HELLO again to a host that stayed silent";
    host.answer_hello(header, true);
  });
}

}  // namespace
}  // namespace fsout
