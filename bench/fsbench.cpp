// fsbench: the file-system workload of the VM benchmark, timed inside one
// process (under emulation every fork/exec costs milliseconds, so shell
// loops would measure the shell). Prints one line per step:
//   STEP VALUE UNIT
// Usage: fsbench DIR [--no-drop-caches]
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fsbench: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

void drop_caches(bool enabled) {
  if (!enabled) return;
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd >= 0) {
    if (write(fd, "3", 1) != 1) {
    }
    close(fd);
  }
}

constexpr size_t kBulkBytes = 64u << 20;
constexpr size_t kChunk = 1u << 20;
constexpr int kDirs = 20, kFilesPerDir = 100, kSmallBytes = 2048;

double write_bulk(const std::string& path) {
  std::vector<char> chunk(kChunk);
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = char(i * 7 + 3);
  double start = now();
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) die(path);
  for (size_t done = 0; done < kBulkBytes; done += kChunk)
    if (write(fd, chunk.data(), kChunk) != ssize_t(kChunk)) die("write " + path);
  if (fsync(fd) != 0) die("fsync " + path);
  close(fd);
  return now() - start;
}

double read_bulk(const std::string& path) {
  std::vector<char> chunk(kChunk);
  double start = now();
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) die(path);
  size_t total = 0;
  for (ssize_t n; (n = read(fd, chunk.data(), kChunk)) > 0;) total += size_t(n);
  close(fd);
  if (total != kBulkBytes) die("short read of " + path);
  return now() - start;
}

std::string small_path(const std::string& root, int dir, int file) {
  return root + "/d" + std::to_string(dir / 5) + "/e" + std::to_string(dir) + "/f" +
         std::to_string(file);
}

double create_small(const std::string& root) {
  std::vector<char> data(kSmallBytes, 'x');
  double start = now();
  for (int d = 0; d < kDirs; ++d) {
    mkdir((root + "/d" + std::to_string(d / 5)).c_str(), 0755);
    if (mkdir((root + "/d" + std::to_string(d / 5) + "/e" + std::to_string(d)).c_str(), 0755) != 0)
      die("mkdir");
    for (int f = 0; f < kFilesPerDir; ++f) {
      std::string path = small_path(root, d, f);
      int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
      if (fd < 0 || write(fd, data.data(), data.size()) != ssize_t(data.size())) die(path);
      close(fd);
    }
  }
  return now() - start;
}

size_t walk(const std::string& dir) {
  size_t count = 0;
  DIR* d = opendir(dir.c_str());
  if (!d) die(dir);
  while (dirent* e = readdir(d)) {
    if (!std::strcmp(e->d_name, ".") || !std::strcmp(e->d_name, "..")) continue;
    std::string path = dir + "/" + e->d_name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) die(path);
    ++count;
    if (S_ISDIR(st.st_mode)) count += walk(path);
  }
  closedir(d);
  return count;
}

double read_small(const std::string& root) {
  std::vector<char> buffer(65536);
  double start = now();
  for (int d = 0; d < kDirs; ++d)
    for (int f = 0; f < kFilesPerDir; ++f) {
      std::string path = small_path(root, d, f);
      int fd = open(path.c_str(), O_RDONLY);
      if (fd < 0 || read(fd, buffer.data(), buffer.size()) != kSmallBytes) die(path);
      close(fd);
    }
  return now() - start;
}

double delete_small(const std::string& root) {
  double start = now();
  for (int d = 0; d < kDirs; ++d) {
    for (int f = 0; f < kFilesPerDir; ++f)
      if (unlink(small_path(root, d, f).c_str()) != 0) die("unlink");
    if (rmdir((root + "/d" + std::to_string(d / 5) + "/e" + std::to_string(d)).c_str()) != 0)
      die("rmdir");
  }
  for (int d = 0; d < kDirs / 5; ++d)
    if (rmdir((root + "/d" + std::to_string(d)).c_str()) != 0) die("rmdir");
  return now() - start;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fsbench DIR [--no-drop-caches]\n");
    return 2;
  }
  std::string root = argv[1];
  bool drop = !(argc > 2 && std::strcmp(argv[2], "--no-drop-caches") == 0);
  double mib = double(kBulkBytes) / (1 << 20);
  std::string bulk = root + "/bulk";
  std::printf("write64M+fsync %.1f MiB/s\n", mib / write_bulk(bulk));
  drop_caches(drop);
  std::printf("read64M-cold %.1f MiB/s\n", mib / read_bulk(bulk));
  std::printf("read64M-warm %.1f MiB/s\n", mib / read_bulk(bulk));
  unlink(bulk.c_str());
  std::printf("create2000 %.3f s\n", create_small(root));
  drop_caches(drop);
  double start = now();
  size_t entries = walk(root);
  std::printf("readdir+lstat %.3f s\n", now() - start);
  if (entries != size_t(kDirs * kFilesPerDir + kDirs + kDirs / 5)) {
    std::fprintf(stderr, "fsbench: walk found %zu entries\n", entries);
    return 1;
  }
  std::printf("read2000 %.3f s\n", read_small(root));
  std::printf("delete2000 %.3f s\n", delete_small(root));
  return 0;
}
