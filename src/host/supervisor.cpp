#include "host/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "host/activation.h"
#include "host/admin.h"
#include "host/log.h"
#include "transport/address.h"
#include "version.h"

extern char** environ;

namespace fsout::host {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kAdminTimeoutMs = 2000;
constexpr auto kStopGrace = std::chrono::seconds(15);

enum class Phase {
  kRunning,
  kRestarting,   // SIGTERM sent; a new process starts when it has gone (changed export)
  kWithdrawing,  // SIGUSR1 sent; the export is gone from the configuration
  kWaiting,      // exited on its own; started again at restart_at
  kStopping,     // the supervisor is stopping
};

struct Child {
  ExportSpec spec;
  ExportSpec next;  // kRestarting: the configuration it restarts with
  pid_t pid = -1;
  int admin_fd = -1;
  Phase phase = Phase::kRunning;
  Clock::time_point started, restart_at;
  unsigned failures = 0;
  std::unique_ptr<std::mutex> admin_mutex = std::make_unique<std::mutex>();
};

void set_log_level_args(ExportSpec& spec, const std::string& level) {
  for (size_t i = 0; i + 1 < spec.args.size(); ++i)
    if (spec.args[i] == "--log-level") spec.args[i + 1] = level;
}

class Supervisor {
 public:
  Supervisor(const SupervisorOptions& options, Configuration config)
      : options_(options), config_(std::move(config)) {
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self_ = n > 0 ? std::string(self, size_t(n)) : "/usr/sbin/fsoutd";
    inherited_ = inherited_sockets();
  }

  int run() {
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::unique_ptr<AdminChannel> admin;
    const std::string admin_address = options_.admin.empty() ? config_.admin : options_.admin;
    if (!admin_address.empty()) {
      try {
        if (admin_address.rfind("unix:", 0) == 0) {
          std::error_code ignored;
          std::filesystem::create_directories(
              std::filesystem::path(admin_address.substr(5)).parent_path(), ignored);
        }
        admin = std::make_unique<AdminChannel>(AdminChannel::bind(admin_address),
                                               [this](const std::string&) { return document(); });
      } catch (const std::exception& error) {
        log::error(error.what());
        return 1;
      }
    }
    log::info(std::string("version ") + FSOUT_VERSION + ": serving the exports of " +
              options_.config_path + " (" + std::to_string(config_.exports.size()) +
              ", one process each)" + (admin ? "; admin socket " + admin_address.substr(5) : ""));
    for (const auto& spec : config_.exports) start_new(spec);
    for (;;) {
      timespec tick{1, 0};
      const int got = sigtimedwait(&signals, nullptr, &tick);
      if (got == SIGCHLD || got < 0) reap();
      if (got == SIGHUP) reload();
      if (got == SIGTERM || got == SIGINT) {
        log::info(std::string("stopping (") + strsignal(got) +
                  "): every export stops gracefully, its sessions kept for the next fsoutd");
        stop_all();
        return 0;
      }
      restart_due();
    }
  }

 private:
  // The exports' processes, and the document of the admin channel.
  std::string document() {
    nlohmann::json exports = nlohmann::json::array();
    std::vector<std::pair<std::string, int>> ask;  // name, admin fd
    std::vector<std::pair<std::string, std::string>> idle;
    {
      std::lock_guard lock(mutex_);
      for (auto& [name, child] : children_) {
        if (child.pid > 0 && child.admin_fd >= 0)
          ask.emplace_back(name, child.admin_fd);
        else
          idle.emplace_back(
              name, child.phase == Phase::kWaiting ? "restarting after an exit" : "not running");
      }
    }
    for (const auto& [name, fd] : ask) {
      std::mutex* one;
      {
        std::lock_guard lock(mutex_);
        auto it = children_.find(name);
        if (it == children_.end() || it->second.admin_fd != fd) continue;
        one = it->second.admin_mutex.get();
      }
      std::lock_guard lock(*one);
      // An answer that came after an earlier exchange gave up waiting is not this one's.
      char stale[4096];
      while (recv(fd, stale, sizeof(stale), MSG_DONTWAIT) > 0) {
      }
      const std::string answer = admin_exchange(fd, "stats", kAdminTimeoutMs);
      nlohmann::json parsed = nlohmann::json::parse(answer, nullptr, false);
      if (parsed.is_discarded() || !parsed.contains("exports") || parsed["exports"].empty()) {
        exports.push_back({{"name", name}, {"state", "not answering"}});
        continue;
      }
      nlohmann::json entry = parsed["exports"][0];
      entry["state"] = "running";
      entry["pid"] = parsed["fsoutd"].value("pid", 0);
      exports.push_back(std::move(entry));
    }
    for (const auto& [name, state] : idle) exports.push_back({{"name", name}, {"state", state}});
    std::sort(exports.begin(), exports.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
      return a.value("name", "") < b.value("name", "");
    });
    nlohmann::json out = {
        {"fsoutd",
         {{"version", FSOUT_VERSION},
          {"pid", getpid()},
          {"config", options_.config_path},
          {"uptime_s",
           std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count()}}},
        {"exports", std::move(exports)}};
    return out.dump();
  }

  void start_new(const ExportSpec& spec) {
    std::lock_guard lock(mutex_);
    Child& child = children_[spec.name];
    child.spec = spec;
    launch(child);
  }

  // Forks and execs `fsoutd [the export's options] --admin-fd N -- DIR`, with the activated
  // sockets of its addresses as fds 3.. (LISTEN_FDS) and its admin channel after them.
  // Called with mutex_ held.
  void launch(Child& child) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      log::error("export " + child.spec.name + ": cannot start it: " + std::strerror(errno));
      child.phase = Phase::kWaiting;
      child.restart_at = Clock::now() + std::chrono::seconds(5);
      return;
    }
    std::vector<int> passed;
    for (const auto& text : child.spec.listen) {
      try {
        const auto address = transport::parse_address(text);
        for (int fd : inherited_)
          if (socket_is_bound_to(fd, address)) passed.push_back(fd);
      } catch (const std::exception&) {  // checked before; the child says what is wrong
      }
    }
    const int admin_target = 3 + int(passed.size());
    // Everything the child needs is made before fork: after it, in a threaded process, only
    // async-signal-safe calls are allowed.
    std::vector<std::string> args = {self_};
    for (const auto& arg : child.spec.args) {
      if (arg == "--") {
        args.push_back("--admin-fd");
        args.push_back(std::to_string(admin_target));
      }
      args.push_back(arg);
    }
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
      if (std::strncmp(*e, "LISTEN_", 7) != 0) env_strings.emplace_back(*e);
    std::string listen_fds = "LISTEN_FDS=" + std::to_string(passed.size());
    char listen_pid[40] = "LISTEN_PID=";
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    if (!passed.empty()) {
      envp.push_back(listen_fds.data());
      envp.push_back(listen_pid);
    }
    envp.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      // Moved out of the way first, so that no dup2 below overwrites a source.
      std::vector<int> high;
      for (int fd : passed) high.push_back(fcntl(fd, F_DUPFD_CLOEXEC, 1000));
      const int admin_high = fcntl(pair[1], F_DUPFD_CLOEXEC, 1000);
      for (size_t i = 0; i < high.size(); ++i) dup2(high[i], 3 + int(i));
      dup2(admin_high, admin_target);
      // LISTEN_PID is this process: written by hand (async-signal-safe).
      char digits[20];
      int n = 0;
      for (pid_t p = getpid(); p > 0; p /= 10) digits[n++] = char('0' + p % 10);
      char* at = listen_pid + 11;
      while (n > 0) *at++ = digits[--n];
      *at = '\0';
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execve(self_.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    close(pair[1]);
    if (pid < 0) {
      close(pair[0]);
      log::error("export " + child.spec.name + ": cannot start it: " + std::strerror(errno));
      child.phase = Phase::kWaiting;
      child.restart_at = Clock::now() + std::chrono::seconds(5);
      return;
    }
    child.pid = pid;
    child.admin_fd = pair[0];
    child.phase = Phase::kRunning;
    child.started = Clock::now();
    log::info("export " + child.spec.name + ": started (pid " + std::to_string(pid) + ")");
  }

  void reap() {
    for (;;) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      std::lock_guard lock(mutex_);
      auto it = std::find_if(children_.begin(), children_.end(),
                             [&](const auto& entry) { return entry.second.pid == pid; });
      if (it == children_.end()) continue;
      Child& child = it->second;
      {
        std::lock_guard one(*child.admin_mutex);
        close(child.admin_fd);
        child.admin_fd = -1;
      }
      child.pid = -1;
      const std::string how = WIFEXITED(status)
                                  ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                  : std::string("was killed by ") + strsignal(WTERMSIG(status));
      switch (child.phase) {
        case Phase::kRestarting:
          log::info("export " + child.spec.name + ": restarting with its new settings");
          child.spec = child.next;
          child.failures = 0;
          launch(child);
          break;
        case Phase::kWithdrawing: {
          log::info("export " + child.spec.name + ": withdrawn (" + how + ")");
          remove_sockets(child.spec);
          std::error_code ignored;
          std::filesystem::remove(child.spec.state_dir, ignored);  // only when empty
          // Withdrawn, and put back by a later SIGHUP while it went: it starts again.
          if (const ExportSpec* back = config_.find(child.spec.name)) {
            child.spec = *back;
            child.failures = 0;
            launch(child);
          } else {
            children_.erase(it);
          }
          break;
        }
        case Phase::kStopping:
          children_.erase(it);
          break;
        case Phase::kRunning:
        case Phase::kWaiting: {
          // Ran for a while: a crash, not a failure to start. Its guests resume.
          if (Clock::now() - child.started > std::chrono::seconds(60)) child.failures = 0;
          const auto delay =
              std::chrono::seconds(std::min(30u, 1u << std::min(child.failures, 5u)));
          ++child.failures;
          log::warning("export " + child.spec.name + ": its fsoutd " + how +
                       "; starting it again in " + std::to_string(delay.count()) + " s");
          child.phase = Phase::kWaiting;
          child.restart_at = Clock::now() + delay;
          break;
        }
      }
    }
  }

  // A withdrawn export's unix sockets (its process could not: inside its sandbox they are
  // out of reach), unless systemd holds them for us.
  void remove_sockets(const ExportSpec& spec) {
    for (const auto& text : spec.listen) {
      try {
        const auto address = transport::parse_address(text);
        if (address.kind != transport::Address::Kind::kUnix) continue;
        if (std::any_of(inherited_.begin(), inherited_.end(),
                        [&](int fd) { return socket_is_bound_to(fd, address); }))
          continue;
        struct stat st {};
        if (lstat(address.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
          unlink(address.path.c_str());
      } catch (const std::exception&) {
      }
    }
  }

  void restart_due() {
    std::lock_guard lock(mutex_);
    for (auto& [name, child] : children_)
      if (child.phase == Phase::kWaiting && child.pid < 0 && Clock::now() >= child.restart_at)
        launch(child);
  }

  void reload() {
    ConfigResult loaded = load_configuration(options_.config_path, options_.state_base);
    if (!loaded.config) {
      log::error("SIGHUP: the configuration is not changed, it has an error: " + loaded.error);
      return;
    }
    Configuration& fresh = *loaded.config;
    if (!options_.log_level.empty()) override_log_level(fresh, options_.log_level);
    for (const auto& spec : fresh.exports)
      if (std::string why = options_.check(spec); !why.empty()) {
        log::error("SIGHUP: the configuration is not changed: " + spec.where + ": export " +
                   spec.name + ": " + why);
        return;
      }
    if (fresh.admin != config_.admin && options_.admin.empty())
      log::warning("SIGHUP: a new admin address takes effect when fsoutd is restarted");
    unsigned added = 0, removed = 0, changed = 0, kept = 0;
    std::vector<ExportSpec> to_start;
    std::vector<std::string> forget;
    {
      std::lock_guard lock(mutex_);
      for (auto& [name, child] : children_) {
        const ExportSpec* now = fresh.find(name);
        if (child.phase == Phase::kWithdrawing || child.phase == Phase::kStopping) continue;
        if (!now) {
          ++removed;
          if (!withdraw(child)) forget.push_back(name);
        } else if (!(*now == child.spec) &&
                   !(child.phase == Phase::kRestarting && *now == child.next)) {
          ++changed;
          child.next = *now;
          if (child.pid > 0) {
            child.phase = Phase::kRestarting;
            kill(child.pid, SIGTERM);
          } else {
            child.spec = *now;
            child.failures = 0;
            launch(child);
          }
        } else {
          ++kept;
        }
      }
      for (const auto& name : forget) children_.erase(name);
      for (const auto& spec : fresh.exports) {
        auto it = children_.find(spec.name);
        // An export withdrawn a moment ago and now back: started once the old one has gone.
        if (it == children_.end()) {
          to_start.push_back(spec);
          ++added;
        }
      }
    }
    for (const auto& spec : to_start) start_new(spec);
    config_ = std::move(fresh);
    log::info("SIGHUP: configuration read again: " + std::to_string(added) + " added, " +
              std::to_string(removed) + " removed, " + std::to_string(changed) + " changed, " +
              std::to_string(kept) + " unchanged (not touched)");
  }

  // Called with mutex_ held. False when nothing runs: the caller forgets the export.
  bool withdraw(Child& child) {
    if (child.pid <= 0) {
      std::error_code ignored;
      std::filesystem::remove(child.spec.state_dir, ignored);  // only when empty
      return false;
    }
    child.phase = Phase::kWithdrawing;
    kill(child.pid, SIGUSR1);
    return true;
  }

  void stop_all() {
    {
      std::lock_guard lock(mutex_);
      for (auto it = children_.begin(); it != children_.end();) {
        if (it->second.pid > 0) {
          it->second.phase = Phase::kStopping;
          kill(it->second.pid, SIGTERM);
          ++it;
        } else {
          it = children_.erase(it);
        }
      }
    }
    const auto deadline = Clock::now() + kStopGrace;
    for (;;) {
      reap();
      {
        std::lock_guard lock(mutex_);
        if (children_.empty()) return;
        if (Clock::now() > deadline) {
          for (auto& [name, child] : children_) {
            log::warning("export " + name + ": did not stop in time; killed");
            kill(child.pid, SIGKILL);
          }
        }
      }
      usleep(20000);
    }
  }

  const SupervisorOptions& options_;
  Configuration config_;
  std::string self_;
  std::vector<int> inherited_;
  std::mutex mutex_;  // guards children_ (the admin thread reads it)
  std::map<std::string, Child> children_;
  const Clock::time_point started_ = Clock::now();
};

}  // namespace

void override_log_level(Configuration& config, const std::string& level) {
  config.log_level = level;
  for (auto& spec : config.exports) set_log_level_args(spec, level);
}

int run_supervisor(const SupervisorOptions& options, Configuration initial) {
  Supervisor supervisor(options, std::move(initial));
  return supervisor.run();
}

}  // namespace fsout::host
