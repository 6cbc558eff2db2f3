// A resumed session's requests sent again (docs/ARCHITECTURE.md, "Restarts"), at the frame
// level: a Server with a state directory on one end of a socketpair, raw frames on the
// other, so the test chooses exactly which request goes again under which id. fsoutd's
// death between performing an append and saving its reply is made by cutting that reply's
// record off the state file, as a SIGKILL at that moment leaves it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "host/server.h"
#include "host/session_state.h"
#include "protocol/codec.h"
#include "transport/stream.h"

namespace fsout {
namespace {

using namespace protocol;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One guest connection spoken frame by frame.
class RawGuest {
 public:
  explicit RawGuest(host::Server& server) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    server.serve_fd(fds[0], false, "raw guest");
    stream_ = std::make_unique<transport::FrameStream>(fds[1], false);
  }
  // Sends a request under `id` and returns the reply's status (0: ok), decoded into `reply`.
  template <class Request, class Reply>
  uint32_t call(Opcode opcode, uint64_t id, const Request& request, Reply& reply) {
    std::vector<uint8_t> body;
    encode_message(body, request);
    EXPECT_TRUE(stream_->write_frame({FrameKind::kRequest, uint16_t(opcode), id, 0}, body));
    for (;;) {
      FrameHeader header;
      std::vector<uint8_t> payload;
      if (stream_->read_frame(header, payload) != transport::FrameStream::ReadStatus::kFrame)
        return kMalformedReply;
      if (header.kind == FrameKind::kReply && header.request_id == id)
        return decode_reply(payload, reply);
    }
  }
  HelloReply hello(const std::string& token) {
    HelloRequest request;
    request.capabilities = kCapAllKnown;
    request.guest_os.value = "linux";
    request.session.value = token;
    HelloReply reply;
    EXPECT_EQ(call(Opcode::kHello, next_hello_++, request, reply), 0u);
    return reply;
  }
  WriteReply write(uint64_t id, HandleId handle, const std::string& data) {
    WriteRequest request{
        handle, 0, Tail{std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size())}};
    WriteReply reply;
    EXPECT_EQ(call(Opcode::kWrite, id, request, reply), 0u);
    return reply;
  }

 private:
  std::unique_ptr<transport::FrameStream> stream_;
  uint64_t next_hello_ = 1'000'000;
};

class ResumeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { host::install_session_signals(); }
  void SetUp() override {
    char pattern[] = "/tmp/fsout-resume-XXXXXX";
    root_ = mkdtemp(pattern);
    fs::create_directories(root_ + "/export");
    fs::create_directories(root_ + "/state");
  }
  void TearDown() override {
    server_.reset();
    parked_.reset();
    fs::remove_all(root_);
  }
  // A new fsoutd: it opens again what the state directory holds.
  void start() {
    int export_fd = open((root_ + "/export").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    int state_fd = open((root_ + "/state").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(export_fd, 0);
    ASSERT_GE(state_fd, 0);
    parked_ = std::make_unique<host::ParkedSessions>(state_fd, export_fd, std::chrono::seconds(60));
    (void)parked_->restore_all({}, nullptr);  // lines for the log
    host::ServerConfig config;
    config.root_path = root_ + "/export";
    config.watch_changes = false;
    config.session.parked = parked_.get();
    server_ = std::make_unique<host::Server>(config);
    export_fd_ = export_fd;
  }
  // A graceful stop (SIGTERM): the sessions' state stays for the next start().
  void stop() {
    server_->drain(std::chrono::milliseconds(500));
    server_->stop();
    server_.reset();
    parked_.reset();
    close(export_fd_);
  }
  std::string state_file(const std::string& token) { return root_ + "/state/" + token + ".state"; }
  // Cuts the record that saved request `id`'s reply out of the session's file, as if
  // fsoutd had died just before writing it. The file's records are self-delimiting (u32
  // length, u32 checksum, u8 type, payload); the one cut is found by trying: the one
  // whose removal leaves `id` journaled but unanswered.
  void forget_reply(const std::string& token, uint64_t id) {
    const std::string path = state_file(token), data = slurp(path);
    std::vector<std::pair<size_t, size_t>> records;  // offset, length
    for (size_t at = 0; at + 9 <= data.size();) {
      uint32_t size;
      std::memcpy(&size, &data[at], 4);
      records.push_back({at, 9 + size_t(size)});
      at += 9 + size;
    }
    int dir = open((root_ + "/state").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = records.size(); i-- > 0;) {
      std::string cut = data;
      cut.erase(records[i].first, records[i].second);
      std::ofstream(path, std::ios::binary | std::ios::trunc) << cut;
      auto saved = host::StateLog::load(dir, token);
      if (saved && saved->journal.count(id) && !saved->journal[id].done) {
        close(dir);
        return;
      }
    }
    std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
    close(dir);
    ADD_FAILURE() << "no saved reply of request " << id << " in " << path;
  }
  // Opens `name` in the export for appending, write-only (how logs are opened).
  HandleId create_log(RawGuest& guest, NodeId root, const std::string& name) {
    CreateRequest request{root, Name{name},
                          canonical::kOpenWronly | canonical::kOpenAppend | canonical::kOpenCreat,
                          0644, Caller{getuid(), getgid(), {}}};
    CreateReply reply;
    EXPECT_EQ(guest.call(Opcode::kCreate, 5, request, reply), 0u);
    return reply.handle;
  }

  // A session that appended two lines (requests 10 and 11, both answered) to a write-only
  // log, then a graceful stop, and the saved reply of request 11 cut off. Returns the
  // session's token; `log` is the log's handle.
  std::string two_appends_then_reply_lost(HandleId& log) {
    start();
    std::string token;
    {
      RawGuest guest(*server_);
      HelloReply hello = guest.hello("");
      token = hello.session.value;
      log = create_log(guest, hello.root, "append.log");
      EXPECT_EQ(guest.write(10, log, "first line\n").written, 11u);
      EXPECT_EQ(guest.write(11, log, "second line\n").written, 12u);
      stop();
    }
    forget_reply(token, 11);
    return token;
  }

  std::string root_;
  int export_fd_ = -1;
  std::unique_ptr<host::ParkedSessions> parked_;
  std::unique_ptr<host::Server> server_;
};

// fsoutd performed the append, then died before it saved the reply: the append sent again
// must not land twice (it did, when the handle was write-only and could not read the file
// to see that the data was there).
TEST_F(ResumeTest, AnAppendPerformedButNotAnsweredIsNotPerformedAgain) {
  HandleId log{0};
  const std::string token = two_appends_then_reply_lost(log);
  ASSERT_FALSE(token.empty()) << "no session token offered";
  start();
  RawGuest guest(*server_);
  HelloReply hello = guest.hello(token);
  EXPECT_TRUE(hello.flags & kHelloResumed);
  // Request 11 again: performed already (the data is there), so answered, not repeated.
  EXPECT_EQ(guest.write(11, log, "second line\n").written, 12u);
  EXPECT_EQ(slurp(root_ + "/export/append.log"), "first line\nsecond line\n");
  // Request 10, answered and saved: its saved reply, nothing written.
  EXPECT_EQ(guest.write(10, log, "first line\n").written, 11u);
  EXPECT_EQ(slurp(root_ + "/export/append.log"), "first line\nsecond line\n");
  // A new append goes on after them.
  EXPECT_EQ(guest.write(12, log, "third line\n").written, 11u);
  EXPECT_EQ(slurp(root_ + "/export/append.log"), "first line\nsecond line\nthird line\n");
}

// fsoutd saved its intent to append, then died before the data reached the file: the
// append sent again is performed, once.
TEST_F(ResumeTest, AnAppendNotPerformedIsPerformedOnce) {
  HandleId log{0};
  const std::string token = two_appends_then_reply_lost(log);
  ASSERT_FALSE(token.empty()) << "no session token offered";
  fs::resize_file(root_ + "/export/append.log", 11);  // the second line never got there
  start();
  RawGuest guest(*server_);
  EXPECT_TRUE(guest.hello(token).flags & kHelloResumed);
  EXPECT_EQ(guest.write(11, log, "second line\n").written, 12u);
  EXPECT_EQ(slurp(root_ + "/export/append.log"), "first line\nsecond line\n");
  // And the answer is saved now: once more, nothing is written.
  EXPECT_EQ(guest.write(11, log, "second line\n").written, 12u);
  EXPECT_EQ(slurp(root_ + "/export/append.log"), "first line\nsecond line\n");
}

}  // namespace
}  // namespace fsout
