// fsout-exerciser: a seeded data-integrity exerciser for a mounted file system.
//
// It runs a random sequence of operations on a few files in DIR and keeps an in-memory model
// of what each file must contain. Every result is compared with the model: reads through the
// writing descriptor, through a second descriptor, through mmap, after fsync through a second
// mount of the same export (--second) and in the host's own file (--host). On the first
// difference it prints the seed, the operation number, where the bytes differ and the last
// operations, and exits 1. The same seed replays the same sequence.
//
//   fsout-exerciser [--seed N] [--ops N] [--files N] [--max-size BYTES] [--second DIR]
//                   [--host DIR] [--settle-ms MS] [--no-mmap] [--require-fallocate]
//                   [--keep] [--verbose] DIR
//
// --keep leaves the files (with the model's final contents) for an outside check.
//
// Exit status: 0 when every result matched, 1 on a difference or a failed call, 2 for bad
// arguments.
#include <fcntl.h>
#if defined(__linux__)
#include <linux/falloc.h>
#endif
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  uint64_t seed = 1;
  uint64_t ops = 10000;
  int files = 3;
  uint64_t max_size = 4u << 20;
  std::string dir, second, host;
  int settle_ms = 3000;
  bool mmap = true;
  bool require_fallocate = false;
  bool verbose = false;
  bool keep = false;
};

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr,
               "fsout-exerciser: %s\n"
               "usage: fsout-exerciser [--seed N] [--ops N] [--files N] [--max-size BYTES]\n"
               "         [--second DIR] [--host DIR] [--settle-ms MS] [--no-mmap]\n"
               "         [--require-fallocate] [--keep] [--verbose] DIR\n",
               message);
  std::exit(2);
}

std::optional<uint64_t> parse_number(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 0);
  if (errno != 0 || *end != '\0' || text[0] == '-') return std::nullopt;
  return value;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto number = [&](uint64_t low, uint64_t high) {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      auto value = parse_number(argv[++i]);
      if (!value || *value < low || *value > high) usage(("bad value for " + a).c_str());
      return *value;
    };
    auto text = [&] {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return std::string(argv[++i]);
    };
    if (a == "--seed")
      o.seed = number(0, UINT64_MAX);
    else if (a == "--ops")
      o.ops = number(1, UINT64_MAX);
    else if (a == "--files")
      o.files = int(number(1, 64));
    else if (a == "--max-size")
      o.max_size = number(4096, 1ull << 34);
    else if (a == "--second")
      o.second = text();
    else if (a == "--host")
      o.host = text();
    else if (a == "--settle-ms")
      o.settle_ms = int(number(0, 600000));
    else if (a == "--no-mmap")
      o.mmap = false;
    else if (a == "--require-fallocate")
      o.require_fallocate = true;
    else if (a == "--verbose")
      o.verbose = true;
    else if (a == "--keep")
      o.keep = true;
    else if (a == "--help") {
      std::printf(
          "usage: fsout-exerciser [--seed N] [--ops N] [--files N] [--max-size BYTES]\n"
          "         [--second DIR] [--host DIR] [--settle-ms MS] [--no-mmap]\n"
          "         [--require-fallocate] [--keep] [--verbose] DIR\n");
      std::exit(0);
    } else if (!a.empty() && a[0] == '-')
      usage(("unknown option " + a).c_str());
    else if (o.dir.empty())
      o.dir = a;
    else
      usage("more than one DIR");
  }
  if (o.dir.empty()) usage("DIR is missing");
  return o;
}

// The fallocate modes the exerciser uses, with what each must do to the file.
struct FallocateMode {
  const char* name;
  int mode;
};
#if defined(__linux__)
constexpr std::array<FallocateMode, 5> kFallocateModes{{
    {"allocate", 0},
    {"keep-size", FALLOC_FL_KEEP_SIZE},
    {"punch-hole", FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE},
    {"zero-range", FALLOC_FL_ZERO_RANGE},
    {"zero-range-keep-size", FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE},
}};
// The same names as Linux's flags, for the model's rules below.
#else
// FreeBSD: posix_fallocate(2) is plain allocation; there are no modes.
constexpr int FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2, FALLOC_FL_ZERO_RANGE = 0x10;
constexpr std::array<FallocateMode, 1> kFallocateModes{{{"allocate", 0}}};
int fallocate(int fd, int, off_t offset, off_t length) {
  int error = posix_fallocate(fd, offset, length);
  if (error != 0) errno = error;
  return error == 0 ? 0 : -1;
}
#endif

struct File {
  std::string name;
  std::vector<uint8_t> model;  // what the file must contain
  int fd = -1;                 // read-write, the one most operations use
  int reader = -1;             // a second descriptor, read-only
  int appender = -1;           // O_APPEND
};

class Exerciser {
 public:
  explicit Exerciser(Options o) : o_(std::move(o)), random_(o_.seed) {}

  int run() {
    for (int i = 0; i < o_.files; ++i) {
      File f;
      f.name = "exerciser-" + std::to_string(o_.seed) + "-" + std::to_string(i);
      std::string path = o_.dir + "/" + f.name;
      unlink(path.c_str());
      f.fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
      if (f.fd < 0) return failed_call("open " + path);
      files_.push_back(std::move(f));
      if (!open_side_descriptors(files_.back())) return 1;
    }
    probe_fallocate();
    for (op_ = 1; op_ <= o_.ops; ++op_) {
      if (!step()) {
        report_log();
        return 1;
      }
    }
    op_ = o_.ops;
    for (File& f : files_) {
      if (!sync_and_check_everywhere(f)) {
        report_log();
        return 1;
      }
    }
    for (File& f : files_) {
      if (!close_all(f)) {
        report_log();
        return 1;
      }
      if (!o_.keep) unlink((o_.dir + "/" + f.name).c_str());
    }
    std::printf("fsout-exerciser: seed %llu: %llu operations on %d files, every result matched\n",
                (unsigned long long)o_.seed, (unsigned long long)o_.ops, o_.files);
    for (size_t i = 0; i < counts_.size(); ++i)
      if (counts_[i] != 0)
        std::printf("  %-22s %llu\n", kOpNames[i], (unsigned long long)counts_[i]);
    for (size_t i = 0; i < kFallocateModes.size(); ++i)
      std::printf("  fallocate %-20s %s\n", kFallocateModes[i].name,
                  fallocate_ok_[i] ? "exercised" : "not supported here, skipped");
    if (second_retries_ != 0)
      std::printf("  second-mount checks that needed to wait for coherence: %llu\n",
                  (unsigned long long)second_retries_);
    return 0;
  }

 private:
  enum Op {
    kPwrite,
    kWrite,
    kPread,
    kReadSecondFd,
    kAppend,
    kTruncate,
    kFtruncate,
    kFallocate,
    kCopyWithin,
    kCopyBetween,
    kMmapWrite,
    kMmapRead,
    kFsyncCheck,
    kReopen,
    kOpCount
  };
  static constexpr const char* kOpNames[kOpCount] = {
      "pwrite",     "write",     "pread",       "read-second-fd", "append-write",
      "truncate",   "ftruncate", "fallocate",   "copy-within",    "copy-between",
      "mmap-write", "mmap-read", "fsync+check", "close+reopen"};
  // Relative frequencies, in the order of Op.
  static constexpr std::array<int, kOpCount> kWeights = {18, 6, 18, 6, 5, 3, 3,
                                                         8,  3, 3,  5, 5, 3, 2};

  uint64_t below(uint64_t n) { return n == 0 ? 0 : random_() % n; }

  // Sizes: mostly small (the small-file work), sometimes large (several FUSE requests).
  uint64_t some_length() {
    switch (below(8)) {
      case 0:
        return 1 + below(16);
      case 1:
        return 4096;
      case 2:
        return 1 + below(1u << 20);
      default:
        return 1 + below(65536);
    }
  }
  // Offsets: near the start, near the end (both sides of EOF), or anywhere in the range.
  uint64_t some_offset(const File& f) {
    uint64_t size = f.model.size();
    switch (below(4)) {
      case 0:
        return below(8192);
      case 1:
        return size > 4096 ? size - below(4096) : below(4096);
      case 2:
        return size + below(65536);  // past EOF: a hole
      default:
        return below(o_.max_size);
    }
  }
  std::vector<uint8_t> some_bytes(uint64_t n) {
    std::vector<uint8_t> bytes(n);
    for (uint64_t i = 0; i < n; i += 8) {
      uint64_t r = random_();
      std::memcpy(bytes.data() + i, &r, std::min<uint64_t>(8, n - i));
    }
    return bytes;
  }
  // Keeps writes inside max_size so files stay bounded.
  uint64_t clamp_length(uint64_t offset, uint64_t length) {
    if (offset >= o_.max_size) return 0;
    return std::min(length, o_.max_size - offset);
  }

  static void model_write(File& f, uint64_t offset, const uint8_t* data, uint64_t n) {
    if (n == 0) return;
    if (f.model.size() < offset + n) f.model.resize(offset + n, 0);
    std::memcpy(f.model.data() + offset, data, n);
  }

  bool step() {
    int total = 0;
    for (int w : kWeights) total += w;
    int pick = int(below(uint64_t(total)));
    int op = 0;
    while (pick >= kWeights[size_t(op)]) pick -= kWeights[size_t(op++)];
    File& f = files_[below(files_.size())];
    counts_[size_t(op)]++;
    switch (Op(op)) {
      case kPwrite:
        return do_pwrite(f);
      case kWrite:
        return do_write(f);
      case kPread:
        return do_pread(f, f.fd, "pread");
      case kReadSecondFd:
        return do_pread(f, f.reader, "pread through the second descriptor");
      case kAppend:
        return do_append(f);
      case kTruncate:
        return do_truncate(f, false);
      case kFtruncate:
        return do_truncate(f, true);
      case kFallocate:
        return do_fallocate(f);
      case kCopyWithin:
        return do_copy(f, f);
      case kCopyBetween:
        return do_copy(files_[below(files_.size())], f);
      case kMmapWrite:
        return o_.mmap ? do_mmap_write(f) : do_pread(f, f.fd, "pread");
      case kMmapRead:
        return o_.mmap ? do_mmap_read(f) : do_pread(f, f.reader, "pread");
      case kFsyncCheck:
        return sync_and_check_everywhere(f);
      case kReopen:
        return do_reopen(f);
      case kOpCount:
        break;
    }
    return true;
  }

  bool do_pwrite(File& f) {
    uint64_t offset = some_offset(f), n = clamp_length(offset, some_length());
    auto data = some_bytes(n);
    note(f, "pwrite off=%llu len=%llu", offset, n);
    if (!write_fully(f.fd, data.data(), n, offset, "pwrite")) return false;
    model_write(f, offset, data.data(), n);
    return true;
  }

  bool do_write(File& f) {
    uint64_t offset = some_offset(f), n = clamp_length(offset, some_length());
    auto data = some_bytes(n);
    note(f, "lseek+write off=%llu len=%llu", offset, n);
    if (lseek(f.fd, off_t(offset), SEEK_SET) != off_t(offset)) return failed_call("lseek");
    for (uint64_t done = 0; done < n;) {
      ssize_t w = write(f.fd, data.data() + done, n - done);
      if (w <= 0) return failed_call("write");
      done += uint64_t(w);
    }
    model_write(f, offset, data.data(), n);
    off_t at = lseek(f.fd, 0, SEEK_CUR);
    if (at != off_t(offset + n))
      return mismatch(f, "file offset after write: " + std::to_string(at) + ", expected " +
                             std::to_string(offset + n));
    return true;
  }

  bool do_append(File& f) {
    uint64_t n = clamp_length(f.model.size(), some_length());
    if (n == 0) return do_truncate(f, true);  // at the size limit: make room instead
    auto data = some_bytes(n);
    note(f, "O_APPEND write len=%llu (at %llu)", n, uint64_t(f.model.size()));
    // Where the descriptor points before has no say: O_APPEND writes at the end.
    lseek(f.appender, off_t(below(4096)), SEEK_SET);
    for (uint64_t done = 0; done < n;) {
      ssize_t w = write(f.appender, data.data() + done, n - done);
      if (w <= 0) return failed_call("append write");
      done += uint64_t(w);
    }
    uint64_t offset = f.model.size();
    model_write(f, offset, data.data(), n);
    off_t at = lseek(f.appender, 0, SEEK_CUR);
    if (at != off_t(f.model.size()))
      return mismatch(f, "O_APPEND descriptor's offset " + std::to_string(at) +
                             " after the write, expected the new size " +
                             std::to_string(f.model.size()));
    return true;
  }

  bool do_pread(File& f, int fd, const char* how) {
    uint64_t offset = below(4) == 0 ? 0 : some_offset(f);
    uint64_t n = below(8) == 0 ? f.model.size() + 100 : some_length();
    note(f, "%s off=%llu len=%llu", how, offset, n);
    std::vector<uint8_t> got(n);
    uint64_t done = 0;
    while (done < n) {
      ssize_t r = pread(fd, got.data() + done, n - done, off_t(offset + done));
      if (r < 0) return failed_call(how);
      if (r == 0) break;
      done += uint64_t(r);
    }
    got.resize(done);
    if (!compare(f, got, offset,
                 std::min<uint64_t>(n, f.model.size() > offset ? f.model.size() - offset : 0), how))
      return false;
    return check_size(f, fd, how);
  }

  bool check_size(File& f, int fd, const char* how) {
    struct stat st;
    if (fstat(fd, &st) != 0) return failed_call("fstat");
    if (uint64_t(st.st_size) != f.model.size())
      return mismatch(f, std::string("size after ") + how + ": " + std::to_string(st.st_size) +
                             ", expected " + std::to_string(f.model.size()));
    return true;
  }

  bool do_truncate(File& f, bool through_fd) {
    uint64_t size;
    switch (below(4)) {
      case 0:
        size = 0;
        break;
      case 1:
        size = f.model.size() / 2;
        break;
      case 2:
        size = f.model.size() + below(200000);
        break;
      default:
        size = below(o_.max_size);
        break;
    }
    size = std::min(size, o_.max_size);
    note(f, "%s to %llu (from %llu)", through_fd ? "ftruncate" : "truncate", size,
         uint64_t(f.model.size()));
    int rc = through_fd ? ftruncate(f.fd, off_t(size))
                        : truncate((o_.dir + "/" + f.name).c_str(), off_t(size));
    if (rc != 0) return failed_call(through_fd ? "ftruncate" : "truncate");
    f.model.resize(size, 0);
    return check_size(f, f.fd, "truncate");
  }

  // Which modes this mount (and the host's file system behind it) carries, decided once.
  void probe_fallocate() {
    std::string path = o_.dir + "/exerciser-probe-" + std::to_string(o_.seed);
    for (size_t i = 0; i < kFallocateModes.size(); ++i) {
      int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) continue;
      if (pwrite(fd, "x", 1, 8192) != 1) {
      }
      fallocate_ok_[i] = fallocate(fd, kFallocateModes[i].mode, 0, 4096) == 0;
      int error = errno;
      if (!fallocate_ok_[i] && o_.verbose)
        std::printf("fallocate %s: %s\n", kFallocateModes[i].name, std::strerror(error));
      close(fd);
      unlink(path.c_str());
    }
    if (o_.require_fallocate) {
      for (size_t i = 0; i < kFallocateModes.size(); ++i)
        if (!fallocate_ok_[i]) {
          std::fprintf(stderr, "fsout-exerciser: seed %llu: fallocate %s is refused by %s\n",
                       (unsigned long long)o_.seed, kFallocateModes[i].name, o_.dir.c_str());
          std::exit(1);
        }
    }
  }

  bool do_fallocate(File& f) {
    size_t which = below(kFallocateModes.size());
    if (!fallocate_ok_[which]) return do_pread(f, f.fd, "pread");
    const FallocateMode& m = kFallocateModes[which];
    uint64_t offset = some_offset(f), length = clamp_length(offset, some_length());
    if (length == 0) length = 1, offset = 0;
    note(f, "fallocate %s off=%llu len=%llu", m.name, offset, length);
    if (fallocate(f.fd, m.mode, off_t(offset), off_t(length)) != 0)
      return failed_call(std::string("fallocate ") + m.name);
    uint64_t end = offset + length, size = f.model.size();
    bool keep_size = (m.mode & FALLOC_FL_KEEP_SIZE) != 0;
    if (m.mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
      uint64_t zero_end = keep_size ? std::min(end, size) : end;
      if (!keep_size && end > size) f.model.resize(end, 0);
      if (offset < zero_end)
        std::fill(f.model.begin() + long(offset), f.model.begin() + long(zero_end), 0);
    } else if (!keep_size && end > size) {
      f.model.resize(end, 0);
    }
    return check_size(f, f.fd, "fallocate");
  }

  bool do_copy(File& from, File& to) {
    uint64_t size = from.model.size();
    if (size == 0) return do_pwrite(to);
    uint64_t in = below(size), n = std::min<uint64_t>(some_length(), size - in + below(2) * 100);
    uint64_t out = some_offset(to);
    n = clamp_length(out, n);
    if (&from == &to) {
      // Within one file, where the source ends once the copy has grown the file differs
      // between systems (FreeBSD reads on past the old end): stay inside it.
      n = std::min(n, size - in);
      // The kernel refuses overlapping ranges within one file: choose apart.
      if (in < out + n && out < in + n) out = in + n + below(4096);
      n = clamp_length(out, n);
    }
    note(to, "copy_file_range from %s off=%llu len=%llu to off=%llu", from.name.c_str(), in, n,
         out);
    uint64_t expected = std::min(n, size - in);
    std::vector<uint8_t> source(from.model.begin() + long(in),
                                from.model.begin() + long(in + expected));
    // After a short copy, ask only for the rest of what existed: within one file the copy
    // itself may have grown the file past the source's old end.
    uint64_t done = 0;
    while (done < n && (done == 0 || done < expected)) {
      off_t src = off_t(in + done), dst = off_t(out + done);
      ssize_t c = copy_file_range(from.fd, &src, to.fd, &dst, done == 0 ? n : expected - done, 0);
      if (c < 0) return failed_call("copy_file_range");
      if (c == 0) break;
      done += uint64_t(c);
    }
    if (done != expected)
      return mismatch(to, "copy_file_range copied " + std::to_string(done) + " bytes, expected " +
                              std::to_string(expected));
    model_write(to, out, source.data(), expected);
    return check_size(to, to.fd, "copy_file_range");
  }

  bool do_mmap_write(File& f) {
    uint64_t size = f.model.size();
    if (size == 0) return do_pwrite(f);
    const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
    uint64_t start = below(size) / page * page;
    uint64_t map_length = std::min<uint64_t>(size - start, 1 + below(256 * 1024));
    uint64_t at = below(map_length), n = 1 + below(std::min<uint64_t>(map_length - at, 65536));
    auto data = some_bytes(n);
    note(f, "mmap write map=%llu+%llu at=%llu len=%llu, msync", start, map_length, start + at, n);
    void* map = mmap(nullptr, map_length, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, off_t(start));
    if (map == MAP_FAILED) return failed_call("mmap MAP_SHARED read-write");
    std::memcpy(static_cast<uint8_t*>(map) + at, data.data(), n);
    bool synced = msync(map, map_length, MS_SYNC) == 0;
    int error = errno;
    munmap(map, map_length);
    errno = error;
    if (!synced) return failed_call("msync");
    model_write(f, start + at, data.data(), n);
    return true;
  }

  bool do_mmap_read(File& f) {
    uint64_t size = f.model.size();
    if (size == 0) return do_pread(f, f.reader, "pread");
    const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
    uint64_t start = below(size) / page * page;
    uint64_t n = std::min<uint64_t>(size - start, 1 + below(512 * 1024));
    note(f, "mmap read off=%llu len=%llu", start, n);
    void* map = mmap(nullptr, n, PROT_READ, MAP_SHARED, f.reader, off_t(start));
    if (map == MAP_FAILED) return failed_call("mmap MAP_SHARED read-only");
    std::vector<uint8_t> got(static_cast<uint8_t*>(map), static_cast<uint8_t*>(map) + n);
    munmap(map, n);
    return compare(f, got, start, n, "mmap read");
  }

  bool do_reopen(File& f) {
    note(f, "close every descriptor, open again");
    if (!close_all(f)) return false;
    std::string path = o_.dir + "/" + f.name;
    f.fd = open(path.c_str(), O_RDWR);
    if (f.fd < 0) return failed_call("open " + path);
    if (!open_side_descriptors(f)) return false;
    return do_pread(f, f.fd, "pread after reopen");
  }

  // fsync (or fdatasync), then the bytes must be the same in the host's file and through the
  // second mount.
  bool sync_and_check_everywhere(File& f) {
    bool data_only = below(2) == 0;
    note(f, "%s, then read the whole file everywhere", data_only ? "fdatasync" : "fsync");
    if ((data_only ? fdatasync(f.fd) : fsync(f.fd)) != 0)
      return failed_call(data_only ? "fdatasync" : "fsync");
    if (!check_whole_file(f, o_.dir, "the mount (a fresh descriptor)", 0)) return false;
    if (!o_.host.empty() && !check_whole_file(f, o_.host, "the host's file", 0)) return false;
    if (!o_.second.empty() && !check_whole_file(f, o_.second, "the second mount", o_.settle_ms))
      return false;
    return true;
  }

  // Reads DIR/name whole through a new descriptor. A second mount may lag by its coherence
  // window (a NOTIFY in flight, an attribute timeout): then it is read again until settle_ms.
  bool check_whole_file(File& f, const std::string& dir, const char* where, int settle_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(settle_ms);
    for (int attempt = 0;; ++attempt) {
      std::vector<uint8_t> got;
      std::string path = dir + "/" + f.name;
      int fd = open(path.c_str(), O_RDONLY);
      if (fd < 0) return failed_call(std::string("open in ") + where + ": " + path);
      std::vector<uint8_t> buffer(1 << 20);
      for (;;) {
        ssize_t r = read(fd, buffer.data(), buffer.size());
        if (r < 0) {
          close(fd);
          return failed_call(std::string("read in ") + where);
        }
        if (r == 0) break;
        got.insert(got.end(), buffer.begin(), buffer.begin() + r);
      }
      close(fd);
      if (got == f.model) {
        if (attempt > 0) second_retries_++;
        return true;
      }
      if (std::chrono::steady_clock::now() >= deadline)
        return compare(f, got, 0, f.model.size(), where);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  bool open_side_descriptors(File& f) {
    std::string path = o_.dir + "/" + f.name;
    f.reader = open(path.c_str(), O_RDONLY);
    if (f.reader < 0) return failed_call("open O_RDONLY " + path);
    f.appender = open(path.c_str(), O_WRONLY | O_APPEND);
    if (f.appender < 0) return failed_call("open O_APPEND " + path);
    return true;
  }

  bool close_all(File& f) {
    bool ok = true;
    for (int* fd : {&f.fd, &f.reader, &f.appender}) {
      if (*fd >= 0 && close(*fd) != 0) ok = false;
      *fd = -1;
    }
    return ok || failed_call("close");
  }

  bool write_fully(int fd, const uint8_t* data, uint64_t n, uint64_t offset, const char* how) {
    for (uint64_t done = 0; done < n;) {
      ssize_t w = pwrite(fd, data + done, n - done, off_t(offset + done));
      if (w <= 0) return failed_call(how);
      done += uint64_t(w);
    }
    return true;
  }

  // got holds what was read from `offset`; exactly `expected_length` bytes must have come.
  bool compare(File& f, const std::vector<uint8_t>& got, uint64_t offset, uint64_t expected_length,
               const char* how) {
    uint64_t common = std::min<uint64_t>(got.size(), expected_length);
    for (uint64_t i = 0; i < common; ++i) {
      if (got[i] != f.model[offset + i]) {
        uint64_t at = offset + i;
        std::string text = std::string(how) + ": byte " + std::to_string(at) + " differs";
        text += "\n    expected:" + hex(f.model, at, at + 16);
        text += "\n    got:     " + hex(got, i, i + 16);
        uint64_t end = i;
        while (end < common && got[end] != f.model[offset + end]) ++end;
        text += "\n    first run of differing bytes: " + std::to_string(end - i) + " bytes";
        return mismatch(f, text);
      }
    }
    if (got.size() != expected_length)
      return mismatch(f, std::string(how) + ": " + std::to_string(got.size()) +
                             " bytes came, expected " + std::to_string(expected_length) +
                             " (model size " + std::to_string(f.model.size()) + ")");
    return true;
  }

  static std::string hex(const std::vector<uint8_t>& bytes, uint64_t from, uint64_t to) {
    std::string text;
    char b[4];
    for (uint64_t i = from; i < std::min<uint64_t>(to, bytes.size()); ++i) {
      std::snprintf(b, sizeof b, " %02x", bytes[i]);
      text += b;
    }
    return text.empty() ? " (none)" : text;
  }

  static unsigned long long printable(uint64_t v) { return v; }
  static const char* printable(const char* v) { return v; }
  template <class... Args>
  void note(const File& f, const char* format, Args... args) {
    char text[256];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-security"  // formats are literals at every caller
    std::snprintf(text, sizeof text, format, printable(args)...);
#pragma GCC diagnostic pop
    std::string line = "#" + std::to_string(op_) + " " + f.name + ": " + text;
    if (o_.verbose) std::printf("%s\n", line.c_str());
    log_.push_back(std::move(line));
    if (log_.size() > 40) log_.pop_front();
  }

  bool mismatch(File& f, const std::string& what) {
    std::fprintf(stderr, "fsout-exerciser: DIFFERENCE: seed %llu, operation %llu, file %s: %s\n",
                 (unsigned long long)o_.seed, (unsigned long long)op_, f.name.c_str(),
                 what.c_str());
    return false;
  }

  bool failed_call(const std::string& what) {
    int error = errno;
    std::fprintf(stderr, "fsout-exerciser: FAILED CALL: seed %llu, operation %llu: %s: %s\n",
                 (unsigned long long)o_.seed, (unsigned long long)op_, what.c_str(),
                 std::strerror(error));
    return false;
  }

  void report_log() {
    std::fprintf(stderr,
                 "fsout-exerciser: the last %zu operations (replay: --seed %llu --ops %llu):\n",
                 log_.size(), (unsigned long long)o_.seed, (unsigned long long)op_);
    for (const std::string& line : log_) std::fprintf(stderr, "  %s\n", line.c_str());
  }

  Options o_;
  std::mt19937_64 random_;
  std::vector<File> files_;
  std::array<bool, kFallocateModes.size()> fallocate_ok_{};
  std::array<uint64_t, kOpCount> counts_{};
  std::deque<std::string> log_;
  uint64_t op_ = 0;
  uint64_t second_retries_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  return Exerciser(std::move(options)).run();
}
