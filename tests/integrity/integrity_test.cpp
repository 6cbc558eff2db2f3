// Data integrity on real mounts: the seeded exerciser (exerciser.cpp) in every cache mode,
// with a second mount of the same export and the host's own file as further witnesses; and
// durability: what fsync() (or close()) acknowledged is in the host's file even when fsoutd is
// killed right after.
//
// FSOUT_EXERCISER_OPS and FSOUT_EXERCISER_SEED override the operation count and the seed (for
// long runs by hand); the seed of a failing run is in the failure message.
#include <atomic>
#include <random>

#include "../mount/harness.h"

namespace fsout_test {

namespace {

uint64_t env_number(const char* name, uint64_t fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? std::strtoull(text, nullptr, 0) : fallback;
}

// A second fsout-mount of the same address (another guest of the same export).
class SecondMount {
 public:
  SecondMount(const MountedExport& first, const std::string& options) : dir_(make_temp_dir()) {
    mount_ = std::make_unique<Background>(
        std::vector<std::string>{FSOUT_MOUNT_PATH, "-f", "-o", options, first.address(), dir_},
        dir_ + ".log");
    mounted_ = wait_until([&] { return is_mounted(dir_); });
  }
  ~SecondMount() {
    if (is_mounted(dir_)) umount2(dir_.c_str(), MNT_DETACH);
    mount_.reset();
    rmdir(dir_.c_str());
    unlink((dir_ + ".log").c_str());
  }
  bool mounted() const { return mounted_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::unique_ptr<Background> mount_;
};

struct Mode {
  std::string cache;
  uint64_t seed;
  bool second_mount;  // cache=always trusts that nobody else changes the export
};

void PrintTo(const Mode& m, std::ostream* out) {
  *out << "cache=" << m.cache << " seed " << m.seed;
}

class Exerciser : public ::testing::TestWithParam<Mode> {};

TEST_P(Exerciser, EveryResultMatchesTheModel) {
  ASSERT_EQ(geteuid(), 0u) << "mount tests need root";
  const Mode& mode = GetParam();
  const std::string options = "allow_other,default_permissions,cache=" + mode.cache;
  MountedExport mounted("unix", options);
  ASSERT_TRUE(mounted.mounted());
  std::unique_ptr<SecondMount> second;
  if (mode.second_mount) {
    second = std::make_unique<SecondMount>(mounted, options);
    ASSERT_TRUE(second->mounted());
  }
  const uint64_t seed = env_number("FSOUT_EXERCISER_SEED", mode.seed);
  const uint64_t ops = env_number("FSOUT_EXERCISER_OPS", 20000);
  std::vector<std::string> argv{
      EXERCISER_PATH,      "--seed", std::to_string(seed), "--ops",
      std::to_string(ops), "--host", mounted.export_dir(), "--require-fallocate"};
  if (second) argv.insert(argv.end(), {"--second", second->dir()});
  argv.push_back(mounted.mount_dir());
  Output out = run(argv, 1200);
  EXPECT_EQ(out.status, 0) << "seed " << seed << "\n" << out.err << out.out;
  std::cout << out.out;
}

INSTANTIATE_TEST_SUITE_P(Integrity, Exerciser,
                         ::testing::Values(Mode{"coherent", 1201, true}, Mode{"auto", 1202, true},
                                           Mode{"none", 1203, true}, Mode{"always", 1204, false}),
                         [](const auto& info) { return info.param.cache; });

// What the program was told is durable must be in the host's file, with the daemon gone at
// once afterwards (SIGKILL: nothing of fsoutd's own runs after it).
struct Durability {
  std::string cache;
  bool close_instead_of_fsync;
};

void PrintTo(const Durability& d, std::ostream* out) {
  *out << "cache=" << d.cache << (d.close_instead_of_fsync ? ", close" : ", fdatasync");
}

class Durable : public ::testing::TestWithParam<Durability> {};

// The daemon is stopped (SIGSTOP) while the program still writes and then syncs: nothing can
// be durable then, so fdatasync()/close() must not return until it runs again (a guest that
// answered them itself would return at once). Then fsoutd is killed right after they return.
TEST_P(Durable, AcknowledgedBytesAreOnTheHostAfterSigkill) {
  ASSERT_EQ(geteuid(), 0u) << "mount tests need root";
  MountedExport mounted("unix", "allow_other,default_permissions,cache=" + GetParam().cache);
  ASSERT_TRUE(mounted.mounted());
  std::mt19937_64 random(77);
  std::string written;
  // Many small writes (answered early in cache=coherent), a few large ones, one rewrite.
  // The last 40 are small (a few bytes to 500), written while fsoutd is stopped: few enough
  // to fit the stream's socket buffer, so the guest can answer them early.
  size_t stop_at = 0;
  for (int i = 0; i < 3040; ++i) {
    if (i == 3000) stop_at = written.size();
    size_t n = i >= 3000      ? 1 + random() % 500
               : i % 500 == 0 ? (1u << 20) + 17
                              : 1 + random() % 4096;
    std::string chunk(n, '\0');
    for (char& c : chunk) c = char(random());
    written += chunk;
  }
  const std::string path = mounted.mount_dir() + "/durable";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  auto write_range = [&](size_t from, size_t to, size_t piece) {
    for (size_t at = from; at < to;) {
      size_t n = std::min<size_t>(to - at, at % 3 == 0 ? piece : 1000);
      ssize_t w = write(fd, written.data() + at, n);
      if (w <= 0) return false;
      at += size_t(w);
    }
    return true;
  };
  ASSERT_TRUE(write_range(0, stop_at, 4096)) << strerror(errno);

  ASSERT_EQ(kill(mounted.daemon_pid(), SIGSTOP), 0);
  std::atomic<bool> returned{false};
  std::atomic<int> result{-1};
  const bool by_close = GetParam().close_instead_of_fsync;
  std::thread program([&] {
    bool ok = write_range(stop_at, written.size(), 500) && pwrite(fd, "REWRITTEN", 9, 5000) == 9;
    int rc = !ok ? -1 : by_close ? close(fd) : fdatasync(fd);
    result = rc;
    returned = true;
  });
  written.replace(5000, 9, "REWRITTEN");
  std::this_thread::sleep_for(700ms);
  const bool returned_while_stopped = returned;
  kill(mounted.daemon_pid(), SIGCONT);
  program.join();
  ASSERT_EQ(kill(mounted.daemon_pid(), SIGKILL), 0);
  EXPECT_FALSE(returned_while_stopped)
      << (by_close ? "close" : "fdatasync") << " returned while fsoutd was stopped";
  ASSERT_EQ(result.load(), 0) << strerror(errno);

  std::ifstream in(mounted.export_dir() + "/durable", std::ios::binary);
  std::string on_host((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(on_host.size(), written.size());
  size_t first_difference = 0;
  while (first_difference < written.size() &&
         on_host[first_difference] == written[first_difference])
    ++first_difference;
  EXPECT_EQ(first_difference, written.size())
      << "the host's file differs from byte " << first_difference;
  if (!by_close) close(fd);  // the daemon is gone: whatever this returns, the bytes were checked
}

INSTANTIATE_TEST_SUITE_P(Integrity, Durable,
                         ::testing::Values(Durability{"coherent", false},
                                           Durability{"coherent", true}, Durability{"auto", false},
                                           Durability{"none", false}, Durability{"always", false},
                                           Durability{"always", true}),
                         [](const auto& info) {
                           return info.param.cache +
                                  (info.param.close_instead_of_fsync ? "_close" : "_fdatasync");
                         });

}  // namespace
}  // namespace fsout_test
