// Confinement and bad input against a running fsoutd: crafted requests from
// a client must never read, write or stat anything outside the export, and
// a misbehaving session must not disturb the others.
//
// Layout of each test's temporary root:
//   outside/secret     "TOP SECRET" (must never be read, changed or listed)
//   export/            what fsoutd serves
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>
#include <vector>

#include "client/connection.h"

namespace fsout {
namespace {

using namespace protocol;
using namespace std::chrono_literals;
using client::Connection;
namespace fs = std::filesystem;

const std::string kSecret = "TOP SECRET";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Confinement : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    char pattern[] = "/tmp/fsout-confine-XXXXXX";
    root_ = mkdtemp(pattern);
    fs::create_directory(root_ + "/outside");
    fs::create_directory(root_ + "/export");
    std::ofstream(root_ + "/outside/secret") << kSecret;
    address_ = "unix:" + root_ + "/sock";
    // Its state in the test's directory, not the host's /run (removed with it).
    std::vector<std::string> args = {FSOUTD_PATH, "--listen", address_, "--state-dir",
                                     root_ + "/state"};
    for (auto& extra : extra_args()) args.push_back(extra);
    args.push_back(root_ + "/export");
    daemon_ = fork();
    if (daemon_ == 0) {
      int log = open((root_ + "/fsoutd.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(log, 2);
      before_exec();
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(FSOUTD_PATH, argv.data());
      _exit(127);
    }
    for (int i = 0; i < 500 && !fs::exists(root_ + "/sock"); ++i) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(fs::exists(root_ + "/sock")) << "fsoutd did not start";
    // The socket is bound before the sandbox, the server made after it: fsoutd is ready
    // (all its threads and fds made) once it says what it serves.
    for (int i = 0;
         i < 500 && read_text(root_ + "/fsoutd.log").find("fsoutd: serving ") == std::string::npos;
         ++i)
      std::this_thread::sleep_for(10ms);
    outside_before_ = listing(root_ + "/outside");
  }

  void TearDown() override {
    if (HasFailure())
      std::fprintf(stderr, "fsoutd's log:\n%s\n", read_text(root_ + "/fsoutd.log").c_str());
    // Whatever happened, the outside is as it was.
    EXPECT_EQ(read_text(root_ + "/outside/secret"), kSecret);
    EXPECT_EQ(listing(root_ + "/outside"), outside_before_);
    if (daemon_ > 0) {
      kill(daemon_, SIGTERM);
      int status = 0;
      waitpid(daemon_, &status, 0);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "fsoutd crashed or failed";
    }
    fs::remove_all(root_);
  }

  static std::string listing(const std::string& dir) {
    std::string text;
    for (auto& entry : fs::directory_iterator(dir)) {
      struct stat st;
      lstat(entry.path().c_str(), &st);
      text += entry.path().filename().string() + ":" + std::to_string(st.st_size) + ":" +
              std::to_string(st.st_mtim.tv_nsec) + ";";
    }
    return text;
  }

  // For fixtures that start fsoutd differently: more options, and what the child process
  // does just before it becomes fsoutd.
  virtual std::vector<std::string> extra_args() { return {}; }
  virtual void before_exec() {}

  std::unique_ptr<Connection> connect() { return Connection::open(address_, {}); }
  // A bare connection to fsoutd's socket, without HELLO; -1 when connect() fails.
  int raw_connect(int flags = 0) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::string path = root_ + "/sock";
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
  std::string in_export(const std::string& name) { return root_ + "/export/" + name; }

  // Reads a whole file through the protocol; "" when it cannot be opened.
  static std::string read_node(Connection& c, NodeId node) {
    auto opened = c.call<Opcode::kOpen>(OpenRequest{node, canonical::kOpenRdonly});
    if (!opened.ok()) return "";
    std::promise<std::string> done;
    c.call_async<Opcode::kRead>(
        ReadRequest{opened.value().handle, 0, 4096}, [&](int error, const DataReply& r) {
          done.set_value(error ? "" : std::string(r.data.data.begin(), r.data.data.end()));
        });
    std::string content = done.get_future().get();
    c.call<Opcode::kRelease>(HandleRequest{opened.value().handle});
    return content;
  }

  std::string root_, address_, outside_before_;
  pid_t daemon_ = -1;
};

// Each crafted name ends its own session; a bystander session goes on.
TEST_F(Confinement, PathNamesEndTheSessionAndTouchNothing) {
  auto bystander = connect();
  const std::vector<std::string> names = {"..", "../outside/secret",    "a/b", "/etc/passwd",
                                          ".",  std::string("x\0y", 3), ""};
  for (const auto& name : names) {
    SCOPED_TRACE("name '" + name + "'");
    {
      auto c = connect();
      EXPECT_EQ(c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{name}}).error(), ENOTCONN);
      EXPECT_FALSE(c->connected());
    }
    {
      auto c = connect();
      EXPECT_EQ(
          c->call<Opcode::kCreate>(CreateRequest{kRootNode,
                                                 Name{name},
                                                 canonical::kOpenWronly | canonical::kOpenCreat,
                                                 canonical::kModeRegular | 0644,
                                                 {}})
              .error(),
          ENOTCONN);
    }
    {
      auto c = connect();
      EXPECT_EQ(
          c->call<Opcode::kRename>(RenameRequest{kRootNode, Name{"x"}, kRootNode, Name{name}, 0})
              .error(),
          ENOTCONN);
    }
    {
      auto c = connect();
      EXPECT_EQ(c->call<Opcode::kSymlink>(SymlinkRequest{kRootNode, Name{name}, PathText{"/"}, {}})
                    .error(),
                ENOTCONN);
    }
    EXPECT_TRUE(bystander->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
  }
  EXPECT_TRUE(fs::is_empty(root_ + "/export"));
}

TEST_F(Confinement, IdsNeverIssuedAreRefused) {
  auto c = connect();
  for (uint64_t id : {0ull, 2ull, 3ull, 1000ull, ~0ull}) {
    SCOPED_TRACE(id);
    EXPECT_EQ(c->call<Opcode::kGetattr>(GetattrRequest{NodeId{id}, {}}).error(), ESTALE);
    EXPECT_EQ(c->call<Opcode::kLookup>(LookupRequest{NodeId{id}, Name{"secret"}}).error(), ESTALE);
    EXPECT_EQ(c->call<Opcode::kMkdir>(MkdirRequest{NodeId{id}, Name{"d"}, 0755, {}}).error(),
              ESTALE);
    EXPECT_EQ(c->call<Opcode::kRead>(ReadRequest{HandleId{id}, 0, 100}).error(), EBADF);
    EXPECT_EQ(c->call<Opcode::kWrite>(WriteRequest{HandleId{id}, 0, {}}).error(), EBADF);
    EXPECT_EQ(c->call<Opcode::kReaddir>(ReaddirRequest{HandleId{id}, 0, 4096, {}}).error(), EBADF);
  }
  EXPECT_TRUE(c->connected());
}

// Symlinks inside the export that point outside are objects of their own:
// they can be read as links, never followed by the host.
TEST_F(Confinement, SymlinksToTheOutsideAreNeverFollowed) {
  fs::create_symlink(root_ + "/outside", in_export("abs"));
  fs::create_symlink("../outside", in_export("rel"));
  fs::create_symlink(root_ + "/outside/secret", in_export("file"));
  fs::create_symlink("../outside/new", in_export("dangling"));
  auto c = connect();
  for (std::string name : {"abs", "rel", "file", "dangling"}) {
    SCOPED_TRACE(name);
    auto link = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{name}});
    ASSERT_TRUE(link.ok());
    EXPECT_EQ(canonical::mode_from_wire(link.value().attr.mode).value_or(0) & S_IFMT,
              unsigned(S_IFLNK));
    NodeId node = link.value().node;
    auto target = c->call<Opcode::kReadlink>(NodeRequest{node});
    ASSERT_TRUE(target.ok());
    EXPECT_EQ(target.value().target.value, fs::read_symlink(in_export(name)).string());
    EXPECT_EQ(c->call<Opcode::kLookup>(LookupRequest{node, Name{"secret"}}).error(), ENOTDIR);
    EXPECT_FALSE(c->call<Opcode::kOpen>(OpenRequest{node, canonical::kOpenRdonly}).ok());
    EXPECT_FALSE(c->call<Opcode::kOpen>(OpenRequest{node, canonical::kOpenRdwr}).ok());
    EXPECT_FALSE(c->call<Opcode::kOpendir>(OpenRequest{node, 0}).ok());
    EXPECT_EQ(read_node(*c, node), "");
    SetattrRequest truncate;
    truncate.node = node;
    truncate.valid = kSetSize;
    EXPECT_FALSE(c->call<Opcode::kSetattr>(truncate).ok());
    SetattrRequest chmod;
    chmod.node = node;
    chmod.valid = kSetMode;
    chmod.mode = 0777;
    EXPECT_FALSE(c->call<Opcode::kSetattr>(chmod).ok());
    EXPECT_FALSE(
        c->call<Opcode::kSetxattr>(SetxattrRequest{node, XattrName{"user.x"}, XattrValue{"v"}, 0})
            .ok());
    // Creating through the link's name opens nothing behind it.
    auto created = c->call<Opcode::kCreate>(
        CreateRequest{kRootNode,
                      Name{name},
                      canonical::kOpenWronly | canonical::kOpenCreat | canonical::kOpenTrunc,
                      canonical::kModeRegular | 0644,
                      {}});
    EXPECT_FALSE(created.ok());
  }
  EXPECT_FALSE(fs::exists(root_ + "/outside/new"));
  EXPECT_TRUE(c->connected());
}

// A device node and a fifo placed in the export on the host: the guest may
// look them up and stat them, but fsoutd never opens them (a device node is
// a way to the host's devices, CVE-2020-35517; a fifo would block a worker).
// Every fd fsoutd holds on them is an O_PATH fd.
TEST_F(Confinement, DeviceNodesAndFifosAreNeverOpened) {
  ASSERT_EQ(geteuid(), 0u) << "mknod of a device node needs root";
  ASSERT_EQ(mknod(in_export("null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(mkfifo(in_export("fifo").c_str(), 0666), 0);
  auto c = connect();
  for (std::string name : {"null", "fifo"}) {
    SCOPED_TRACE(name);
    auto found = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{name}});
    ASSERT_TRUE(found.ok());
    mode_t type = canonical::mode_from_wire(found.value().attr.mode).value_or(0) & S_IFMT;
    EXPECT_EQ(type, name == "null" ? unsigned(S_IFCHR) : unsigned(S_IFIFO));
    if (name == "null") {
      auto rdev = found.value().attr.rdev;
      EXPECT_EQ(canonical::device_from_wire(canonical::Device{rdev.major, rdev.minor}),
                makedev(1, 3));
    }
    NodeId node = found.value().node;
    for (uint32_t flags : {canonical::kOpenRdonly, canonical::kOpenWronly, canonical::kOpenRdwr})
      EXPECT_EQ(c->call<Opcode::kOpen>(OpenRequest{node, flags}).error(), EACCES);
    EXPECT_FALSE(c->call<Opcode::kOpendir>(OpenRequest{node, 0}).ok());
    SetattrRequest truncate;
    truncate.node = node;
    truncate.valid = kSetSize;
    EXPECT_FALSE(c->call<Opcode::kSetattr>(truncate).ok());
    // Creating without O_EXCL over the existing name opens nothing either
    // (a blocking open of the fifo would hang this call).
    auto created = c->call<Opcode::kCreate>(CreateRequest{
        kRootNode, Name{name}, canonical::kOpenWronly | canonical::kOpenCreat, 0644, {}});
    EXPECT_EQ(created.error(), EACCES);
  }
  // The guest can still make its own special files (the daemon runs as root).
  auto fifo = c->call<Opcode::kMknod>(
      MknodRequest{kRootNode, Name{"made-fifo"}, canonical::kModeFifo | 0640, {}, {}});
  ASSERT_TRUE(fifo.ok());
  EXPECT_EQ(canonical::mode_from_wire(fifo.value().attr.mode).value_or(0) & S_IFMT,
            unsigned(S_IFIFO));
  struct stat st;
  ASSERT_EQ(lstat(in_export("made-fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // What fsoutd holds on the special files: only O_PATH fds.
  int checked = 0;
  std::string fds = "/proc/" + std::to_string(daemon_) + "/fd";
  for (auto& entry : fs::directory_iterator(fds)) {
    std::error_code error;
    auto target = fs::read_symlink(entry.path(), error).string();
    // Inside its sandbox fsoutd's root is the export: its fds show as "/null".
    auto is = [&](const char* name) {
      return target == in_export(name) || target == std::string("/") + name;
    };
    if (error || !(is("null") || is("fifo") || is("made-fifo"))) continue;
    std::string info = read_text("/proc/" + std::to_string(daemon_) + "/fdinfo/" +
                                 entry.path().filename().string());
    auto at = info.find("flags:");
    ASSERT_NE(at, std::string::npos);
    unsigned long flags = std::stoul(info.substr(at + 6), nullptr, 8);
    EXPECT_TRUE(flags & O_PATH) << target << " is open with flags " << std::oct << flags;
    ++checked;
  }
  EXPECT_GE(checked, 3);  // the nodes of the three special files
  EXPECT_TRUE(c->connected());
}

// A directory the guest holds is replaced by a symlink to the outside
// between two calls: the old node still names the old directory, the new
// name is a symlink, and nothing reaches the outside.
TEST_F(Confinement, DirectoryReplacedBySymlinkBetweenCalls) {
  fs::create_directory(in_export("d"));
  std::ofstream(in_export("d/inside")) << "inside";
  auto c = connect();
  auto d = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"d"}});
  ASSERT_TRUE(d.ok());
  fs::rename(in_export("d"), in_export("d.moved"));
  fs::create_symlink(root_ + "/outside", in_export("d"));
  EXPECT_EQ(c->call<Opcode::kLookup>(LookupRequest{d.value().node, Name{"secret"}}).error(),
            ENOENT);
  auto inside = c->call<Opcode::kLookup>(LookupRequest{d.value().node, Name{"inside"}});
  ASSERT_TRUE(inside.ok());
  EXPECT_EQ(read_node(*c, inside.value().node), "inside");
  auto created =
      c->call<Opcode::kCreate>(CreateRequest{d.value().node,
                                             Name{"secret"},
                                             canonical::kOpenWronly | canonical::kOpenCreat,
                                             canonical::kModeRegular | 0644,
                                             {}});
  EXPECT_TRUE(created.ok());  // lands in the moved directory, inside the export
  EXPECT_TRUE(fs::exists(in_export("d.moved/secret")));
  auto link = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"d"}});
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(c->call<Opcode::kLookup>(LookupRequest{link.value().node, Name{"secret"}}).error(),
            ENOTDIR);
}

// The same swap, racing: a host thread flips a name between a directory and
// a symlink to the outside while the guest keeps looking through it.
TEST_F(Confinement, RacingSwapNeverLeaksTheOutside) {
  fs::create_directory(in_export("real"));
  std::ofstream(in_export("real/secret")) << "decoy";
  std::atomic<bool> stop = false;
  std::thread flipper([&] {
    std::string flip = in_export("flip"), tmp = in_export("flip.tmp");
    while (!stop) {
      std::error_code ignored;
      fs::create_symlink(root_ + "/outside", tmp, ignored);
      rename(tmp.c_str(), flip.c_str());
      fs::create_directory_symlink("real", tmp, ignored);  // relative, stays inside
      fs::remove(tmp, ignored);
      fs::create_directory(tmp, ignored);
      std::ofstream(tmp + "/secret") << "decoy";
      rename(tmp.c_str(), flip.c_str());  // fails while flip is a non-empty dir: fine
      fs::remove_all(flip, ignored);
    }
  });
  auto c = connect();
  int reads = 0;
  auto until = std::chrono::steady_clock::now() + 2s;
  while (std::chrono::steady_clock::now() < until) {
    auto flip = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"flip"}});
    if (!flip.ok()) continue;
    auto secret = c->call<Opcode::kLookup>(LookupRequest{flip.value().node, Name{"secret"}});
    if (secret.ok()) {
      std::string content = read_node(*c, secret.value().node);
      EXPECT_NE(content, kSecret);
      if (!content.empty()) ++reads;
      c->call_async<Opcode::kForget>(ForgetRequest{{ForgetItem{secret.value().node, 1}}},
                                     [](int, const Empty&) {});
    }
    c->call_async<Opcode::kForget>(ForgetRequest{{ForgetItem{flip.value().node, 1}}},
                                   [](int, const Empty&) {});
  }
  stop = true;
  flipper.join();
  EXPECT_TRUE(c->connected());
  EXPECT_GT(reads, 0) << "the race never reached the directory: the test proved nothing";
  RecordProperty("decoy_reads", reads);
}

// A session that sends garbage is closed; another session keeps working.
TEST_F(Confinement, GarbageSessionIsClosedOthersGoOn) {
  auto good = connect();
  int fd = raw_connect();
  ASSERT_GE(fd, 0);
  std::string garbage(100000, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = char(i * 131 + 7);
  (void)!write(fd, garbage.data(), garbage.size());
  char buffer[64];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
  }
  EXPECT_EQ(n, 0);  // closed by the host, with nothing sent back
  close(fd);
  EXPECT_TRUE(good->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
  auto entry = good->call<Opcode::kMkdir>(
      MkdirRequest{kRootNode, Name{"still-here"}, canonical::kModeDirectory | 0755, {}});
  EXPECT_TRUE(entry.ok());
  EXPECT_TRUE(fs::is_directory(in_export("still-here")));
}

// ---- hardening: names with NUL, lock ranges, sessions that end, fds, connections

// A NUL inside a C string the host would pass on (an xattr name, a symlink target) would
// cut it: checked whole, used cut. The request is refused as malformed; nothing is made.
TEST_F(Confinement, NulInsideXattrNamesAndSymlinkTargetsIsRefusedNotCut) {
  std::ofstream(in_export("f")) << "data";
  auto node_of = [&](Connection& c) {
    return c.call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"f"}}).value().node;
  };
  for (std::string name :
       {std::string("trusted.fsout.owner\0", 20), std::string("user.x\0hidden", 13)}) {
    auto c = connect();
    EXPECT_EQ(c->call<Opcode::kSetxattr>(
                   SetxattrRequest{node_of(*c), XattrName{name}, XattrValue{"0:0"}, 0})
                  .error(),
              ENOTCONN);
  }
  char value[64];
  EXPECT_LT(getxattr(in_export("f").c_str(), "user.x", value, sizeof value), 0);
  EXPECT_LT(getxattr(in_export("f").c_str(), "trusted.fsout.owner", value, sizeof value), 0);
  {
    auto c = connect();
    EXPECT_EQ(
        c->call<Opcode::kSymlink>(
             SymlinkRequest{kRootNode, Name{"link"}, PathText{std::string("f\0/../../x", 10)}, {}})
            .error(),
        ENOTCONN);
  }
  EXPECT_FALSE(fs::exists(fs::symlink_status(in_export("link"))));
  // Binary values still cross whole.
  auto c = connect();
  std::string binary("a\0b\0c", 5);
  ASSERT_TRUE(c->call<Opcode::kSetxattr>(
                   SetxattrRequest{node_of(*c), XattrName{"user.bin"}, XattrValue{binary}, 0})
                  .ok());
  EXPECT_EQ(getxattr(in_export("f").c_str(), "user.bin", value, sizeof value), 5);
  EXPECT_EQ(std::string(value, 5), binary);
}

TEST_F(Confinement, LockRangesThatEndBeforeTheyStartAreEinval) {
  std::ofstream(in_export("f")) << "data";
  auto c = connect();
  auto node = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"f"}});
  ASSERT_TRUE(node.ok());
  auto h = c->call<Opcode::kOpen>(OpenRequest{node.value().node, canonical::kOpenRdwr});
  ASSERT_TRUE(h.ok());
  Lock backwards{kLockWrite, 100, 10, 1};
  EXPECT_EQ(c->call<Opcode::kSetlk>(SetlkRequest{h.value().handle, 1, backwards, 0}).error(),
            EINVAL);
  EXPECT_EQ(c->call<Opcode::kGetlk>(GetlkRequest{h.value().handle, 1, backwards}).error(), EINVAL);
  Lock past_off_t{kLockWrite, uint64_t(1) << 63, UINT64_MAX, 1};
  EXPECT_EQ(c->call<Opcode::kSetlk>(SetlkRequest{h.value().handle, 1, past_off_t, 0}).error(),
            EINVAL);
  // Nothing was locked.
  int fd = open(in_export("f").c_str(), O_RDWR);
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;
  EXPECT_EQ(fcntl(fd, F_OFD_SETLK, &whole), 0);
  close(fd);
}

// The export directory deleted or replaced under a running fsoutd: new guests are refused,
// and the log says why, instead of getting the old, dead directory.
TEST_F(Confinement, ReplacedOrDeletedExportRefusesNewGuests) {
  auto before = connect();
  fs::rename(root_ + "/export", root_ + "/old-export");
  fs::create_directory(root_ + "/export");
  EXPECT_THROW(connect(), std::exception);
  // Outside a sandbox fsoutd looks at the path; inside, the change watcher saw the name go.
  const std::string log = read_text(root_ + "/fsoutd.log");
  EXPECT_TRUE(log.find("was replaced by another directory") != std::string::npos ||
              log.find("was renamed or removed on the host") != std::string::npos)
      << log;
  fs::remove_all(root_ + "/export");
  fs::remove_all(root_ + "/old-export");
  EXPECT_THROW(connect(), std::exception);
  EXPECT_NE(read_text(root_ + "/fsoutd.log").find("was deleted"), std::string::npos);
  fs::create_directory(root_ + "/export");  // for TearDown
}

std::string status_field(const std::string& status, const std::string& name) {
  size_t at = status.find("\n" + name + ":");
  if (at == std::string::npos) return "";
  size_t start = status.find_first_not_of(" \t", at + name.size() + 2);
  return status.substr(start, status.find('\n', start) - start);
}

// As root, fsoutd keeps only the capabilities it uses, in every thread, and sets
// no_new_privs (src/host/privileges.cpp).
TEST_F(Confinement, DaemonKeepsFewCapabilitiesAndNoNewPrivs) {
  if (geteuid() != 0) GTEST_SKIP() << "fsoutd drops capabilities only when it runs as root";
  auto c = connect();  // its session threads are running too
  const std::string dir = "/proc/" + std::to_string(daemon_);
  const std::string status = read_text(dir + "/status");
  EXPECT_EQ(status_field(status, "NoNewPrivs"), "1");
  const uint64_t all = (uint64_t(1) << (CAP_LAST_CAP + 1)) - 1;
  const uint64_t effective = std::stoull(status_field(status, "CapEff"), nullptr, 16);
  EXPECT_NE(effective & all, all) << "every capability is still effective";
  EXPECT_EQ(effective & (uint64_t(1) << CAP_SYS_MODULE), 0u);
  EXPECT_EQ(effective & (uint64_t(1) << CAP_SYS_PTRACE), 0u);
  EXPECT_EQ(effective & (uint64_t(1) << CAP_NET_ADMIN), 0u);
  EXPECT_EQ(std::stoull(status_field(status, "CapBnd"), nullptr, 16), effective);
  EXPECT_EQ(status_field(status, "CapInh"), "0000000000000000");
  int threads = 0;
  for (auto& task : fs::directory_iterator(dir + "/task")) {
    std::string thread = read_text(task.path().string() + "/status");
    EXPECT_EQ(status_field(thread, "CapEff"), status_field(status, "CapEff")) << task.path();
    ++threads;
  }
  EXPECT_GT(threads, 1);
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat x, y;
  return stat(a.c_str(), &x) == 0 && stat(b.c_str(), &y) == 0 && x.st_dev == y.st_dev &&
         x.st_ino == y.st_ino;
}

// The default sandbox (src/host/sandbox.cpp), seen from the host: seccomp in every thread,
// namespaces of its own, and a file tree that is the export and nothing else.
TEST_F(Confinement, DaemonRunsInItsSandbox) {
  if (geteuid() != 0) GTEST_SKIP() << "the test looks into fsoutd's namespaces as root";
  auto c = connect();  // its session threads are running too
  const std::string dir = "/proc/" + std::to_string(daemon_);
  const std::string status = read_text(dir + "/status");
  EXPECT_EQ(status_field(status, "Seccomp"), "2");
  EXPECT_EQ(status_field(status, "NoNewPrivs"), "1");
  for (auto& task : fs::directory_iterator(dir + "/task"))
    EXPECT_EQ(status_field(read_text(task.path().string() + "/status"), "Seccomp"), "2")
        << task.path();
  for (const char* ns : {"mnt", "net", "ipc"})
    EXPECT_NE(fs::read_symlink(dir + "/ns/" + ns),
              fs::read_symlink(std::string("/proc/self/ns/") + ns))
        << ns;
  // Its root is the export, with nothing above it and nothing of the host's tree.
  EXPECT_TRUE(same_file(dir + "/root", root_ + "/export"));
  EXPECT_TRUE(same_file(dir + "/root/..", root_ + "/export"));
  EXPECT_FALSE(fs::exists(dir + "/root/etc"));
  EXPECT_FALSE(fs::exists(dir + "/root/outside"));
  // One mount: the export (the private proc is reachable only through its working directory).
  auto mounts = read_text(dir + "/mountinfo");
  EXPECT_EQ(std::count(mounts.begin(), mounts.end(), '\n'), 1) << mounts;
  // That proc shows processes only.
  EXPECT_TRUE(fs::exists(dir + "/cwd/0"));  // its fd 0, seen through its working directory
  EXPECT_FALSE(fs::exists(dir + "/cwd/../../sys"));
  EXPECT_FALSE(fs::exists(dir + "/cwd/../../sysrq-trigger"));
  // And the guest still works as before.
  auto made = c->call<Opcode::kMkdir>(MkdirRequest{kRootNode, Name{"made"}, 0755, {}});
  EXPECT_TRUE(made.ok());
  EXPECT_TRUE(fs::is_directory(in_export("made")));
}

// --sandbox=none: the same daemon without namespaces or seccomp.
class ConfinementNoSandbox : public Confinement {
 protected:
  std::vector<std::string> extra_args() override { return {"--sandbox=none"}; }
};

TEST_F(ConfinementNoSandbox, DaemonRunsWithoutSandbox) {
  auto c = connect();
  const std::string dir = "/proc/" + std::to_string(daemon_);
  EXPECT_EQ(status_field(read_text(dir + "/status"), "Seccomp"), "0");
  EXPECT_EQ(fs::read_symlink(dir + "/ns/mnt"), fs::read_symlink("/proc/self/ns/mnt"));
  EXPECT_TRUE(same_file(dir + "/root", "/"));
  EXPECT_TRUE(c->call<Opcode::kGetattr>(GetattrRequest{kRootNode, {}}).ok());
}

// --sandbox=chroot: the export as root and the allow-list, in the host's namespaces.
class ConfinementChroot : public Confinement {
 protected:
  std::vector<std::string> extra_args() override { return {"--sandbox=chroot"}; }
};

TEST_F(ConfinementChroot, DaemonRunsChrootedIntoTheExport) {
  if (geteuid() != 0) GTEST_SKIP() << "chroot needs root";
  auto c = connect();
  const std::string dir = "/proc/" + std::to_string(daemon_);
  EXPECT_EQ(status_field(read_text(dir + "/status"), "Seccomp"), "2");
  EXPECT_EQ(fs::read_symlink(dir + "/ns/mnt"), fs::read_symlink("/proc/self/ns/mnt"));
  EXPECT_TRUE(same_file(dir + "/root", root_ + "/export"));
  EXPECT_NE(read_text(root_ + "/fsoutd.log").find("sandbox: chroot"), std::string::npos);
  auto made = c->call<Opcode::kMkdir>(MkdirRequest{kRootNode, Name{"made"}, 0755, {}});
  EXPECT_TRUE(made.ok());
  EXPECT_TRUE(fs::is_directory(in_export("made")));
}

// Without root fsoutd makes a user namespace of its own user and sandboxes itself in it.
class ConfinementUnprivileged : public Confinement {
 protected:
  void before_exec() override {
    for (const auto& path : {root_, root_ + "/export", root_ + "/fsoutd.log"})
      if (chown(path.c_str(), 65534, 65534) != 0) _exit(126);
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(126);
  }
};

TEST_F(ConfinementUnprivileged, DaemonSandboxesItselfInAUserNamespace) {
  if (geteuid() != 0) GTEST_SKIP() << "the test starts fsoutd as another user";
  auto c = connect();
  const std::string dir = "/proc/" + std::to_string(daemon_);
  const std::string status = read_text(dir + "/status");
  EXPECT_EQ(status_field(status, "Uid").substr(0, 5), "65534");
  EXPECT_EQ(status_field(status, "Seccomp"), "2");
  EXPECT_EQ(status_field(status, "CapEff"), "0000000000000000");
  EXPECT_NE(fs::read_symlink(dir + "/ns/user"), fs::read_symlink("/proc/self/ns/user"));
  EXPECT_NE(fs::read_symlink(dir + "/ns/mnt"), fs::read_symlink("/proc/self/ns/mnt"));
  EXPECT_TRUE(same_file(dir + "/root", root_ + "/export"));
  EXPECT_NE(read_text(root_ + "/fsoutd.log").find("in a user namespace"), std::string::npos);
  auto made = c->call<Opcode::kCreate>(CreateRequest{kRootNode,
                                                     Name{"mine"},
                                                     canonical::kOpenWronly | canonical::kOpenCreat,
                                                     0644,
                                                     {65534, 65534, {}}});
  ASSERT_TRUE(made.ok()) << made.error();
  struct stat st;
  ASSERT_EQ(stat(in_export("mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
}

size_t open_fds(pid_t pid) {
  size_t count = 0;
  for (auto& entry : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    (void)entry;
    ++count;
  }
  return count;
}

// utime + stime of a process, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) fields >> skip;  // state .. cmajflt
  long utime = 0, stime = 0;
  fields >> utime >> stime;
  return utime + stime;
}

template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 5000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

size_t thread_count(pid_t pid) {
  size_t count = 0;
  for (auto& task : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    (void)task;
    ++count;
  }
  return count;
}

// A connection that has not said HELLO costs two threads (its session's and its sender),
// not one per worker: the workers start with the session.
TEST_F(Confinement, ConnectionsBeforeHelloCostTwoThreads) {
  ASSERT_TRUE(eventually([&] { return thread_count(daemon_) > 0; }));
  const size_t idle_threads = thread_count(daemon_), idle_fds = open_fds(daemon_);
  std::vector<int> silent;
  for (int i = 0; i < 20; ++i) {
    int fd = raw_connect();
    ASSERT_GE(fd, 0);
    silent.push_back(fd);
  }
  ASSERT_TRUE(eventually([&] { return open_fds(daemon_) >= idle_fds + 20; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_LE(thread_count(daemon_), idle_threads + 2 * 20) << "threads before HELLO";
  auto c = connect();  // a session that says HELLO gets its workers and works
  EXPECT_TRUE(c->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
  EXPECT_GE(thread_count(daemon_), idle_threads + 2 * 20 + 4);
  for (int fd : silent) close(fd);
}

// A session that ends gives back its fds and its record locks at once, not when the next
// guest connects: a host program waiting for the lock gets it, a deleted file's space is
// freed.
TEST_F(Confinement, SessionsGiveBackTheirFdsAndLocksWhenTheyEnd) {
  for (int i = 0; i < 50; ++i) std::ofstream(in_export("f" + std::to_string(i))) << i;
  ASSERT_TRUE(eventually([&] { return open_fds(daemon_) > 0; }));
  const size_t idle = open_fds(daemon_);
  {
    auto c = connect();
    std::vector<HandleId> handles;
    for (int i = 0; i < 50; ++i) {
      auto node = c->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"f" + std::to_string(i)}});
      ASSERT_TRUE(node.ok());
      auto h = c->call<Opcode::kOpen>(OpenRequest{node.value().node, canonical::kOpenRdwr});
      ASSERT_TRUE(h.ok());
      handles.push_back(h.value().handle);
    }
    Lock whole{kLockWrite, 0, UINT64_MAX, 1};
    ASSERT_TRUE(c->call<Opcode::kSetlk>(SetlkRequest{handles[0], 1, whole, 0}).ok());
    EXPECT_GE(open_fds(daemon_), idle + 100);
  }  // the guest goes away
  int fd = open(in_export("f0").c_str(), O_RDWR);
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;
  EXPECT_TRUE(eventually([&] { return fcntl(fd, F_OFD_SETLK, &whole) == 0; }))
      << "the gone guest's lock is still held";
  close(fd);
  EXPECT_TRUE(eventually([&] { return open_fds(daemon_) <= idle; }))
      << open_fds(daemon_) << " fds held, " << idle << " when idle";
}

// fsoutd under a low fd limit that it may not raise (no CAP_SYS_RESOURCE), as on a host
// with a tight limit: one session cannot take every fd, and when fds do run out, accept
// backs off instead of spinning and comes back once they are free.
class ConfinementFewFds : public Confinement {
 protected:
  static constexpr rlim_t kLimit = 128;
  void before_exec() override {
    prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0);
    rlimit limit{kLimit, kLimit};
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  // HELLO and one request on a new session, in a thread: before the fix it never returned.
  bool new_session_works(std::chrono::seconds limit) {
    auto result = std::async(std::launch::async, [&] {
      try {
        auto c = connect();
        return c->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok();
      } catch (const std::exception&) {
        return false;
      }
    });
    if (result.wait_for(limit) != std::future_status::ready) {
      stuck_.push_back(std::move(result));  // joined at the end, once fsoutd is gone
      return false;
    }
    return result.get();
  }
  void TearDown() override {
    Confinement::TearDown();
    stuck_.clear();
  }
  std::vector<std::future<bool>> stuck_;
};

TEST_F(ConfinementFewFds, OneSessionCannotTakeEveryFd) {
  for (int i = 0; i < 200; ++i) std::ofstream(in_export("f" + std::to_string(i))) << i;
  auto greedy = connect();
  int found = 0;
  for (int i = 0; i < 200; ++i) {
    if (!greedy->call<Opcode::kLookup>(LookupRequest{kRootNode, Name{"f" + std::to_string(i)}})
             .ok())
      break;
    ++found;
  }
  EXPECT_LT(found, 200);  // its budget ran out, well before the process's fds
  EXPECT_TRUE(new_session_works(10s)) << "another guest cannot connect";
  EXPECT_LT(open_fds(daemon_), kLimit - 8);
}

TEST_F(ConfinementFewFds, AcceptBacksOffWhenFdsRunOutAndRecovers) {
  std::vector<int> idle_connections;  // each one costs fsoutd an fd
  for (rlim_t i = 0; i < kLimit + 16; ++i) {
    // Non-blocking: a unix socket's connect() waits while the listener's backlog is full.
    int fd = raw_connect(SOCK_NONBLOCK);
    if (fd >= 0) idle_connections.push_back(fd);
  }
  ASSERT_TRUE(eventually([&] { return open_fds(daemon_) >= kLimit - 1; }))
      << "fsoutd did not run out of fds: " << open_fds(daemon_);
  std::this_thread::sleep_for(300ms);
  long before = cpu_ticks(daemon_);
  std::this_thread::sleep_for(1s);
  long spent = cpu_ticks(daemon_) - before;
  EXPECT_LT(spent, sysconf(_SC_CLK_TCK) / 5) << "fsoutd spins while it cannot accept";
  for (int fd : idle_connections) close(fd);
  EXPECT_TRUE(new_session_works(10s)) << "fsoutd did not recover when the fds were free";
}

class ConfinementFewSessions : public Confinement {
 protected:
  std::vector<std::string> extra_args() override { return {"--max-sessions", "3"}; }
};

TEST_F(ConfinementFewSessions, ConnectionsBeyondTheLimitAreClosed) {
  auto a = connect(), b = connect(), c = connect();
  EXPECT_THROW(connect(), std::exception);  // closed before HELLO is answered
  EXPECT_TRUE(a->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok());
  b.reset();
  EXPECT_TRUE(eventually([&] {
    try {
      return connect()->call<Opcode::kStatfs>(NodeRequest{kRootNode}).ok();
    } catch (const std::exception&) {
      return false;
    }
  }));
}

}  // namespace
}  // namespace fsout
