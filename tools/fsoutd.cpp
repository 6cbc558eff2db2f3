// fsoutd: serves a host directory to guests over fsout's protocol.
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "host/identity.h"
#include "host/node_table.h"
#include "host/privileges.h"
#include "host/sandbox.h"
#include "host/server.h"
#include "version.h"

#if defined(__SANITIZE_ADDRESS__)
// Sanitizer (test) builds: at exit the leak checker stops the threads from a tracer process
// it clones and ptraces, reading /proc/PID/task, none of which the sandbox allows (as it
// should). Leaks of the host code are checked where it runs in-process: the unit tests and
// the session fuzzer.
extern "C" const char* __asan_default_options() { return "detect_leaks=0"; }
#endif

#ifndef FSOUT_BUILD_NOTE
#define FSOUT_BUILD_NOTE ""
#endif

namespace {

const char kUsage[] =
    "usage: fsoutd [OPTIONS] --listen ADDR [--listen ADDR]... DIR\n"
    "\n"
    "Serves DIR to fsout guests (fsout-mount, fsout).\n"
    "\n"
    "  --listen ADDR        unix:PATH, tcp:HOST:PORT, vsock:CID:PORT or serial:DEVICE\n"
    "                       (repeat for several)\n"
    "  --read-only          refuse every change to DIR (EROFS)\n"
    "  --serial-streams     connections carry virtio-serial ports (QEMU -chardev socket):\n"
    "                       resynchronise after garbage and restart on a new HELLO\n"
    "                       instead of closing\n"
    "  --threads N          threads per session = requests it performs at once (default 4)\n"
    "  --max-message BYTES  largest frame payload accepted (default 1052672)\n"
    "  --max-handles N      open files and directories per session (default 4096)\n"
    "  --max-nodes N        inodes a session may hold (default 1048576)\n"
    "                       Both per-session limits are kept to a quarter (nodes) and an\n"
    "                       eighth (handles) of the fd limit, so that no session can take\n"
    "                       every fd from the others\n"
    "  --max-sessions N     connections served at once; more are closed (default 256)\n"
    "  --export-name NAME   refuse guests that ask for another export name\n"
    "  --sandbox MODE       namespace (default): a mount namespace whose root is DIR,\n"
    "                       no network, and a seccomp allow-list of system calls;\n"
    "                       chroot: chroot into DIR and the allow-list (where namespaces\n"
    "                       cannot be made); none: neither (debugging)\n"
    "  --state-dir DIR      where sessions keep what a restarted fsoutd needs to resume\n"
    "                       them (open files, locks, node ids): a directory outside DIR,\n"
    "                       on a file system that does not outlive the host (default\n"
    "                       /run/fsout/<export and addresses>; none: guests cannot resume)\n"
    "  --resume-window S    how long sessions saved by an earlier fsoutd wait for their\n"
    "                       guests, holding their locks (default 300)\n"
    "  --uid-map GUEST:HOST:COUNT   guest uids GUEST.. are host uids HOST.. (repeatable);\n"
    "                       other ids show as 65534 and cannot create or be given\n"
    "  --gid-map GUEST:HOST:COUNT   the same for groups\n"
    "  --squash UID:GID     every guest user acts as host UID:GID; the guest keeps\n"
    "                       seeing its own owners (kept in an xattr)\n"
    "                       Default: guest ids are host ids (a guest root is the\n"
    "                       host's root inside DIR). Creating as the caller needs root.\n"
    "  -h, --help           this text\n"
    "  -V, --version        the version\n";

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "fsoutd: %s\n", message.c_str());
  // _exit: a failed start has nothing to clean up, and a leak checker's
  // report at exit would bury the one line that says what went wrong.
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(1);
}

template <class T>
T number(const char* option, const char* text, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text, text + std::strlen(text), value);
  if (ec != std::errc() || *end != '\0' || value < min || value > max)
    die(std::string("bad value '") + text + "' for " + option + " (see --help)");
  return value;
}

// Every node holds an fd, in every session: allow as many as the system
// lets this process have (root may raise the hard limit up to fs.nr_open).
void raise_fd_limit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t wanted = 1 << 20;
  if (FILE* file = std::fopen("/proc/sys/fs/nr_open", "re")) {
    unsigned long value = 0;
    if (std::fscanf(file, "%lu", &value) == 1 && value > 0) wanted = value;
    std::fclose(file);
  }
  if (limit.rlim_max < wanted) {
    rlimit raised{wanted, wanted};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return;
  }
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
}

// Each node holds an fd and each handle one more: a session's budgets are kept well below
// the process's limit, so that one guest that looks up or opens everything runs into its
// own limit (its requests wait, then fail), not the daemon's (where accept and every other
// session would fail too).
// Returns a line for the log when the limits were lowered under a tight fd limit.
std::string fit_budgets_to_fd_limit(fsout::host::Limits& limits) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return "";
  const size_t fds = limit.rlim_cur == RLIM_INFINITY ? size_t(1) << 30 : size_t(limit.rlim_cur);
  const size_t nodes = std::max<size_t>(16, fds / 4), handles = std::max<size_t>(8, fds / 8);
  std::string note;
  if ((limits.max_nodes > nodes || limits.max_handles > handles) && fds < 65536)  // a tight limit
    note = "fsoutd: per-session limits: " + std::to_string(std::min(limits.max_nodes, nodes)) +
           " nodes, " + std::to_string(std::min(limits.max_handles, handles)) +
           " open files (the fd limit is " + std::to_string(fds) + ")\n";
  limits.max_nodes = std::min(limits.max_nodes, nodes);
  limits.max_handles = std::min(limits.max_handles, handles);
  return note;
}

// The default state directory: one per export and set of addresses, so that a restart with
// the same command line finds it and two daemons never share one.
std::string default_state_dir(const std::string& root, const std::vector<std::string>& listen) {
  std::error_code error;
  std::string key = std::filesystem::canonical(root, error).string();
  for (const auto& address : listen) key += "\n" + address;
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : key) hash = (hash ^ c) * 1099511628211ull;
  char name[32];
  std::snprintf(name, sizeof(name), "export-%016llx", static_cast<unsigned long long>(hash));
  std::string base = "/run/fsout";
  if (geteuid() != 0) {
    const char* runtime = std::getenv("XDG_RUNTIME_DIR");
    base = runtime && *runtime ? std::string(runtime) + "/fsout"
                               : "/tmp/fsout-" + std::to_string(geteuid());
  }
  return base + "/" + name;
}

// Creates the state directory (0700) and opens it. SECURITY: it must not be inside the
// export, where a guest could write sessions of its own making.
int open_state_dir(const std::string& path, const std::string& root) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) die("cannot make the state directory " + path + ": " + error.message());
  chmod(path.c_str(), 0700);
  const auto dir = std::filesystem::canonical(path, error);
  const auto exported = std::filesystem::canonical(root, error);
  if (!error) {
    auto [at, in] = std::mismatch(exported.begin(), exported.end(), dir.begin(), dir.end());
    if (at == exported.end())
      die("the state directory " + path + " is inside the export: give --state-dir outside it");
  }
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die("cannot open the state directory " + path + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  enum {
    kListen = 256,
    kReadOnly,
    kSerialStreams,
    kThreads,
    kMaxMessage,
    kMaxHandles,
    kMaxNodes,
    kMaxSessions,
    kExportName,
    kUidMap,
    kGidMap,
    kSquash,
    kSandbox,
    kStateDir,
    kResumeWindow
  };
  static const option options[] = {{"listen", required_argument, nullptr, kListen},
                                   {"read-only", no_argument, nullptr, kReadOnly},
                                   {"serial-streams", no_argument, nullptr, kSerialStreams},
                                   {"threads", required_argument, nullptr, kThreads},
                                   {"max-message", required_argument, nullptr, kMaxMessage},
                                   {"max-handles", required_argument, nullptr, kMaxHandles},
                                   {"max-nodes", required_argument, nullptr, kMaxNodes},
                                   {"max-sessions", required_argument, nullptr, kMaxSessions},
                                   {"export-name", required_argument, nullptr, kExportName},
                                   {"uid-map", required_argument, nullptr, kUidMap},
                                   {"gid-map", required_argument, nullptr, kGidMap},
                                   {"squash", required_argument, nullptr, kSquash},
                                   {"sandbox", required_argument, nullptr, kSandbox},
                                   {"state-dir", required_argument, nullptr, kStateDir},
                                   {"resume-window", required_argument, nullptr, kResumeWindow},
                                   {"help", no_argument, nullptr, 'h'},
                                   {"version", no_argument, nullptr, 'V'},
                                   {nullptr, 0, nullptr, 0}};
  fsout::host::ServerConfig config;
  auto ids = std::make_shared<fsout::host::IdMap>();
  std::vector<std::string> listen;
  auto sandbox = fsout::host::SandboxMode::kNamespace;
  bool sandbox_chosen = false;
  std::string state_dir;
  unsigned resume_window = 300;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "+hV", options, nullptr)) != -1) {
    switch (c) {
      case kListen:
        listen.push_back(optarg);
        break;
      case kReadOnly:
        config.session.read_only = true;
        break;
      case kSerialStreams:
        config.serial_streams = true;
        break;
      case kThreads:
        config.session.workers = number("--threads", optarg, 1u, 256u);
        break;
      case kMaxMessage:
        config.session.max_message = number("--max-message", optarg, 65536u, 64u << 20);
        break;
      case kMaxHandles:
        config.session.limits.max_handles = number<size_t>("--max-handles", optarg, 1, 1 << 24);
        break;
      case kMaxNodes:
        config.session.limits.max_nodes = number<size_t>("--max-nodes", optarg, 16, 1 << 26);
        break;
      case kMaxSessions:
        config.max_sessions = number<size_t>("--max-sessions", optarg, 1, 65536);
        break;
      case kExportName:
        config.session.export_name = optarg;
        break;
      case kSandbox:
        if (auto mode = fsout::host::parse_sandbox_mode(optarg))
          sandbox = *mode;
        else
          die(std::string("bad value '") + optarg + "' for --sandbox (namespace, chroot or none)");
        sandbox_chosen = true;
        break;
      case kStateDir:
        state_dir = optarg;
        if (state_dir.empty()) die("empty --state-dir (use none to keep no state)");
        break;
      case kResumeWindow:
        resume_window = number("--resume-window", optarg, 1u, 7u * 24 * 3600);
        break;
      case kUidMap:
      case kGidMap:
      case kSquash:
        try {
          if (c == kSquash) {
            auto [uid, gid] = fsout::host::IdMap::parse_squash(optarg);
            ids->set_squash(uid, gid);
          } else if (c == kUidMap) {
            ids->add_uid_range(fsout::host::IdMap::parse_range(optarg));
          } else {
            ids->add_gid_range(fsout::host::IdMap::parse_range(optarg));
          }
        } catch (const std::invalid_argument& error) {
          const char* option = c == kSquash ? "--squash" : c == kUidMap ? "--uid-map" : "--gid-map";
          die(std::string("bad value for ") + option + ": " + error.what());
        }
        break;
      case 'h':
        std::fputs(kUsage, stdout);
        return 0;
      case 'V':
        std::printf("fsoutd %s%s (protocol %u)\n", FSOUT_VERSION, FSOUT_BUILD_NOTE, 1u);
        return 0;
      default:
        die(std::string("unknown or incomplete option '") + argv[optind - 1] + "' (see --help)");
    }
  }
  if (optind != argc - 1)
    die(optind == argc ? "missing DIR (see --help)" : "too many arguments (see --help)");
  if (listen.empty()) die("missing --listen ADDR (see --help)");
  if (ids->squash() && ids->has_ranges())
    die("--squash cannot be combined with --uid-map or --gid-map");
  if (!ids->identity() && geteuid() != 0)
    die("--uid-map, --gid-map and --squash need fsoutd to run as root");
  config.session.ids = ids;
  config.root_path = argv[optind];
  struct stat st;
  if (stat(config.root_path.c_str(), &st) != 0)
    die("cannot serve '" + config.root_path + "': " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) die("cannot serve '" + config.root_path + "': not a directory");

  // Signals are taken by sigwait below; every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  fsout::host::install_session_signals();
  raise_fd_limit();
  const std::string budget_note = fit_budgets_to_fd_limit(config.session.limits);
  // Every host path is used before the sandbox: listeners are bound (and serial devices
  // opened) here, and the export's own name is noted for the change watcher.
  bool bind_low_ports = false;
  std::vector<std::pair<int, fsout::transport::Address>> bound;
  for (const auto& text : listen) {
    try {
      auto address = fsout::transport::parse_address(text);
      if (address.kind == fsout::transport::Address::Kind::kTcp && address.port < 1024)
        bind_low_ports = true;
      bound.emplace_back(fsout::host::Server::bind(address), address);
    } catch (const std::exception& error) {
      die(error.what());
    }
  }
  const std::string export_label = config.root_path;
  // Restarts: sessions an earlier fsoutd saved are opened again here, before the sandbox
  // (opening by file handle needs it), and wait for their guests.
  std::unique_ptr<fsout::host::ParkedSessions> parked;
  std::vector<std::string> restore_notes;
  if (state_dir != "none") {
    if (state_dir.empty()) state_dir = default_state_dir(config.root_path, listen);
    int dir_fd = open_state_dir(state_dir, config.root_path);
    int root_fd = open(config.root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) die("cannot serve '" + config.root_path + "': " + std::strerror(errno));
    parked = std::make_unique<fsout::host::ParkedSessions>(dir_fd, root_fd,
                                                           std::chrono::seconds(resume_window));
    restore_notes = parked->restore_all(config.session.limits, ids);
    close(root_fd);
    config.session.parked = parked.get();
  }
  std::string sandbox_note;
  if (sandbox != fsout::host::SandboxMode::kNone) {
    std::error_code error;
    const std::filesystem::path canonical = std::filesystem::canonical(config.root_path, error);
    if (!error && canonical.has_relative_path()) {
      if (int parent = open(canonical.parent_path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
          parent >= 0) {
        config.export_parent_key = fsout::host::file_handle_key(parent);
        config.export_entry = canonical.filename();
        close(parent);
      }
    }
    try {
      auto sandboxed = fsout::host::enter_sandbox(sandbox, config.root_path);
      config.root_path = sandboxed.export_path;
      sandbox_note = sandboxed.note;
    } catch (const std::exception& failed) {
      // The default gives way to what can be had, and says so; a chosen mode must be had.
      if (sandbox_chosen) die(failed.what());
      const bool root = geteuid() == 0;
      sandbox_note = std::string(failed.what()) + "; sandbox: " + (root ? "chroot" : "none");
      try {
        if (root)
          config.root_path =
              fsout::host::enter_sandbox(fsout::host::SandboxMode::kChroot, config.root_path)
                  .export_path;
      } catch (const std::exception& also) {
        die(also.what());
      }
    }
    if (config.root_path != export_label) config.unlink_sockets = false;
  }
  config.session.export_label = export_label;
  if (config.root_path == export_label) config.export_parent_key.clear();
  // Modes arrive with the guest's umask already applied (by the guest
  // kernel): applying ours as well would mask them twice.
  umask(0);
  std::string privileges_note;
  try {
    // Before the Server: its threads must start with the reduced set.
    privileges_note = fsout::host::drop_privileges(bind_low_ports);
    if (sandbox != fsout::host::SandboxMode::kNone) {
      fsout::host::restrict_system_calls();
      privileges_note += ", system calls restricted (seccomp)";
    }
  } catch (const std::exception& error) {
    die(error.what());
  }
  try {
    fsout::host::Server server(config);
    for (const auto& [fd, address] : bound) server.adopt(fd, address);
    server.start();
    std::fprintf(stderr, "fsoutd: version %s%s\n", FSOUT_VERSION, FSOUT_BUILD_NOTE);
    std::fprintf(stderr, "fsoutd: serving %s on", export_label.c_str());
    for (const auto& text : listen) std::fprintf(stderr, " %s", text.c_str());
    std::fprintf(stderr, "%s\n", config.session.read_only ? " (read-only)" : "");
    std::fputs(budget_note.c_str(), stderr);
    std::fprintf(stderr, "fsoutd: %s\n", privileges_note.c_str());
    if (!sandbox_note.empty()) std::fprintf(stderr, "fsoutd: %s\n", sandbox_note.c_str());
    if (parked) std::fprintf(stderr, "fsoutd: session state in %s\n", state_dir.c_str());
    for (const auto& line : restore_notes) std::fprintf(stderr, "fsoutd: %s\n", line.c_str());
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    // Graceful: what is being performed is finished and answered, the sessions' state stays
    // for the next fsoutd, and guests wait for it (they resume; nothing fails).
    std::fprintf(stderr, "fsoutd: stopping (%s); sessions are kept for the next fsoutd\n",
                 strsignal(signal_number));
    server.drain(std::chrono::seconds(5));
  } catch (const std::exception& error) {
    die(error.what());
  }
  return 0;
}
