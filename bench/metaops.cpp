// metaops: metadata operations per second on one directory: create, stat,
// rename and unlink of N empty files, each phase timed in-process.
// Usage: metaops DIR [N]   Prints: "create OPS/s", "stat OPS/s", ...
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
template <class Op>
void phase(const char* name, int count, Op op) {
  double start = now();
  for (int i = 0; i < count; ++i)
    if (!op(i)) {
      std::perror(name);
      std::exit(1);
    }
  std::printf("%s %.0f ops/s\n", name, count / (now() - start));
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: metaops DIR [N]\n");
    return 2;
  }
  std::string dir = argv[1];
  int count = argc > 2 ? std::atoi(argv[2]) : 10000;
  auto name = [&](const char* prefix, int i) { return dir + "/" + prefix + std::to_string(i); };
  phase("create", count, [&](int i) {
    int fd = open(name("f", i).c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    return fd >= 0 && close(fd) == 0;
  });
  phase("stat", count, [&](int i) {
    struct stat st;
    return stat(name("f", i).c_str(), &st) == 0;
  });
  phase("rename", count,
        [&](int i) { return rename(name("f", i).c_str(), name("g", i).c_str()) == 0; });
  phase("unlink", count, [&](int i) { return unlink(name("g", i).c_str()) == 0; });
  return 0;
}
