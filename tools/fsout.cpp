// fsout: the protocol without a mount, for scripts and debugging.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#ifdef FSOUT_ADMIN
#include "client/admin_client.h"
#endif
#include "client/client.h"
#include "version.h"

namespace {

using fsout::client::Client;
namespace canon = fsout::canonical;

const char kUsage[] =
    "usage: fsout [--protocol-version N] ADDR COMMAND [ARGS]\n"
    "       fsout admin unix:PATH stats|sessions|exports [--json]\n"
    "\n"
    "Talks to the fsoutd at ADDR (unix:PATH, tcp:HOST:PORT, vsock:CID:PORT, serial:DEVICE).\n"
    "Paths are relative to the export's root.\n"
    "\n"
    "commands:\n"
    "  ls [PATH]            list a directory (mode, links, owner, size, name)\n"
    "  stat PATH            show a file's attributes\n"
    "  cat PATH             write a file to standard output\n"
    "  get PATH LOCAL       copy a file from the export\n"
    "  put LOCAL PATH       copy a file into the export (- reads standard input)\n"
    "  mkdir PATH           make a directory\n"
    "  rm PATH              remove a file or an empty directory\n"
    "  mv FROM TO           rename\n"
    "  df                   show the export's file-system usage\n"
    "\n"
    "  admin unix:PATH VIEW [--json]   what the fsoutd whose admin socket is PATH is doing\n"
    "                       (root): VIEW exports (one row each), sessions (peer, guest,\n"
    "                       requests, errors, bytes, nodes, handles, notifications) or stats\n"
    "                       (per operation: count, errors, latency percentiles); --json:\n"
    "                       the whole document\n"
    "\n"
    "  -h, --help           this text\n"
    "  -V, --version        the version\n";

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "fsout: %s\n", message.c_str());
  // _exit: a failed start has nothing to clean up, and a leak checker's
  // report at exit would bury the one line that says what went wrong.
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(1);
}

template <class T>
T check(fsout::Result<T> result, const std::string& what) {
  if (!result.ok()) die(what + ": " + std::strerror(result.error()));
  return std::move(result.value());
}

char type_letter(uint32_t mode) {
  switch (mode & canon::kModeTypeMask) {
    case canon::kModeDirectory:
      return 'd';
    case canon::kModeSymlink:
      return 'l';
    case canon::kModeFifo:
      return 'p';
    case canon::kModeSocket:
      return 's';
    case canon::kModeCharDevice:
      return 'c';
    case canon::kModeBlockDevice:
      return 'b';
    default:
      return '-';
  }
}

std::string mode_text(uint32_t mode) {
  std::string text(1, type_letter(mode));
  const char* letters = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) text += (mode & (0400 >> i)) ? letters[i] : '-';
  return text;
}

void print_time(const char* label, const fsout::protocol::Time& t) {
  time_t seconds = time_t(t.seconds);
  char text[64];
  struct tm tm;
  gmtime_r(&seconds, &tm);
  strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%S", &tm);
  std::printf("%s: %s.%09u UTC\n", label, text, t.nanoseconds);
}

size_t arity(const std::string& command) {
  if (command == "ls") return 0;  // optional PATH
  if (command == "df") return 0;
  if (command == "stat" || command == "cat" || command == "mkdir" || command == "rm") return 1;
  if (command == "get" || command == "put" || command == "mv") return 2;
  return size_t(-1);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  fsout::client::Options options;
  while (!args.empty() && args[0].size() > 1 && args[0][0] == '-') {
    if (args[0] == "-h" || args[0] == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (args[0] == "-V" || args[0] == "--version") {
      std::printf("fsout %s (protocol %u)\n", FSOUT_VERSION, fsout::protocol::kProtocolVersion);
      return 0;
    }
    if (args[0] == "--protocol-version" && args.size() > 1) {
      options.min_version = options.max_version =
          uint32_t(std::strtoul(args[1].c_str(), nullptr, 10));
      args.erase(args.begin(), args.begin() + 2);
      continue;
    }
    die("unknown option '" + args[0] + "' (see --help)");
  }
  if (!args.empty() && args[0] == "admin") {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    bool as_json = false;
    std::erase_if(rest,
                  [&](const std::string& arg) { return arg == "--json" && (as_json = true); });
    if (rest.size() != 2) die("usage: fsout admin unix:PATH stats|sessions|exports [--json]");
    const std::string& view = rest[1];
    if (view != "stats" && view != "sessions" && view != "exports")
      die("unknown admin view '" + view + "' (stats, sessions or exports)");
#ifndef FSOUT_ADMIN
    die("this fsout is built without the admin client (it needs nlohmann-json)");
#else
    try {
      const std::string answer = fsout::client::admin_request(rest[0], view);
      if (as_json) {
        std::printf("%s\n", answer.c_str());
        return 0;
      }
      std::string error;
      auto table = fsout::client::admin_table(answer, view, error);
      if (!table) die(error);
      std::fputs(table->c_str(), stdout);
    } catch (const std::exception& error) {
      die(error.what());
    }
    return 0;
#endif
  }
  if (args.size() < 2) die("missing ADDR or COMMAND (see --help)");
  const std::string address = args[0], command = args[1];
  std::vector<std::string> rest(args.begin() + 2, args.end());
  size_t wanted = arity(command);
  if (wanted == size_t(-1)) die("unknown command '" + command + "' (see --help)");
  if (command == "ls" ? rest.size() > 1 : rest.size() != wanted)
    die("'" + command + "' takes " + (command == "ls" ? "at most 1" : std::to_string(wanted)) +
        " argument" + (wanted == 1 || command == "ls" ? "" : "s") + " (see --help)");

  std::unique_ptr<Client> client;
  try {
    client = std::make_unique<Client>(fsout::client::Connection::open(address, options));
  } catch (const std::exception& error) {
    die(error.what());
  }

  if (command == "ls") {
    std::string path = rest.empty() ? "/" : rest[0];
    auto entries = check(client->list(path), path);
    std::sort(entries.begin(), entries.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    for (const auto& e : entries)
      std::printf("%s %3u %5u %5u %12llu %s\n", mode_text(e.attr.mode).c_str(), e.attr.nlink,
                  e.attr.uid, e.attr.gid, (unsigned long long)e.attr.size, e.name.c_str());
  } else if (command == "stat") {
    auto a = check(client->stat(rest[0]), rest[0]);
    std::printf(
        "path: %s\nmode: %s (%04o)\ninode: %llu\nlinks: %u\nuid: %u\ngid: %u\nsize: %llu\n"
        "blocks: %llu\n",
        rest[0].c_str(), mode_text(a.mode).c_str(), a.mode & 07777, (unsigned long long)a.inode,
        a.nlink, a.uid, a.gid, (unsigned long long)a.size, (unsigned long long)a.blocks);
    print_time("atime", a.atime);
    print_time("mtime", a.mtime);
    print_time("ctime", a.ctime);
  } else if (command == "cat" || command == "get") {
    int out = 1;
    if (command == "get") {
      out = open(rest[1].c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (out < 0) die(rest[1] + ": " + std::strerror(errno));
    }
    check(client->read(rest[0],
                       [&](std::span<const uint8_t> data) {
                         size_t done = 0;
                         while (done < data.size()) {
                           ssize_t n = write(out, data.data() + done, data.size() - done);
                           if (n < 0 && errno == EINTR) continue;
                           if (n <= 0) return false;
                           done += size_t(n);
                         }
                         return true;
                       }),
          rest[0]);
    if (out != 1 && close(out) != 0) die(rest[1] + ": " + std::strerror(errno));
  } else if (command == "put") {
    int in = rest[0] == "-" ? 0 : open(rest[0].c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) die(rest[0] + ": " + std::strerror(errno));
    check(client->write(rest[1], 0644,
                        [&](uint8_t* buffer, size_t size) -> ssize_t {
                          size_t done = 0;
                          while (done < size) {
                            ssize_t n = read(in, buffer + done, size - done);
                            if (n < 0 && errno == EINTR) continue;
                            if (n < 0) return -1;
                            if (n == 0) break;
                            done += size_t(n);
                          }
                          return ssize_t(done);
                        }),
          rest[1]);
  } else if (command == "mkdir") {
    check(client->mkdir(rest[0], 0755), rest[0]);
  } else if (command == "rm") {
    check(client->remove(rest[0]), rest[0]);
  } else if (command == "mv") {
    check(client->rename(rest[0], rest[1]), rest[0] + " -> " + rest[1]);
  } else if (command == "df") {
    auto s = check(client->statfs(), "df");
    unsigned long long unit = s.fragment_size ? s.fragment_size : s.block_size;
    std::printf("%-12s %14s %14s %14s %10s %10s\n", "export", "size", "used", "available", "inodes",
                "free");
    std::printf("%-12s %14llu %14llu %14llu %10llu %10llu\n", "/",
                (unsigned long long)(s.blocks * unit),
                (unsigned long long)((s.blocks - s.blocks_free) * unit),
                (unsigned long long)(s.blocks_available * unit), (unsigned long long)s.files,
                (unsigned long long)s.files_free);
  }
  return 0;
}
