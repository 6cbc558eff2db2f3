// fsout-mount: mounts an fsout export with FUSE.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "guest/fuse_guest.h"
#include "guest/os.h"
#include "transport/address.h"
#include "version.h"

namespace {

const char kUsage[] =
    "usage: fsout-mount [-f] [-o OPTIONS] ADDR MOUNTPOINT\n"
    "\n"
    "Mounts the directory an fsoutd serves at ADDR (unix:PATH, tcp:HOST:PORT,\n"
    "vsock:CID:PORT, serial:DEVICE) on MOUNTPOINT.\n"
    "\n"
    "  -f                   stay in the foreground\n"
    "  -o cache=MODE        coherent (the default: 1 day, pages kept, the host says what\n"
    "                       changed; auto when the host cannot), auto (1 s), always (1 h,\n"
    "                       pages kept, nobody else changes the export), none\n"
    "  -o entry_timeout=S   seconds a name lookup is cached (overrides the cache mode)\n"
    "  -o attr_timeout=S    seconds attributes are cached (overrides the cache mode)\n"
    "  -o readahead=BYTES   how far the kernel reads ahead (default 8 MiB; needs root)\n"
    "  -o export=NAME       the export to ask for (when fsoutd has --export-name)\n"
    "  -o wait=S            at start, keep trying to connect for up to S seconds (a mount\n"
    "                       at boot, before the host daemon or the virtio port is there;\n"
    "                       default 0: fail at once)\n"
    "  -o reconnect=S       when the host goes away (fsoutd restarted, upgraded, crashed),\n"
    "                       programs wait while fsout-mount connects again and resumes\n"
    "                       the session; after S seconds (default 180) their requests\n"
    "                       fail with EIO until the host is back. The mount stays either\n"
    "                       way. 0: unmount when the host goes away\n"
    "  -o allow_other,ro,...   the usual FUSE mount options (default_permissions is\n"
    "                       always on: the guest kernel checks modes and owners)\n"
    "  -h, --help           this text\n"
    "  -V, --version        the version\n"
    "\n"
    "Unmount with: fusermount3 -u MOUNTPOINT (or umount MOUNTPOINT as root).\n"
    "As mount.fsout it is mount(8)'s helper for file systems of type fsout (fstab):\n"
    "  mount.fsout ADDR MOUNTPOINT [-sfnv] [-o OPTIONS]\n"
    "Options that belong to mount(8) and systemd (_netdev, nofail, auto, noauto, user,\n"
    "users, nouser, defaults, rw, comment=..., x-systemd.*, x-*) are ignored.\n";

struct Config {
  char* address = nullptr;
  char* mountpoint = nullptr;
  char* cache = nullptr;
  char* export_name = nullptr;
  double entry_timeout = -1;
  double attr_timeout = -1;
  unsigned readahead = 0;
  unsigned protocol_version = 0;  // for tests: offer only this version
  int reconnect = 180;
  int wait = 0;
  int show_help = 0;
  int show_version = 0;
  int positional = 0;
};

#define CONFIG_OPTION(template_text, field) \
  { template_text, offsetof(Config, field), 1 }
const fuse_opt kOptions[] = {CONFIG_OPTION("cache=%s", cache),
                             CONFIG_OPTION("export=%s", export_name),
                             CONFIG_OPTION("entry_timeout=%lf", entry_timeout),
                             CONFIG_OPTION("attr_timeout=%lf", attr_timeout),
                             CONFIG_OPTION("readahead=%u", readahead),
                             CONFIG_OPTION("reconnect=%d", reconnect),
                             CONFIG_OPTION("wait=%d", wait),
                             CONFIG_OPTION("protocol_version=%u", protocol_version),
                             CONFIG_OPTION("-h", show_help),
                             CONFIG_OPTION("--help", show_help),
                             CONFIG_OPTION("-V", show_version),
                             CONFIG_OPTION("--version", show_version),
                             FUSE_OPT_END};

int take_positional(void* data, const char* arg, int key, fuse_args*) {
  auto& config = *static_cast<Config*>(data);
  if (key != FUSE_OPT_KEY_NONOPT) return 1;
  switch (config.positional++) {
    case 0:
      config.address = strdup(arg);
      return 0;  // consumed: the address is ours
    case 1:
      config.mountpoint = strdup(arg);
      return 1;  // also left for fuse_parse_cmdline
    default:
      return 0;  // reported below, in our words
  }
}

// libfuse reports problems through its log; during start-up we keep its last
// message so that a failure is one line of ours, not two.
bool started = false;
std::string last_fuse_message;
void fuse_log_line(enum fuse_log_level level, const char* format, va_list ap) {
  char text[1024];
  vsnprintf(text, sizeof(text), format, ap);
  std::string line = text;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (line.rfind("fuse: ", 0) == 0) line.erase(0, 6);
  if (!started) {
    if (level <= FUSE_LOG_ERR) last_fuse_message = line;
    return;
  }
  std::fprintf(stderr, "fsout-mount: %s\n", line.c_str());
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "fsout-mount: %s\n", message.c_str());
  // _exit: a failed start has nothing to clean up, and a leak checker's
  // report at exit would bury the one line that says what went wrong.
  std::fflush(stdout);
  std::fflush(stderr);
  _exit(1);
}

// How long the mount may take to appear after fuse_session_mount() (see
// os::mount_completes_later).
constexpr int kMountWaitMs = 10'000;

pthread_t main_thread;
std::atomic<bool> unmounting = false;

// Options that mount(8), fstab and systemd use for themselves; FUSE would refuse them.
bool for_mount_itself(const std::string& option) {
  static const char* const kIgnored[] = {"_netdev", "nofail",  "auto",     "noauto", "user",
                                         "users",   "nouser",  "defaults", "rw",     "owner",
                                         "group",   "noowner", "late",     "failok"};
  for (const char* ignored : kIgnored)
    if (option == ignored) return true;
  return option.rfind("x-", 0) == 0 || option.rfind("comment=", 0) == 0 ||
         option.rfind("mountprog=", 0) == 0;
}

// The command line as fsout-mount reads it: -o lists without mount(8)'s own options; run as
// mount.fsout, mount(8)'s calling convention (SPEC DIR first, then -s -f -n -v -o -t -N)
// becomes fsout-mount's. Sets `fake` for mount -f (do everything but mount).
std::vector<std::string> normalize_arguments(int argc, char** argv, bool& fake) {
  std::string program = argv[0];
  program = program.substr(program.find_last_of('/') + 1);
  const bool helper = program.rfind("mount.", 0) == 0;
  std::vector<std::string> out = {argv[0]};
  std::vector<std::string> options, positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string list;
    if (arg == "-o" && i + 1 < argc) {
      list = argv[++i];
    } else if (arg.rfind("-o", 0) == 0 && arg.size() > 2) {
      list = arg.substr(2);
    } else if (helper && (arg == "-t" || arg == "-N") && i + 1 < argc) {
      ++i;  // the type (fsout) and the mount namespace: nothing for us
      continue;
    } else if (helper && arg.size() > 1 && arg[0] == '-' && arg[1] != '-' &&
               arg.find_first_not_of("sfnv", 1) == std::string::npos) {
      if (arg.find('f') != std::string::npos) fake = true;  // -s sloppy, -n no mtab, -v verbose
      continue;
    } else {
      if (arg.empty() || arg[0] != '-')
        positional.push_back(arg);
      else
        out.push_back(arg);
      continue;
    }
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      if (comma == std::string::npos) comma = list.size();
      std::string option = list.substr(start, comma - start);
      if (!option.empty() && !for_mount_itself(option)) options.push_back(option);
      start = comma + 1;
    }
  }
  if (!options.empty()) {
    std::string joined;
    for (const auto& option : options) joined += (joined.empty() ? "" : ",") + option;
    out.push_back("-o");
    out.push_back(joined);
  }
  out.insert(out.end(), positional.begin(), positional.end());
  return out;
}

void free_config(Config& config) {
  free(config.address);
  free(config.mountpoint);
  free(config.cache);
  free(config.export_name);
}

}  // namespace

int main(int argc, char** argv) {
  fuse_set_log_func(fuse_log_line);
  bool fake = false;
  std::vector<std::string> normalized = normalize_arguments(argc, argv, fake);
  std::vector<char*> normalized_argv;
  for (auto& arg : normalized) normalized_argv.push_back(arg.data());
  normalized_argv.push_back(nullptr);
  fuse_args args = FUSE_ARGS_INIT(int(normalized.size()), normalized_argv.data());
  Config config;
  if (fuse_opt_parse(&args, &config, kOptions, take_positional) != 0)
    die(last_fuse_message.empty() ? "bad arguments (see --help)" : last_fuse_message);
  if (config.show_help || config.show_version) {
    if (config.show_help)
      std::fputs(kUsage, stdout);
    else
      std::printf("fsout-mount %s (protocol %u, libfuse %s)\n", FSOUT_VERSION, 1u,
                  fuse_pkgversion());
    fuse_opt_free_args(&args);
    free_config(config);
    return 0;
  }
  if (!config.address) die("missing ADDR and MOUNTPOINT (see --help)");
  if (!config.mountpoint) die("missing MOUNTPOINT (see --help)");
  if (config.positional > 2) die("too many arguments (see --help)");
  struct stat st;
  if (stat(config.mountpoint, &st) != 0)
    die(std::string("mountpoint ") + config.mountpoint + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    die(std::string("mountpoint ") + config.mountpoint + ": not a directory");
  fuse_cmdline_opts cmdline{};
  if (fuse_parse_cmdline(&args, &cmdline) != 0)
    die(last_fuse_message.empty() ? "bad arguments (see --help)" : last_fuse_message);

  fsout::guest::Guest guest;
  if (config.cache) {
    std::string mode = config.cache;
    if (mode == "none")
      guest.options.cache = fsout::guest::CacheMode::kNone;
    else if (mode == "auto")
      guest.options.cache = fsout::guest::CacheMode::kAuto;
    else if (mode == "always")
      guest.options.cache = fsout::guest::CacheMode::kAlways;
    else if (mode == "coherent")
      guest.options.cache = fsout::guest::CacheMode::kCoherent;
    else
      die("bad cache mode '" + mode + "' (use none, auto, always or coherent)");
  }
  guest.options.entry_timeout = config.entry_timeout;
  guest.options.attr_timeout = config.attr_timeout;
  // Several READs in flight hide the round trip; measured over virtio-serial
  // (bench/vm.sh): 8 MiB reads 1.1-1.2x faster than the kernel's 128 KiB.
  if (config.readahead == 0) config.readahead = 8u << 20;
  guest.options.readahead = config.readahead;
  fsout::guest::configure_cache(guest);

  signal(SIGPIPE, SIG_IGN);
  fsout::client::Options options;
  if (config.export_name) options.export_name = config.export_name;
  if (config.protocol_version) options.min_version = options.max_version = config.protocol_version;
  if (config.reconnect < 0) die("bad value for reconnect (seconds, 0 for none)");
  if (config.wait < 0) die("bad value for wait (seconds)");
  if (fake) return 0;  // mount -f: the arguments are good; mount nothing
  options.reconnect_seconds = unsigned(config.reconnect);
  // Notifications in every cache mode: besides changes, they carry the
  // host's requests to forget names when it runs short of nodes or file
  // descriptors (without them, a kernel that keeps every inode it has seen
  // exhausts the daemon's descriptors: EMFILE in the middle of an untar).
  options.capabilities |= fsout::protocol::kCapNotify;
  if (guest.options.cache == fsout::guest::CacheMode::kCoherent)
    options.capabilities |= fsout::protocol::kCapDirAttrs;
  std::unique_ptr<fsout::client::Connection> connection;
  fsout::transport::Address address;
  try {
    address = fsout::transport::parse_address(config.address);
  } catch (const std::exception& error) {
    die(error.what());
  }
  if (address.kind == fsout::transport::Address::Kind::kSerial)
    options.reply_budget = fsout::guest::os::serial_reply_budget();
  // Connect first, so that a bad address is reported before we go into the background;
  // replies are read once start() runs after the fork. With wait=S (at boot) a host or a
  // port that is not there yet is tried again until S seconds have passed.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(config.wait);
  bool said_waiting = false;
  for (;;) {
    try {
      int fd = fsout::transport::connect_to(address);
      connection = std::make_unique<fsout::client::Connection>(
          fd, address.kind == fsout::transport::Address::Kind::kSerial, options, config.address);
      break;
    } catch (const std::exception& error) {
      if (std::chrono::steady_clock::now() >= give_up)
        die(error.what() + std::string(said_waiting ? " (gave up waiting)" : ""));
      if (!said_waiting)
        std::fprintf(stderr, "fsout-mount: %s; trying again for up to %d s\n", error.what(),
                     config.wait);
      said_waiting = true;
      usleep(250 * 1000);
    }
  }
  guest.connection = connection.get();
  if (guest.options.cache == fsout::guest::CacheMode::kCoherent &&
      !(connection->hello().capabilities & fsout::protocol::kCapNotify)) {
    // The default quietly becomes auto; an explicit request is answered.
    if (config.cache)
      std::fprintf(stderr,
                   "fsout-mount: the host sends no change notifications (fsoutd not root?); "
                   "cache=auto instead of cache=coherent\n");
    guest.options.cache = fsout::guest::CacheMode::kAuto;
    fsout::guest::configure_cache(guest);
  }
  if (connection->read_only()) fuse_opt_add_arg(&args, "-oro");
  const unsigned max_io = guest.max_io();
  if (max_io < fsout::protocol::kMaxIoSize)
    fuse_opt_add_arg(&args, ("-omax_read=" + std::to_string(max_io)).c_str());
  // SECURITY: the guest kernel checks permissions against the modes and
  // owners it sees, as on a local disk. Without it every guest user could
  // do whatever the host daemon (usually root) may.
  fuse_opt_add_arg(&args, "-odefault_permissions");
  fuse_opt_add_arg(&args, "-osubtype=fsout");
  fuse_opt_add_arg(&args, (std::string("-ofsname=") + config.address).c_str());

  const auto& ops = fsout::guest::fuse_operations();
  fuse_session* session = fuse_session_new(&args, &ops, sizeof(ops), &guest);
  if (!session)
    die(last_fuse_message.empty() ? "cannot start the FUSE session" : last_fuse_message);
  if (fuse_set_signal_handlers(session) != 0) die("cannot install signal handlers");
  char resolved[PATH_MAX];
  if (!realpath(cmdline.mountpoint, resolved))
    die(std::string("mountpoint ") + cmdline.mountpoint + ": " + std::strerror(errno));
  const int mounts_before = fsout::guest::os::fuse_mounts_on(resolved);
  if (fuse_session_mount(session, cmdline.mountpoint) != 0)
    die(std::string("cannot mount on ") + cmdline.mountpoint +
        (last_fuse_message.empty() ? "" : ": " + last_fuse_message));
  // We return (and a boot script goes on) only once the mount is there: a file written
  // under the mount point before then would land in the directory beneath it.
  if (fsout::guest::os::mount_completes_later()) {
    int waited_ms = 0;
    while (fsout::guest::os::fuse_mounts_on(resolved) <= mounts_before) {
      if (waited_ms >= kMountWaitMs)
        die(std::string("cannot mount on ") + cmdline.mountpoint +
            ": the mount did not appear within " + std::to_string(kMountWaitMs / 1000) +
            " s (is fusefs loaded? kldload fusefs)");
      usleep(10 * 1000);
      waited_ms += 10;
    }
  }
  fsout::guest::os::set_readahead(config.mountpoint, config.readahead);
  started = true;
  fuse_daemonize(cmdline.foreground);

  // Without reconnecting (-o reconnect=0), when the host goes away, end the FUSE loop: the
  // mount is taken down and programs get ENOTCONN instead of hanging. With it the mount
  // stays whatever happens: a write by path must never land in the directory beneath.
  main_thread = pthread_self();
  if (!connection->reconnects())
    connection->on_disconnect([] {
      if (unmounting) return;  // we closed it ourselves
      std::fprintf(stderr, "fsout-mount: connection to the host lost; unmounting\n");
      pthread_kill(main_thread, SIGTERM);
    });
  std::unique_ptr<fsout::guest::Invalidator> invalidator;
  if (connection->hello().capabilities & fsout::protocol::kCapNotify) {
    invalidator = std::make_unique<fsout::guest::Invalidator>(session, guest);
    connection->on_notify([&invalidator](uint16_t opcode, std::span<const uint8_t> payload) {
      invalidator->push(opcode, payload);
    });
  }
  if (guest.options.cache == fsout::guest::CacheMode::kCoherent) {
    guest.use_dir_attrs = (connection->hello().capabilities & fsout::protocol::kCapDirAttrs) != 0;
    guest.use_open_read = (connection->hello().capabilities & fsout::protocol::kCapOpenRead) != 0;
    guest.use_writes_behind =
        (connection->hello().capabilities & fsout::protocol::kCapOrderedWrites) != 0;
    guest.invalidate_node = [&invalidator](uint64_t node) { invalidator->invalidate_node(node); };
  }
  connection->start();

  // One thread reads the kernel's requests: handlers only send and return
  // (replies come from the connection's reader thread), and handling
  // requests in the kernel's order is what the lock ordering relies on.
  int rc = fuse_session_loop(session);
  unmounting = true;
  fuse_session_unmount(session);
  fuse_remove_signal_handlers(session);
  connection->close();
  connection.reset();
  invalidator.reset();
  fuse_session_destroy(session);
  free(cmdline.mountpoint);
  fuse_opt_free_args(&args);
  free_config(config);
  return rc == 0 ? 0 : 1;
}
