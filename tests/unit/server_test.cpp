// The host served in-process: a Server on one end of a socketpair (or a pty
// for serial), libfsout's Connection on the other.
#include "host/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "client/connection.h"

namespace fsout {
namespace {

using namespace protocol;
using client::Connection;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/fsout-test-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { host::install_session_signals(); }

  void start(bool read_only = false, size_t max_handles = 4096) {
    fs::create_directories(dir_.path() + "/export");
    host::ServerConfig config;
    config.root_path = dir_.path() + "/export";
    config.session.read_only = read_only;
    config.session.limits.max_handles = max_handles;
    server_ = std::make_unique<host::Server>(config);
  }
  std::unique_ptr<Connection> connect(client::Options options = {}) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    server_->serve_fd(fds[0], false, "test");
    auto connection = std::make_unique<Connection>(fds[1], false, options, "test");
    connection->start();
    return connection;
  }
  std::string exported(const std::string& name) { return dir_.path() + "/export/" + name; }

  TempDir dir_;
  std::unique_ptr<host::Server> server_;
};

std::string read_all(Connection& c, HandleId handle) {
  std::string content;
  for (uint64_t offset = 0;;) {
    std::promise<size_t> done;
    c.call_async<Opcode::kRead>(
        ReadRequest{handle, offset, 1 << 20}, [&](int error, const DataReply& r) {
          EXPECT_EQ(error, 0);
          content.append(reinterpret_cast<const char*>(r.data.data.data()), r.data.data.size());
          done.set_value(r.data.data.size());
        });
    size_t got = done.get_future().get();
    if (got == 0) return content;
    offset += got;
  }
}

TEST_F(ServerTest, FileLifecycle) {
  start();
  auto c = connect();
  EXPECT_EQ(c->hello().root, kRootNode);
  auto created =
      c->call<Opcode::kCreate>(CreateRequest{kRootNode,
                                             Name{"f"},
                                             canonical::kOpenRdwr | canonical::kOpenCreat,
                                             canonical::kModeRegular | 0640,
                                             {}});
  ASSERT_TRUE(created.ok()) << created.error();
  HandleId h = created.value().handle;
  std::string data(3 << 20, 'q');
  data[12345] = 'Z';
  for (size_t off = 0; off < data.size(); off += 1 << 20) {
    auto part = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()) + off,
                                         std::min<size_t>(1 << 20, data.size() - off));
    auto w = c->call<Opcode::kWrite>(WriteRequest{h, off, Tail{part}});
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.value().written, part.size());
  }
  EXPECT_EQ(read_all(*c, h), data);
  EXPECT_TRUE(c->call<Opcode::kFsync>(FsyncRequest{h, 0}).ok());
  EXPECT_TRUE(c->call<Opcode::kRelease>(HandleRequest{h}).ok());
  struct stat st;
  ASSERT_EQ(stat(exported("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, off_t(data.size()));
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  auto entry = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"f"}});
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry.value().node, created.value().entry.node);  // same inode, same id
  EXPECT_EQ(entry.value().attr.inode, st.st_ino);

  auto renamed =
      c->call<Opcode::kRename>(RenameRequest{kRootNode, Name{"f"}, kRootNode, Name{"g"}, 0});
  EXPECT_TRUE(renamed.ok());
  EXPECT_TRUE(fs::exists(exported("g")));
  auto removed = c->call<Opcode::kUnlink>(RemoveRequest{kRootNode, Name{"g"}});
  EXPECT_TRUE(removed.ok());
  EXPECT_FALSE(fs::exists(exported("g")));
  // The node outlives its name: attributes still come (nlink 0).
  auto attr = c->call<Opcode::kGetattr>(GetattrRequest{entry.value().node, {}});
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr.value().attr.nlink, 0u);
}

TEST_F(ServerTest, LookupCountsAndForget) {
  start();
  write_file(exported("a"), "x");
  auto c = connect();
  auto first = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"a"}});
  auto second = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"a"}});
  ASSERT_TRUE(first.ok() && second.ok());
  NodeId id = first.value().node;
  EXPECT_EQ(second.value().node, id);
  c->call_async<Opcode::kForget>(ForgetRequest{{ForgetItem{id, 1}}}, [](int, const Empty&) {});
  EXPECT_TRUE(c->call<Opcode::kGetattr>(GetattrRequest{id, {}}).ok());  // one lookup left
  c->call_async<Opcode::kForget>(ForgetRequest{{ForgetItem{id, 5}}}, [](int, const Empty&) {});
  auto gone = c->call<Opcode::kGetattr>(GetattrRequest{id, {}});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error(), ESTALE);
  auto again = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"a"}});
  ASSERT_TRUE(again.ok());
  EXPECT_GT(again.value().node.value, id.value);  // ids are never reused
  // The root is never forgotten.
  c->call_async<Opcode::kForget>(ForgetRequest{{ForgetItem{kRootNode, 100}}},
                                 [](int, const Empty&) {});
  EXPECT_TRUE(c->call<Opcode::kGetattr>(GetattrRequest{kRootNode, {}}).ok());
}

TEST_F(ServerTest, IdsNeverIssuedAreErrorsNotCrashes) {
  start();
  auto c = connect();
  EXPECT_EQ(c->call<Opcode::kGetattr>(GetattrRequest{NodeId{424242}, {}}).error(), ESTALE);
  EXPECT_EQ(c->call<Opcode::kLookup>(LookupRequest{NodeId{0}, Name{"x"}}).error(), ESTALE);
  EXPECT_EQ(c->call<Opcode::kOpen>(OpenRequest{NodeId{~0ull}, 0}).error(), ESTALE);
  EXPECT_EQ(c->call<Opcode::kRead>(ReadRequest{HandleId{77}, 0, 10}).error(), EBADF);
  EXPECT_EQ(c->call<Opcode::kRelease>(HandleRequest{HandleId{77}}).error(), EBADF);
  EXPECT_EQ(c->call<Opcode::kReaddir>(ReaddirRequest{HandleId{1}, 0, 4096, {}}).error(), EBADF);
  c->call_async<Opcode::kForget>(ForgetRequest{{ForgetItem{NodeId{999}, 1}}},
                                 [](int, const Empty&) {});
  // Oversized reads are cut to the session's message size, not allocated.
  auto created = c->call<Opcode::kCreate>(CreateRequest{
      kRootNode, Name{"f"}, canonical::kOpenRdwr, canonical::kModeRegular | 0600, {}});
  ASSERT_TRUE(created.ok());
  auto huge = c->call<Opcode::kRead>(ReadRequest{created.value().handle, 0, 0xFFFFFFFF});
  ASSERT_TRUE(huge.ok());
  EXPECT_EQ(huge.value().data.data.size(), 0u);  // an empty file, read whole
  EXPECT_TRUE(c->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
}

TEST_F(ServerTest, UnknownOpcodeIsRefusedAndTheSessionGoesOn) {
  start();
  auto c = connect();
  std::promise<uint32_t> status;
  c->send(Opcode(999), {}, {}, [&](uint32_t s, std::span<const uint8_t>) { status.set_value(s); });
  EXPECT_EQ(status.get_future().get(), uint32_t(canonical::Errno::kNosys));
  EXPECT_TRUE(c->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
}

TEST_F(ServerTest, LongNamesGetEnametoolong) {
  start();
  auto c = connect();
  std::string name(256, 'n');
  EXPECT_EQ(c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{name}}).error(), ENAMETOOLONG);
  EXPECT_EQ(c->call<Opcode::kMkdir>(MkdirRequest{kRootNode, Name{name}, 0755, {}}).error(),
            ENAMETOOLONG);
  EXPECT_TRUE(c
                  ->call<Opcode::kMkdir>(MkdirRequest{
                      kRootNode, Name{std::string(255, 'n')}, canonical::kModeDirectory | 0755, {}})
                  .ok());
}

TEST_F(ServerTest, ReadOnlyExportRefusesChanges) {
  start(/*read_only=*/true);
  write_file(exported("a"), "content");
  auto c = connect();
  EXPECT_TRUE(c->read_only());
  EXPECT_EQ(c->call<Opcode::kCreate>(
                 CreateRequest{kRootNode, Name{"b"}, canonical::kOpenWronly, 0644, {}})
                .error(),
            EROFS);
  EXPECT_EQ(c->call<Opcode::kMkdir>(MkdirRequest{kRootNode, Name{"d"}, 0755, {}}).error(), EROFS);
  auto a = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"a"}});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(c->call<Opcode::kOpen>(OpenRequest{a.value().node, canonical::kOpenRdwr}).error(),
            EROFS);
  EXPECT_EQ(c->call<Opcode::kUnlink>(RemoveRequest{kRootNode, Name{"a"}}).error(), EROFS);
  auto opened = c->call<Opcode::kOpen>(OpenRequest{a.value().node, canonical::kOpenRdonly});
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(read_all(*c, opened.value().handle), "content");
  EXPECT_TRUE(fs::exists(exported("a")));
  EXPECT_FALSE(fs::exists(exported("b")));
}

TEST_F(ServerTest, OpenHandlesAreLimitedPerSession) {
  start(false, /*max_handles=*/3);
  write_file(exported("a"), "x");
  auto c = connect();
  auto a = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"a"}});
  ASSERT_TRUE(a.ok());
  std::vector<HandleId> handles;
  for (int i = 0; i < 3; ++i) {
    auto h = c->call<Opcode::kOpen>(OpenRequest{a.value().node, 0});
    ASSERT_TRUE(h.ok());
    handles.push_back(h.value().handle);
  }
  EXPECT_EQ(c->call<Opcode::kOpen>(OpenRequest{a.value().node, 0}).error(), EMFILE);
  EXPECT_TRUE(c->call<Opcode::kRelease>(HandleRequest{handles[0]}).ok());
  EXPECT_TRUE(c->call<Opcode::kOpen>(OpenRequest{a.value().node, 0}).ok());
  // Another session has its own budget.
  auto other = connect();
  EXPECT_TRUE(other->call<Opcode::kOpendir>(OpenRequest{kRootNode, 0}).ok());
}

TEST_F(ServerTest, ReaddirplusPagesThroughABigDirectory) {
  start();
  fs::create_directory(exported("big"));
  for (int i = 0; i < 3000; ++i) write_file(exported("big/file" + std::to_string(i)), "");
  auto c = connect();
  auto big = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"big"}});
  ASSERT_TRUE(big.ok());
  auto dir = c->call<Opcode::kOpendir>(OpenRequest{big.value().node, 0});
  ASSERT_TRUE(dir.ok());
  std::set<std::string> seen;
  uint64_t offset = 0;
  int pages = 0;
  for (;;) {
    auto page = c->call<Opcode::kReaddirplus>(ReaddirRequest{dir.value().handle, offset, 4096, {}});
    ASSERT_TRUE(page.ok());
    if (page.value().entries.empty()) break;
    ++pages;
    for (auto& item : page.value().entries) {
      EXPECT_TRUE(seen.insert(item.dirent.name.value).second) << item.dirent.name.value;
      offset = item.dirent.next_offset;
      if (item.entry.node.value) {
        EXPECT_EQ(canonical::mode_from_wire(item.entry.attr.mode).value_or(0) & S_IFMT,
                  unsigned(S_IFREG));
      }
    }
  }
  EXPECT_EQ(seen.size(), 3002u);  // with "." and ".."
  EXPECT_GT(pages, 20);           // the 4 KiB budget was honoured
}

// Whatever size a request asks for, the reply fits the message size the session negotiated
// (and the host builds no more than that): a READ is shortened, a listing comes in pages.
TEST_F(ServerTest, RepliesNeverExceedTheNegotiatedMessageSize) {
  start();
  write_file(exported("big"), std::string(1 << 20, 'x'));
  fs::create_directory(exported("dir"));
  for (int i = 0; i < 3000; ++i)
    write_file(exported("dir/a-rather-long-file-name-for-the-listing-" + std::to_string(i)), "");
  client::Options options;
  options.max_message = 64 * 1024;
  auto c = connect(options);
  auto file = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"big"}});
  ASSERT_TRUE(file.ok());
  auto h = c->call<Opcode::kOpen>(OpenRequest{file.value().node, canonical::kOpenRdonly});
  ASSERT_TRUE(h.ok());
  auto read = c->call<Opcode::kRead>(ReadRequest{h.value().handle, 0, 1 << 20});
  ASSERT_TRUE(read.ok());
  EXPECT_GT(read.value().data.data.size(), 0u);
  EXPECT_LE(read.value().data.data.size(), 64u * 1024);
  auto dir = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"dir"}});
  ASSERT_TRUE(dir.ok());
  auto handle = c->call<Opcode::kOpendir>(OpenRequest{dir.value().node, 0});
  ASSERT_TRUE(handle.ok());
  for (Opcode op : {Opcode::kReaddir, Opcode::kReaddirplus}) {
    std::set<std::string> seen;
    uint64_t offset = 0;
    int pages = 0;
    for (;; ++pages) {
      size_t count = 0;
      if (op == Opcode::kReaddir) {
        auto page = c->call<Opcode::kReaddir>(
            ReaddirRequest{handle.value().handle, offset, UINT32_MAX, {}});
        ASSERT_TRUE(page.ok());
        for (auto& entry : page.value().entries)
          seen.insert(entry.name.value), offset = entry.next_offset;
        count = page.value().entries.size();
      } else {
        auto page = c->call<Opcode::kReaddirplus>(
            ReaddirRequest{handle.value().handle, offset, UINT32_MAX, {}});
        ASSERT_TRUE(page.ok());
        std::vector<ForgetItem> looked_up;
        for (auto& item : page.value().entries) {
          seen.insert(item.dirent.name.value), offset = item.dirent.next_offset;
          if (item.entry.node.value) looked_up.push_back({item.entry.node, 1});
        }
        c->call_async<Opcode::kForget>(ForgetRequest{looked_up}, [](int, const Empty&) {});
        count = page.value().entries.size();
      }
      if (count == 0) break;
    }
    EXPECT_EQ(seen.size(), 3002u);
    EXPECT_GT(pages, 1);  // 3000 entries do not fit one 64 KiB message
  }
  EXPECT_TRUE(c->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());  // the session goes on
}

// Without a handle (the guest kernel opened the directory itself), READDIR
// names the node; each page is read from a fresh open at the offset given.
TEST_F(ServerTest, ReaddirWithoutAHandlePagesByNode) {
  start();
  fs::create_directory(exported("dir"));
  for (int i = 0; i < 500; ++i) write_file(exported("dir/file" + std::to_string(i)), "");
  auto c = connect();
  auto dir = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"dir"}});
  ASSERT_TRUE(dir.ok());
  std::set<std::string> seen;
  uint64_t offset = 0;
  for (;;) {
    auto page = c->call<Opcode::kReaddir>(ReaddirRequest{{}, offset, 2048, dir.value().node});
    ASSERT_TRUE(page.ok());
    if (page.value().entries.empty()) break;
    for (auto& entry : page.value().entries) {
      EXPECT_TRUE(seen.insert(entry.name.value).second) << entry.name.value;
      offset = entry.next_offset;
    }
  }
  EXPECT_EQ(seen.size(), 502u);
  auto plus = c->call<Opcode::kReaddirplus>(ReaddirRequest{{}, 0, 4096, dir.value().node});
  ASSERT_TRUE(plus.ok());
  EXPECT_FALSE(plus.value().entries.empty());
  auto file = c->call<Opcode::kLookup>(LookupRequest{dir.value().node, Name{"file1"}});
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(c->call<Opcode::kReaddir>(ReaddirRequest{{}, 0, 4096, file.value().node}).error(),
            ENOTDIR);
  EXPECT_EQ(c->call<Opcode::kReaddir>(ReaddirRequest{{}, 0, 4096, NodeId{999999}}).error(), ESTALE);
  EXPECT_EQ(c->call<Opcode::kReaddir>(ReaddirRequest{{}, 0, 4096, {}}).error(), EBADF);
}

// Blocked lock waits must not take the session's workers: more waiters than
// workers, and the unlock that frees them still gets through.
TEST_F(ServerTest, LockWaitersDoNotStallTheSession) {
  start();
  write_file(exported("locked"), "data");
  auto c = connect();
  auto node = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"locked"}});
  ASSERT_TRUE(node.ok());
  auto open_handle = [&] {
    auto h = c->call<Opcode::kOpen>(OpenRequest{node.value().node, canonical::kOpenRdwr});
    EXPECT_TRUE(h.ok());
    return h.value().handle;
  };
  HandleId holder = open_handle();
  Lock whole{kLockWrite, 0, UINT64_MAX, 1};
  ASSERT_TRUE(c->call<Opcode::kSetlk>(SetlkRequest{holder, /*owner=*/1, whole, 0}).ok());
  constexpr int kWaiters = 10;  // more than the 4 workers
  std::vector<std::future<int>> granted;
  for (int i = 0; i < kWaiters; ++i) {
    auto promise = std::make_shared<std::promise<int>>();
    granted.push_back(promise->get_future());
    Lock read{kLockRead, 0, UINT64_MAX, uint32_t(100 + i)};
    c->call_async<Opcode::kSetlk>(
        SetlkRequest{open_handle(), uint64_t(100 + i), read, 1},
        [promise](int error, const Empty&) { promise->set_value(error); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (auto& g : granted)
    EXPECT_EQ(g.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  EXPECT_TRUE(c->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());  // not stalled
  Lock unlock{kLockUnlock, 0, UINT64_MAX, 1};
  ASSERT_TRUE(c->call<Opcode::kSetlk>(SetlkRequest{holder, 1, unlock, 0}).ok());
  for (auto& g : granted) {
    ASSERT_EQ(g.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    EXPECT_EQ(g.get(), 0);
  }
}

// A session that ends while lock requests wait ends cleanly.
TEST_F(ServerTest, SessionEndInterruptsLockWaiters) {
  start();
  write_file(exported("locked"), "data");
  {
    auto c = connect();
    auto node = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"locked"}});
    ASSERT_TRUE(node.ok());
    auto a = c->call<Opcode::kOpen>(OpenRequest{node.value().node, canonical::kOpenRdwr});
    auto b = c->call<Opcode::kOpen>(OpenRequest{node.value().node, canonical::kOpenRdwr});
    ASSERT_TRUE(a.ok() && b.ok());
    Lock whole{kLockWrite, 0, UINT64_MAX, 1};
    ASSERT_TRUE(c->call<Opcode::kSetlk>(SetlkRequest{a.value().handle, 1, whole, 0}).ok());
    c->call_async<Opcode::kSetlk>(SetlkRequest{b.value().handle, 2, whole, 1},
                                  [](int, const Empty&) {});
    c->call_async<Opcode::kFlock>(FlockRequest{a.value().handle, kFlockExclusive},
                                  [](int, const Empty&) {});
    c->call_async<Opcode::kFlock>(FlockRequest{b.value().handle, kFlockExclusive},
                                  [](int, const Empty&) {});
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }  // the guest goes away with requests blocked on the host
  auto start_time = std::chrono::steady_clock::now();
  while (server_->session_count() > 0 &&
         std::chrono::steady_clock::now() - start_time < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(server_->session_count(), 0u);
}

// Once the host is gone every request is answered at once, never left hanging.
TEST_F(ServerTest, RequestsAfterTheHostLeftFailFast) {
  start();
  auto c = connect();
  ASSERT_TRUE(c->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
  server_->stop();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(c->call<Opcode::kStatfs>(NodeRequest{kRootNode}).error(), ENOTCONN);
  EXPECT_FALSE(c->connected());
}

TEST_F(ServerTest, GarbageClosesOnlyThatSession) {
  start();
  auto good = connect();
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  server_->serve_fd(fds[0], false, "garbage");
  const char garbage[] = "\x00\x01\x02 this is not a frame, not at all";
  ASSERT_GT(write(fds[1], garbage, sizeof(garbage)), 0);
  char buffer[16];
  EXPECT_EQ(read(fds[1], buffer, sizeof(buffer)), 0);  // the host hung up
  close(fds[1]);
  EXPECT_TRUE(good->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
}

TEST_F(ServerTest, MalformedRequestClosesTheSession) {
  start();
  auto bad = connect();
  auto good = connect();
  // A LOOKUP whose name is a path: refused while decoding, session ended.
  LookupRequest request{kRootNode, Name{"../../etc"}};
  auto result = bad->call<Opcode::kLookup>(request);
  EXPECT_EQ(result.error(), ENOTCONN);
  EXPECT_TRUE(good->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
}

TEST_F(ServerTest, VersionMismatchIsRefused) {
  start();
  client::Options options;
  options.min_version = options.max_version = 99;
  try {
    connect(options);
    ADD_FAILURE() << "HELLO with version 99 was accepted";
  } catch (const client::ClientError& error) {
    EXPECT_NE(std::string(error.what()).find("version mismatch"), std::string::npos)
        << error.what();
  }
}

// A serial port stays open while guest modules come and go: a new HELLO
// after an old session's leftovers (even a torn frame) starts afresh.
TEST_F(ServerTest, SerialStreamRestartsOnANewHello) {
  start();
  write_file(exported("a"), "hello");
  int master = -1, slave = -1;
  char name[256];
  ASSERT_EQ(openpty(&master, &slave, name, nullptr, nullptr), 0);
  server_->listen(transport::parse_address(std::string("serial:") + name));
  server_->start();

  NodeId old_node;
  {
    Connection first(dup(master), true, {}, "guest-1");
    first.start();
    auto a = first.call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"a"}});
    ASSERT_TRUE(a.ok());
    old_node = a.value().node;
    // The guest module dies in the middle of sending a frame.
    uint8_t torn[kFrameHeaderSize];
    encode_frame_header({FrameKind::kRequest, uint16_t(Opcode::kWrite), 50, 4000}, torn);
    ASSERT_EQ(write(master, torn, sizeof(torn)), ssize_t(sizeof(torn)));
    ASSERT_EQ(write(master, "partial", 7), 7);
  }
  Connection second(dup(master), true, {}, "guest-2");
  second.start();
  // The old session's node ids mean nothing now...
  EXPECT_EQ(second.call<Opcode::kGetattr>(GetattrRequest{old_node, {}}).error(), ESTALE);
  // ...and the new session works.
  auto a = second.call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"a"}});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value().attr.size, 5u);
  second.close();
  server_->stop();
  close(master);
  close(slave);
}

}  // namespace
}  // namespace fsout
