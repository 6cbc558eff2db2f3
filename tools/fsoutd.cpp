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

#include "host/activation.h"
#include "host/admin.h"
#include "host/config.h"
#include "host/identity.h"
#include "host/log.h"
#include "host/node_table.h"
#include "host/privileges.h"
#include "host/sandbox.h"
#include "host/server.h"
#include "host/supervisor.h"
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
    "       fsoutd --config FILE [--export NAME] [--admin unix:PATH] [--log-level LEVEL]\n"
    "       fsoutd --config FILE --check-config\n"
    "\n"
    "Serves DIR to fsout guests (fsout-mount, fsout); or every export that FILE describes\n"
    "(fsoutd.conf(5)), one process each, SIGHUP reading FILE again.\n"
    "\n"
    "  --config FILE        serve the exports of FILE and of the *.conf files in the\n"
    "                       exports.d directory beside it\n"
    "  --export NAME        with --config: serve only that export, in this process\n"
    "  --check-config       with --config: check the files, print each export's command\n"
    "                       line and exit\n"
    "  --name NAME          the export's name in the log and in fsout admin\n"
    "  --admin unix:PATH    answer fsout admin on this socket (mode 0600; root and fsoutd's\n"
    "                       own user only)\n"
    "  --admin-fd N         the admin channel on fd N (how fsoutd --config talks to the\n"
    "                       process of each export)\n"
    "  --log-level LEVEL    error, warning, info (default) or debug\n"
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
    note = "per-session limits: " + std::to_string(std::min(limits.max_nodes, nodes)) + " nodes, " +
           std::to_string(std::min(limits.max_handles, handles)) + " open files (the fd limit is " +
           std::to_string(fds) + ")";
  limits.max_nodes = std::min(limits.max_nodes, nodes);
  limits.max_handles = std::min(limits.max_handles, handles);
  return note;
}

// Where fsoutd keeps what lives as long as the host is up (state directories).
std::string runtime_base() {
  if (geteuid() == 0) return "/run/fsout";
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  return runtime && *runtime ? std::string(runtime) + "/fsout"
                             : "/tmp/fsout-" + std::to_string(geteuid());
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
  return runtime_base() + "/" + name;
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

// Everything the command line says.
struct Options {
  fsout::host::ServerConfig config;
  std::shared_ptr<fsout::host::IdMap> ids = std::make_shared<fsout::host::IdMap>();
  std::vector<std::string> listen;
  fsout::host::SandboxMode sandbox = fsout::host::SandboxMode::kNamespace;
  bool sandbox_chosen = false;
  std::string state_dir;
  unsigned resume_window = 300;
  std::string config_file, only_export, admin, name, log_level;
  bool check_config = false;
  int admin_fd = -1;
  std::string dir;
  bool help = false, version = false;
  bool other_than_config = false;  // an option that belongs in the file when --config is given
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T number(const char* option, const char* text, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(text, text + std::strlen(text), value);
  if (ec != std::errc() || *end != '\0' || value < min || value > max)
    throw UsageError(std::string("bad value '") + text + "' for " + option + " (see --help)");
  return value;
}

// Parses a command line (the program's own, or one made from a configuration file).
// Throws UsageError with a one-line message.
Options parse_options(const std::vector<std::string>& args) {
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
    kResumeWindow,
    kConfig,
    kExport,
    kCheckConfig,
    kName,
    kAdmin,
    kAdminFd,
    kLogLevel
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
                                   {"config", required_argument, nullptr, kConfig},
                                   {"export", required_argument, nullptr, kExport},
                                   {"check-config", no_argument, nullptr, kCheckConfig},
                                   {"name", required_argument, nullptr, kName},
                                   {"admin", required_argument, nullptr, kAdmin},
                                   {"admin-fd", required_argument, nullptr, kAdminFd},
                                   {"log-level", required_argument, nullptr, kLogLevel},
                                   {"help", no_argument, nullptr, 'h'},
                                   {"version", no_argument, nullptr, 'V'},
                                   {nullptr, 0, nullptr, 0}};
  Options o;
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& arg : copy) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const int argc = int(copy.size());
  optind = 0;  // a full restart of getopt: this may run more than once (reloads)
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv.data(), "+hV", options, nullptr)) != -1) {
    const char* arg = optarg;
    switch (c) {
      case kListen:
        o.listen.push_back(arg);
        break;
      case kReadOnly:
        o.config.session.read_only = true;
        break;
      case kSerialStreams:
        o.config.serial_streams = true;
        break;
      case kThreads:
        o.config.session.workers = number("--threads", arg, 1u, 256u);
        break;
      case kMaxMessage:
        o.config.session.max_message = number("--max-message", arg, 65536u, 64u << 20);
        break;
      case kMaxHandles:
        o.config.session.limits.max_handles = number<size_t>("--max-handles", arg, 1, 1 << 24);
        break;
      case kMaxNodes:
        o.config.session.limits.max_nodes = number<size_t>("--max-nodes", arg, 16, 1 << 26);
        break;
      case kMaxSessions:
        o.config.max_sessions = number<size_t>("--max-sessions", arg, 1, 65536);
        break;
      case kExportName:
        o.config.session.export_name = arg;
        break;
      case kSandbox:
        if (auto mode = fsout::host::parse_sandbox_mode(arg))
          o.sandbox = *mode;
        else
          throw UsageError(std::string("bad value '") + arg +
                           "' for --sandbox (namespace, chroot or none)");
        o.sandbox_chosen = true;
        break;
      case kStateDir:
        o.state_dir = arg;
        if (o.state_dir.empty()) throw UsageError("empty --state-dir (use none to keep no state)");
        break;
      case kResumeWindow:
        o.resume_window = number("--resume-window", arg, 1u, 7u * 24 * 3600);
        break;
      case kUidMap:
      case kGidMap:
      case kSquash:
        try {
          if (c == kSquash) {
            auto [uid, gid] = fsout::host::IdMap::parse_squash(arg);
            o.ids->set_squash(uid, gid);
          } else if (c == kUidMap) {
            o.ids->add_uid_range(fsout::host::IdMap::parse_range(arg));
          } else {
            o.ids->add_gid_range(fsout::host::IdMap::parse_range(arg));
          }
        } catch (const std::invalid_argument& error) {
          const char* option = c == kSquash ? "--squash" : c == kUidMap ? "--uid-map" : "--gid-map";
          throw UsageError(std::string("bad value for ") + option + ": " + error.what());
        }
        break;
      case kConfig:
        o.config_file = arg;
        break;
      case kExport:
        o.only_export = arg;
        break;
      case kCheckConfig:
        o.check_config = true;
        break;
      case kName:
        o.name = arg;
        break;
      case kAdmin:
        if (std::string(arg).rfind("unix:", 0) != 0 || std::strlen(arg) < 6)
          throw UsageError(std::string("bad value '") + arg +
                           "' for --admin (unix:PATH: the admin socket is never a network one)");
        o.admin = arg;
        break;
      case kAdminFd:
        o.admin_fd = number("--admin-fd", arg, 3, 1 << 20);
        break;
      case kLogLevel:
        if (!fsout::host::log::parse_level(arg))
          throw UsageError(std::string("bad value '") + arg +
                           "' for --log-level (error, warning, info or debug)");
        o.log_level = arg;
        break;
      case 'h':
        o.help = true;
        return o;
      case 'V':
        o.version = true;
        return o;
      default:
        throw UsageError(std::string("unknown or incomplete option '") + argv[optind - 1] +
                         "' (see --help)");
    }
    if (c != kConfig && c != kExport && c != kCheckConfig && c != kAdmin && c != kLogLevel)
      o.other_than_config = true;
  }
  if (!o.config_file.empty()) {
    if (o.other_than_config || optind != argc)
      throw UsageError(
          "with --config, the exports' settings are in the file (fsoutd.conf(5)); "
          "only --export, --check-config, --admin and --log-level go with it");
    return o;
  }
  if (!o.only_export.empty() || o.check_config)
    throw UsageError(std::string(o.check_config ? "--check-config" : "--export") +
                     " goes with --config FILE");
  if (optind != argc - 1)
    throw UsageError(optind == argc ? "missing DIR (see --help)"
                                    : "too many arguments (see --help)");
  o.dir = argv[optind];
  if (o.listen.empty()) throw UsageError("missing --listen ADDR (see --help)");
  if (o.ids->squash() && o.ids->has_ranges())
    throw UsageError("--squash cannot be combined with --uid-map or --gid-map");
  if (!o.ids->identity() && geteuid() != 0)
    throw UsageError("--uid-map, --gid-map and --squash need fsoutd to run as root");
  for (const auto& text : o.listen) {
    try {
      fsout::transport::parse_address(text);
    } catch (const std::exception& error) {
      throw UsageError(error.what());
    }
  }
  struct stat st;
  if (stat(o.dir.c_str(), &st) != 0)
    throw UsageError("cannot serve '" + o.dir + "': " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) throw UsageError("cannot serve '" + o.dir + "': not a directory");
  return o;
}

// Serves one export (the whole life of a plain `fsoutd ... DIR`).
int serve_export(Options o) {
  fsout::host::ServerConfig& config = o.config;
  auto& ids = o.ids;
  const std::vector<std::string>& listen = o.listen;
  std::string& state_dir = o.state_dir;
  const auto sandbox = o.sandbox;
  config.session.ids = ids;
  config.root_path = o.dir;
  config.name = o.name;
  config.listen = listen;

  // Signals are taken by sigwait below; every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) sigaddset(&stop_signals, s);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  fsout::host::install_session_signals();
  raise_fd_limit();
  const std::string budget_note = fit_budgets_to_fd_limit(config.session.limits);
  // Every host path is used before the sandbox: listeners are bound (and serial devices
  // opened) here, and the export's own name is noted for the change watcher. A socket
  // systemd listens on for us (socket activation) is taken instead of binding one.
  std::vector<int> inherited = fsout::host::inherited_sockets();
  bool bind_low_ports = false;
  std::vector<std::pair<int, fsout::transport::Address>> bound;
  std::vector<std::string> activated;
  for (const auto& text : listen) {
    try {
      auto address = fsout::transport::parse_address(text);
      if (auto fd = fsout::host::take_inherited(inherited, address)) {
        fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) | O_NONBLOCK);
        bound.emplace_back(*fd, address);
        activated.push_back(text);
        continue;
      }
      if (address.kind == fsout::transport::Address::Kind::kTcp && address.port < 1024)
        bind_low_ports = true;
      bound.emplace_back(fsout::host::Server::bind(address), address);
    } catch (const std::exception& error) {
      die(error.what());
    }
  }
  for (int fd : inherited) {
    fsout::host::log::warning("fd " + std::to_string(fd) +
                              " from socket activation matches no --listen address; closed");
    close(fd);
  }
  int admin_fd = o.admin_fd;
  if (admin_fd < 0 && !o.admin.empty()) {
    try {
      admin_fd = fsout::host::AdminChannel::bind(o.admin);
    } catch (const std::exception& error) {
      die(error.what());
    }
  }
  if (admin_fd >= 0) fcntl(admin_fd, F_SETFD, FD_CLOEXEC);
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
                                                           std::chrono::seconds(o.resume_window));
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
      if (o.sandbox_chosen) die(failed.what());
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
  namespace log = fsout::host::log;
  try {
    fsout::host::Server server(config);
    for (const auto& [fd, address] : bound) server.adopt(fd, address);
    server.start();
    const auto started = std::chrono::steady_clock::now();
    std::unique_ptr<fsout::host::AdminChannel> admin;
    if (admin_fd >= 0)
      admin = std::make_unique<fsout::host::AdminChannel>(admin_fd, [&](const std::string&) {
        nlohmann::json out = {{"fsoutd",
                               {{"version", std::string(FSOUT_VERSION) + FSOUT_BUILD_NOTE},
                                {"pid", getpid()},
                                {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(
                                                 std::chrono::steady_clock::now() - started)
                                                 .count()}}},
                              {"exports", nlohmann::json::array({server.describe()})}};
        return out.dump();
      });
    log::info(std::string("version ") + FSOUT_VERSION + FSOUT_BUILD_NOTE);
    std::string line = "serving " + export_label + " on";
    for (const auto& text : listen) line += " " + text;
    log::info(line + (config.session.read_only ? " (read-only)" : ""));
    if (!activated.empty()) {
      std::string taken = "socket activation:";
      for (const auto& text : activated) taken += " " + text;
      log::info(taken);
    }
    if (!budget_note.empty()) log::info(budget_note);
    log::info(privileges_note);
    if (!sandbox_note.empty()) log::info(sandbox_note);
    if (parked) log::info("session state in " + state_dir);
    for (const auto& note : restore_notes) log::info(note);
    if (!o.admin.empty()) log::info("admin socket " + o.admin.substr(5));
    for (;;) {
      int signal_number = 0;
      sigwait(&stop_signals, &signal_number);
      if (signal_number == SIGHUP) {
        log::info(
            "SIGHUP: nothing to read again (this process serves one export; restart it "
            "to apply new settings: its guests resume)");
        continue;
      }
      if (signal_number == SIGUSR1) {
        // The export is withdrawn (fsoutd --config, after SIGHUP): its sessions end for good,
        // their state and orphaned files go.
        log::info("withdrawn: ending every session");
        admin.reset();
        server.stop();
        break;
      }
      // Graceful: what is being performed is finished and answered, the sessions' state
      // stays for the next fsoutd, and guests wait for it (they resume; nothing fails).
      log::info(std::string("stopping (") + strsignal(signal_number) +
                "); sessions are kept for the next fsoutd");
      admin.reset();
      server.drain(std::chrono::seconds(5));
      break;
    }
  } catch (const std::exception& error) {
    die(error.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  try {
    o = parse_options(std::vector<std::string>(argv, argv + argc));
  } catch (const UsageError& error) {
    die(error.what());
  }
  if (o.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (o.version) {
    std::printf("fsoutd %s%s (protocol %u)\n", FSOUT_VERSION, FSOUT_BUILD_NOTE, 1u);
    return 0;
  }
  namespace host = fsout::host;
  if (o.config_file.empty()) {
    const auto level = host::log::parse_level(o.log_level.empty() ? "info" : o.log_level);
    host::log::init(o.name.empty() ? "fsoutd" : "fsoutd[" + o.name + "]", *level);
    return serve_export(std::move(o));
  }
  const std::string state_base = runtime_base() + "/state";
  host::ConfigResult loaded = host::load_configuration(o.config_file, state_base);
  if (!loaded.config) die(loaded.error);
  host::Configuration& config = *loaded.config;
  if (!o.log_level.empty()) host::override_log_level(config, o.log_level);
  // Each export's command line goes through the parser that the process serving it will use.
  auto check = [](const host::ExportSpec& spec) -> std::string {
    std::vector<std::string> args = {"fsoutd"};
    args.insert(args.end(), spec.args.begin(), spec.args.end());
    try {
      parse_options(args);
    } catch (const UsageError& error) {
      return error.what();
    }
    return "";
  };
  for (const auto& spec : config.exports)
    if (std::string why = check(spec); !why.empty())
      die(spec.where + ": export " + spec.name + ": " + why);
  if (o.check_config) {
    for (const auto& file : config.files) std::printf("# %s\n", file.c_str());
    for (const auto& spec : config.exports) {
      std::printf("%s: fsoutd", spec.name.c_str());
      for (const auto& arg : spec.args) std::printf(" %s", arg.c_str());
      std::printf("\n");
    }
    if (config.exports.empty()) std::printf("(no exports)\n");
    return 0;
  }
  if (!o.only_export.empty()) {
    const host::ExportSpec* spec = config.find(o.only_export);
    if (!spec) die("no export named " + o.only_export + " in " + o.config_file);
    std::vector<std::string> args = {"fsoutd"};
    args.insert(args.end(), spec->args.begin(), spec->args.end());
    Options one;
    try {
      one = parse_options(args);  // checked above; the directory may have gone since
    } catch (const UsageError& error) {
      die(spec->where + ": export " + spec->name + ": " + error.what());
    }
    one.admin = o.admin;
    host::log::init("fsoutd[" + spec->name + "]", *host::log::parse_level(config.log_level));
    return serve_export(std::move(one));
  }
  host::log::init("fsoutd", *host::log::parse_level(config.log_level));
  host::SupervisorOptions options{o.config_file, state_base, o.admin, o.log_level, check};
  return host::run_supervisor(options, std::move(config));
}
