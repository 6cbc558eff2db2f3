// Structure-aware fuzzer (libFuzzer) of a whole host session: each input is a small program
// that configures a real Session (the passthrough back end on a temporary export), speaks to
// it over a socketpair as a guest would (well-formed requests whose ids come from earlier
// replies, mutated frames, garbage, host-side changes racing the guest), then hangs up.
// After every input it checks what a hostile guest must never achieve:
//   - nothing outside the export changed (a snapshot of its sibling tree, compared whole);
//   - the session gave back every fd and thread it took;
//   - no crash, hang (libFuzzer's -timeout) or sanitizer report.
// Built and run by tests/fuzz/run.sh; needs root (the guest may act as any user).
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/file_system.h"
#include "host/identity.h"
#include "host/session.h"
#include "protocol/codec.h"
#include "transport/stream.h"

using namespace fsout;
using namespace fsout::protocol;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "session_fuzz: FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

// ---- the world: BASE/outside (must never change) and BASE/export (the guest's)

std::string describe_tree(const std::string& top) {
  std::string out;
  std::vector<std::string> paths;
  for (auto it = fs::recursive_directory_iterator(top, fs::directory_options::none);
       it != fs::recursive_directory_iterator(); ++it)
    paths.push_back(it->path().string());
  paths.push_back(top);
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      out += path + " gone\n";
      continue;
    }
    out += path + " mode " + std::to_string(st.st_mode) + " uid " + std::to_string(st.st_uid) +
           " gid " + std::to_string(st.st_gid) + " size " + std::to_string(st.st_size) + " nlink " +
           std::to_string(st.st_nlink) + " ino " + std::to_string(st.st_ino) + " mtime " +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
           " ctime " + std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
    if (S_ISREG(st.st_mode)) {
      std::ifstream file(path, std::ios::binary);
      out += " data " + std::string(std::istreambuf_iterator<char>(file), {});
    } else if (S_ISLNK(st.st_mode)) {
      out += " target " + fs::read_symlink(path).string();
    }
    char names[4096];
    ssize_t n = llistxattr(path.c_str(), names, sizeof names);
    if (n > 0) out += " xattrs " + std::string(names, size_t(n));
    out += "\n";
  }
  return out;
}

// Pipes are left out: the sanitizer runtimes make theirs lazily and keep them, and the host
// code makes none (its wake-ups are eventfds).
size_t count_fds() {
  size_t n = 0;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    if (!fs::read_symlink(entry.path(), error).string().starts_with("pipe:")) ++n;
  }
  return n;
}

std::string list_fds() {
  std::string out;
  for (const auto& entry : fs::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    out += entry.path().filename().string() + " -> " +
           fs::read_symlink(entry.path(), error).string() + "\n";
  }
  return out;
}

size_t count_threads() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/task")) ++n;
  return n;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

struct World {
  std::string base, outside, exported;
  int root_fd = -1;
  std::string outside_before;
  size_t fds = 0, threads = 0;
};

void seed_export(const World& w) {
  const std::string& e = w.exported;
  write_file(e + "/a", "hello");
  write_file(e + "/big", std::string(200000, 'b'));
  fs::create_directory(e + "/d");
  write_file(e + "/d/f", "in d");
  fs::create_directory(e + "/d/e");
  symlink("../outside/secret", (e + "/up").c_str());
  symlink((w.outside + "/secret").c_str(), (e + "/abs").c_str());
  symlink("d", (e + "/dlink").c_str());
  mkfifo((e + "/fifo").c_str(), 0644);
  lsetxattr((e + "/a").c_str(), "user.k", "v", 1, 0);
}

// Puts the export back as seeded, including the root's own attributes.
void reset_export(const World& w) {
  for (const auto& entry : fs::directory_iterator(w.exported)) fs::remove_all(entry.path());
  char names[65536];
  ssize_t n = llistxattr(w.exported.c_str(), names, sizeof names);
  for (ssize_t at = 0; at < n; at += ssize_t(std::strlen(names + at)) + 1)
    lremovexattr(w.exported.c_str(), names + at);
  chown(w.exported.c_str(), 0, 0);
  chmod(w.exported.c_str(), 0755);
  seed_export(w);
}

World& world() {
  // Never destroyed: the atexit handler below uses it after static destructors would run.
  static World& w = *[] {
    auto* made = new World;
    World& w = *made;
    char pattern[] = "/tmp/fsout-session-fuzz-XXXXXX";
    if (!mkdtemp(pattern)) finding("cannot make a temporary directory");
    w.base = pattern;
    // On a small tmpfs of a mount namespace of our own (gone with the process): a guest may
    // fill its export, and a terabyte fallocate or sparse write on the host's disk would
    // make every later input crawl while the harness removes it.
    if (unshare(CLONE_NEWNS) == 0 &&
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0)
      mount("fsout-fuzz", pattern, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0755");
    w.outside = w.base + "/outside";
    w.exported = w.base + "/export";
    fs::create_directory(w.outside);
    fs::create_directory(w.exported);
    write_file(w.outside + "/secret", "do not touch");
    fs::create_directory(w.outside + "/dir");
    write_file(w.outside + "/dir/inner", "nor this");
    symlink("secret", (w.outside + "/sl").c_str());
    seed_export(w);
    w.root_fd = open(w.exported.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (w.root_fd < 0) finding("cannot open the export");
    host::install_session_signals();
    umask(0);  // as fsoutd: modes arrive with the guest's umask applied
    // What must never change: everything beside the export (its parent's entries too).
    w.outside_before = describe_tree(w.outside);
    std::atexit([] {
      umount2(world().base.c_str(), MNT_DETACH);
      std::error_code ignored;
      fs::remove_all(world().base, ignored);
    });
    return made;
  }();
  return w;
}

// ---- building requests from the input

struct Filler {
  FuzzedDataProvider& in;
  const std::vector<uint64_t>& ids;
  std::deque<std::vector<uint8_t>>& store;

  static constexpr uint32_t kInteresting32[] = {
      canonical::kModeRegular | 0644,
      canonical::kModeDirectory | 0755,
      canonical::kModeSymlink | 0777,
      canonical::kModeFifo | 0644,
      canonical::kModeCharDevice | 0600,
      canonical::kModeBlockDevice | 0600,
      canonical::kModeSocket | 0755,
      canonical::kModeRegular | 06755,
      canonical::kOpenRdwr | canonical::kOpenCreat,
      canonical::kOpenRdwr | canonical::kOpenCreat | canonical::kOpenExcl,
      canonical::kOpenWronly | canonical::kOpenAppend,
      canonical::kOpenRdwr | canonical::kOpenTrunc,
      canonical::kOpenRdonly | canonical::kOpenDirectory,
      canonical::kOpenNoAccess,
      kSetSize,
      kSetMode | kSetUid | kSetGid,
      kSetAtime | kSetMtime | kSetAtimeNow,
      kLockRead,
      kLockWrite,
      kLockUnlock,
      kFlockExclusive,
      kFlockShared | kFlockNonblock,
      kFlockUnlock,
      kRenameExchange,
      kRenameNoreplace,
      kXattrCreate,
      kXattrReplace,
      kWhenceData,
      kWhenceHole,
      kFallocKeepSize | kFallocPunchHole,
      65534,
      1000,
      100000,
      4096,
      65536,
      1u << 20,
      0xFFFFFFFF};
  static constexpr uint64_t kInteresting64[] = {
      0,          1,         2,          4096,           1u << 20,  1ull << 32,
      1ull << 62, INT64_MAX, 1ull << 63, UINT64_MAX - 1, UINT64_MAX};
  static constexpr const char* kNames[] = {"a",    "big", "d", "f",  "e", "up",  "abs", "dlink",
                                           "fifo", "n",   "m", "..", ".", "x/y", "",    "outside"};
  static constexpr const char* kTexts[] = {"user.k",
                                           "user.new",
                                           "trusted.fsout.owner",
                                           "trusted.x",
                                           "security.capability",
                                           "system.posix_acl_access",
                                           "../outside/secret",
                                           "/etc/passwd",
                                           "d",
                                           "linux",
                                           "freebsd"};

  void fill(uint8_t& v) { v = in.ConsumeIntegral<uint8_t>(); }
  void fill(uint16_t& v) { v = in.ConsumeIntegral<uint16_t>(); }
  void fill(uint32_t& v) {
    switch (in.ConsumeIntegralInRange(0, 3)) {
      case 0:
        v = in.ConsumeIntegralInRange<uint32_t>(0, 16);
        break;
      case 1:
        v = in.PickValueInArray(kInteresting32);
        break;
      case 2:
        v = in.ConsumeIntegral<uint32_t>();
        break;
      default:
        v = in.ConsumeIntegralInRange<uint32_t>(0, 07777);
    }
  }
  void fill(uint64_t& v) {
    switch (in.ConsumeIntegralInRange(0, 3)) {
      case 0:
        v = ids.empty() ? 1 : ids[in.ConsumeIntegralInRange<size_t>(0, ids.size() - 1)];
        break;
      case 1:
        v = in.ConsumeIntegralInRange<uint64_t>(0, 300000);
        break;
      case 2:
        v = in.PickValueInArray(kInteresting64);
        break;
      default:
        v = in.ConsumeIntegral<uint64_t>();
    }
  }
  void fill(int64_t& v) { v = int64_t(in.ConsumeIntegralInRange<uint64_t>(0, 4)) - 2 + 1700000000; }
  void fill(Name& n) {
    n.value = in.ConsumeBool() ? in.PickValueInArray(kNames) : in.ConsumeRandomLengthString(300);
  }
  template <size_t L, bool B>
  void fill(Bounded<L, B>& b) {
    b.value = in.ConsumeBool() ? in.PickValueInArray(kTexts) : in.ConsumeRandomLengthString(L + 8);
  }
  void fill(Tail& t) {
    size_t size = in.ConsumeIntegralInRange<size_t>(0, 4096);
    if (in.ConsumeIntegralInRange(0, 15) == 0) size = in.ConsumeIntegralInRange<size_t>(0, 300000);
    store.emplace_back(size, uint8_t(in.ConsumeIntegral<uint8_t>()));
    t.data = store.back();
  }
  template <class T>
  void fill(std::vector<T>& v) {
    v.resize(in.ConsumeIntegralInRange<size_t>(0, 3));
    for (auto& item : v) fill(item);
  }
  template <class T>
  void fill(T& message) {
    std::apply([&](auto&... field) { (fill(field), ...); }, message.fields());
  }
};

// Ids the host handed out (nodes and handles), for later requests to use.
struct Harvester {
  std::vector<uint64_t>& ids;
  void keep(uint64_t id) {
    if (ids.size() >= 64) ids.erase(ids.begin());
    ids.push_back(id);
  }
  void take(const EntryReply& e) { keep(e.node.value); }
  void take(const CreateReply& c) {
    take(c.entry);
    keep(c.handle.value);
  }
  void take(const OpenReply& o) { keep(o.handle.value); }
  void take(const OpenReadReply& o) { keep(o.handle.value); }
  void take(const HelloReply& h) { keep(h.root.value); }
  void take(const ReaddirplusReply& r) {
    for (const auto& e : r.entries) take(e.entry);
  }
  template <class T>
  void take(const T&) {}
};

struct Opcodes {
  std::vector<uint16_t> all;
  Opcodes() {
#define FSOUT_LIST(number, name, request, reply) all.push_back(number);
    FSOUT_OPERATIONS(FSOUT_LIST)
#undef FSOUT_LIST
  }
};

bool encode_request(uint16_t opcode, Filler& filler, std::vector<uint8_t>& out) {
  switch (opcode) {
#define FSOUT_ENCODE(number, name, request, reply) \
  case number: {                                   \
    request message;                               \
    filler.fill(message);                          \
    encode_message(out, message);                  \
    return true;                                   \
  }
    FSOUT_OPERATIONS(FSOUT_ENCODE)
#undef FSOUT_ENCODE
  }
  return false;
}

void harvest_reply(uint16_t opcode, std::span<const uint8_t> payload, Harvester& harvester) {
  switch (opcode) {
#define FSOUT_HARVEST(number, name, request, reply)                   \
  case number: {                                                      \
    reply message;                                                    \
    if (decode_reply(payload, message) == 0) harvester.take(message); \
    return;                                                           \
  }
    FSOUT_OPERATIONS(FSOUT_HARVEST)
#undef FSOUT_HARVEST
  }
}

// The guest's end: a thread reads every frame the host sends.
class Guest {
 public:
  explicit Guest(int fd) : fd_(fd), stream_(dup(fd), false) {
    stream_.set_max_payload(64u << 20);
    reader_ = std::thread([this] {
      for (;;) {
        FrameHeader header;
        std::vector<uint8_t> payload;
        if (stream_.read_frame(header, payload) != transport::FrameStream::ReadStatus::kFrame)
          break;
        std::lock_guard lock(mutex_);
        frames_.push_back({header, std::move(payload)});
        arrived_.notify_all();
      }
      std::lock_guard lock(mutex_);
      closed_ = true;
      arrived_.notify_all();
    });
  }
  ~Guest() {
    ::shutdown(fd_, SHUT_RDWR);
    stream_.shutdown();
    reader_.join();
    close(fd_);
  }
  void send(const std::vector<uint8_t>& bytes) {
    for (size_t at = 0; at < bytes.size();) {
      ssize_t n = ::send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return;  // the host hung up: the rest of the program talks to nobody
      at += size_t(n);
    }
  }
  void hang_up() { ::shutdown(fd_, SHUT_WR); }
  // Waits up to `ms` for the reply to `id`, passing every reply seen to `seen`.
  template <class Seen>
  void wait_for(uint64_t id, int ms, Seen seen) {
    std::unique_lock lock(mutex_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      bool found = false;
      while (!frames_.empty()) {
        auto [header, payload] = std::move(frames_.front());
        frames_.pop_front();
        if (header.kind == FrameKind::kReply) {
          seen(header, payload);
          if (header.request_id == id) found = true;
        }
      }
      if (found || closed_) return;
      if (arrived_.wait_until(lock, deadline) == std::cv_status::timeout) return;
    }
  }

 private:
  int fd_;
  transport::FrameStream stream_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<std::pair<FrameHeader, std::vector<uint8_t>>> frames_;
  bool closed_ = false;
  std::thread reader_;
};

// A change made on the host while the guest works, from the input.
void host_change(const World& w, FuzzedDataProvider& in) {
  const std::string& e = w.exported;
  std::error_code ignored;
  switch (in.ConsumeIntegralInRange(0, 5)) {
    case 0:
      fs::rename(e + "/d", e + "/moved", ignored);
      break;
    case 1:
      fs::remove_all(e + "/d", ignored);
      break;
    case 2:
      write_file(e + "/a", in.ConsumeRandomLengthString(64));
      break;
    case 3:
      fs::remove(e + "/a", ignored);
      symlink("../outside", (e + "/a").c_str());  // a name swapped for a symlink out
      break;
    case 4:
      fs::remove_all(e + "/d/e", ignored);
      symlink(w.outside.c_str(), (e + "/d/e").c_str());
      break;
    default:
      truncate((e + "/big").c_str(), off_t(in.ConsumeIntegralInRange(0, 300000)));
  }
}

void run_program(World& w, FuzzedDataProvider& in) {
  // The session's configuration.
  const uint8_t setup = in.ConsumeIntegral<uint8_t>();
  host::SessionConfig config;
  config.root_fd = w.root_fd;
  config.root_path = w.exported;
  config.read_only = setup & 1;
  config.workers = 1 + (setup >> 1) % 4;
  config.max_message = (setup & 8) ? 65536 : kDefaultMaxMessage;
  if (setup & 16) {
    auto ids = std::make_shared<host::IdMap>();
    if (setup & 32)
      ids->set_squash(1000, 1000);
    else {
      ids->add_uid_range(host::IdMap::parse_range("0:100000:65536"));
      ids->add_gid_range(host::IdMap::parse_range("0:100000:65536"));
    }
    config.ids = ids;
  }
  if (setup & 64) config.limits = host::Limits{16, 4, 2};
  const bool resync = setup & 128;

  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) finding("no socketpair");
  auto session = std::make_unique<host::Session>(
      std::make_unique<transport::FrameStream>(fds[0], resync), config, "fuzz");
  std::thread runner([&] { session->run(); });
  {
    Guest guest(fds[1]);
    static const Opcodes opcodes;
    std::vector<uint64_t> ids{1};
    Harvester harvester{ids};
    std::map<uint64_t, uint16_t> pending;
    std::deque<std::vector<uint8_t>> store;
    Filler filler{in, ids, store};
    uint64_t next_id = 1;
    auto seen = [&](const FrameHeader& header, const std::vector<uint8_t>& payload) {
      auto it = pending.find(header.request_id);
      if (it == pending.end()) return;
      harvest_reply(it->second, payload, harvester);
      pending.erase(it);
    };
    auto send_frame = [&](FrameHeader header, const std::vector<uint8_t>& body) {
      std::vector<uint8_t> frame;
      transport::append_frame(frame, header, body);
      guest.send(frame);
    };
    // Most programs start with a well-formed HELLO (its capabilities from the input).
    if (!in.ConsumeBool() || in.ConsumeBool()) {
      HelloRequest hello;
      hello.capabilities = in.ConsumeIntegral<uint8_t>();
      hello.guest_os.value = in.ConsumeBool() ? "linux" : "freebsd";
      std::vector<uint8_t> body;
      encode_message(body, hello);
      pending[next_id] = 1;
      send_frame({FrameKind::kRequest, 1, next_id, uint32_t(body.size())}, body);
      guest.wait_for(next_id++, 2000, seen);
    }
    for (int step = 0; step < 48 && in.remaining_bytes() > 0; ++step) {
      const uint8_t action = in.ConsumeIntegral<uint8_t>();
      switch (action % 16) {
        default: {  // a request, well-formed or mutated
          const uint16_t opcode =
              opcodes.all[in.ConsumeIntegralInRange<size_t>(0, opcodes.all.size() - 1)];
          std::vector<uint8_t> body;
          encode_request(opcode, filler, body);
          if (action & 0x80) {  // mutate the encoded body
            switch (in.ConsumeIntegralInRange(0, 2)) {
              case 0:
                if (!body.empty())
                  body[in.ConsumeIntegralInRange<size_t>(0, body.size() - 1)] ^=
                      in.ConsumeIntegral<uint8_t>();
                break;
              case 1:
                body.resize(in.ConsumeIntegralInRange<size_t>(0, body.size()));
                break;
              default:
                for (auto c : in.ConsumeRandomLengthString(16)) body.push_back(uint8_t(c));
            }
          }
          const uint64_t id = next_id++;
          pending[id] = opcode;
          send_frame({FrameKind::kRequest, opcode, id, uint32_t(body.size())}, body);
          // FORGET has no reply; with bit 0x40 the next request is pipelined.
          if (!(action & 0x40) && opcode != uint16_t(Opcode::kForget)) guest.wait_for(id, 30, seen);
          break;
        }
        case 12: {  // garbage bytes on the stream
          std::string junk = in.ConsumeRandomLengthString(64);
          guest.send(std::vector<uint8_t>(junk.begin(), junk.end()));
          break;
        }
        case 13: {  // a frame whose header lies: kind, opcode, length
          FrameHeader header{FrameKind(in.ConsumeIntegralInRange(0, 2)),
                             in.ConsumeIntegral<uint16_t>(), next_id++,
                             in.ConsumeIntegral<uint32_t>()};
          std::vector<uint8_t> frame;
          std::string body = in.ConsumeRandomLengthString(64);
          transport::append_frame(
              frame, {header.kind, header.opcode, header.request_id, uint32_t(body.size())},
              std::span(reinterpret_cast<const uint8_t*>(body.data()), body.size()));
          std::memcpy(frame.data() + 16, &header.length, 4);  // the lie (the check now fails)
          if (in.ConsumeBool()) {  // or a consistent header with a huge length
            transport::append_frame(frame, header, {});
            frame.erase(frame.begin(), frame.end() - kFrameHeaderSize);
          }
          guest.send(frame);
          break;
        }
        case 14:
          host_change(w, in);
          break;
        case 15:
          guest.wait_for(0, in.ConsumeIntegralInRange(0, 20), seen);  // let replies arrive
          break;
      }
    }
    guest.hang_up();
    guest.wait_for(0, 5, seen);
  }
  runner.join();
  session.reset();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  static bool first = true;
  if (first) {
    // The baseline after everything that is set up once, lazily (libFuzzer's threads, the
    // sanitizers' pipes): one plain session (HELLO, hang up) first.
    const uint8_t plain[] = {0};
    FuzzedDataProvider warm_up(plain, sizeof plain);
    run_program(w, warm_up);
    reset_export(w);
    w.fds = count_fds();
    w.threads = count_threads();
    first = false;
  }
  FuzzedDataProvider in(data, size);
  run_program(w, in);

  const std::string outside_now = describe_tree(w.outside);
  if (outside_now != w.outside_before)
    finding("something outside the export changed:\n--- before\n" + w.outside_before +
            "--- after\n" + outside_now);
  std::vector<std::string> beside;
  for (const auto& entry : fs::directory_iterator(w.base))
    beside.push_back(entry.path().filename().string());
  std::sort(beside.begin(), beside.end());
  if (beside != std::vector<std::string>{"export", "outside"})
    finding("a name appeared beside the export");
  if (size_t fds = count_fds(); fds != w.fds)
    finding("fds leaked: " + std::to_string(fds) + " open after the session, " +
            std::to_string(w.fds) + " before:\n" + list_fds());
  // A joined thread may linger in /proc for a moment while the kernel finishes its exit.
  size_t threads = count_threads();
  for (int i = 0; i < 200 && threads != w.threads; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    threads = count_threads();
  }
  if (threads != w.threads)
    finding("threads leaked: " + std::to_string(threads) + " after the session, " +
            std::to_string(w.threads) + " before");
  reset_export(w);
  return 0;
}
