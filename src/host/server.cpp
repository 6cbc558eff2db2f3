#include "host/server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "host/confine.h"
#include "host/log.h"
#include "transport/os.h"

namespace fsout::host {

// Inside the sandbox: notices when the host renames or removes the export's own name.
class Server::ExportWatch : public ChangeWatcher::Subscriber {
 public:
  ExportWatch(std::string parent_key, std::string entry)
      : parent_key_(std::move(parent_key)), entry_(std::move(entry)) {}
  void changed(const HostChange& change, pid_t) override {
    if (change.directory == parent_key_ && change.name == entry_ &&
        (change.events & (FAN_MOVED_FROM | FAN_MOVED_TO | FAN_DELETE | FAN_CREATE)))
      *moved_ = true;
  }
  void lost_changes() override {}
  std::shared_ptr<std::atomic<bool>> moved_ = std::make_shared<std::atomic<bool>>(false);

 private:
  std::string parent_key_, entry_;
};

Server::Server(ServerConfig config) : config_(std::move(config)) {
  root_fd_ = open(config_.root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd_ < 0)
    throw std::runtime_error("cannot serve '" + config_.root_path + "': " + std::strerror(errno));
  config_.session.root_fd = root_fd_;
  if (config_.session.export_label.empty()) config_.session.export_label = config_.root_path;
  const bool sandboxed = !config_.export_parent_key.empty();
  config_.session.root_path = sandboxed ? "" : config_.root_path;
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (config_.watch_changes) {
    std::string why;
    watcher_ = ChangeWatcher::start(root_fd_, why);
    if (!watcher_) log::warning("no change notifications for guests (" + why + ")");
    config_.session.watcher = watcher_.get();
  }
  if (sandboxed && watcher_) {
    export_watch_ = std::make_unique<ExportWatch>(config_.export_parent_key, config_.export_entry);
    config_.session.export_moved = export_watch_->moved_;
    watcher_->subscribe(export_watch_.get());
  } else if (sandboxed) {
    log::warning(
        "without change notifications a renamed or replaced export is not noticed inside the "
        "sandbox (a deleted one is)");
  }
}

Server::~Server() {
  stop();
  if (export_watch_) watcher_->unsubscribe(export_watch_.get());
  watcher_.reset();  // after the sessions, which subscribe to it
  for (auto& [fd, address] : listeners_) {
    if (fd >= 0) close(fd);
    if (address.kind == transport::Address::Kind::kUnix && config_.unlink_sockets)
      unlink(address.path.c_str());
  }
  close(root_fd_);
  close(wake_fd_);
}

int Server::bind(const transport::Address& address) {
  if (address.kind == transport::Address::Kind::kSerial)
    return transport::open_serial(address.path);
  int fd = transport::listen_on(address);
  // Non-blocking, so that accept() after a backoff returns when the connection it was for
  // has gone (accepted sockets are blocking whatever the listener is).
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

void Server::adopt(int fd, const transport::Address& address) {
  listeners_.emplace_back(fd, address);
}

void Server::start() {
  for (auto& [fd, address] : listeners_) {
    if (address.kind == transport::Address::Kind::kSerial)
      listener_threads_.emplace_back(
          [this, fd = fd, name = "serial:" + address.path] { serial_loop(fd, name); });
    else
      listener_threads_.emplace_back(
          [this, fd = fd, text = address.text] { accept_loop(fd, text); });
  }
}

void Server::accept_loop(int listen_fd, std::string name) {
  unsigned counter = 0;
  int backoff_ms = 0;     // while accept fails for want of fds or memory
  bool at_limit = false;  // refusing connections: too many sessions (logged once)
  for (;;) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {listen_fd, POLLIN, 0}};
    // While backing off only the wake fd is watched: the pending connection would make a
    // level-triggered poll return at once, and the loop would spin.
    int ready = poll(fds, backoff_ms ? 1 : 2, backoff_ms ? backoff_ms : kReapIntervalMs);
    if (ready < 0 && errno != EINTR) return;
    if (fds[0].revents) return;
    reap();  // finished sessions' threads, also when nobody connects
    if (ready <= 0 && !backoff_ms) continue;
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        if (!backoff_ms)
          log::warning(name + ": cannot accept a connection (" + std::strerror(errno) +
                       "); retrying");
        backoff_ms = backoff_ms ? std::min(backoff_ms * 2, kMaxBackoffMs) : kMinBackoffMs;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        backoff_ms = 0;  // nothing pending (after a backoff)
      }
      continue;  // ECONNABORTED, ...: the next one
    }
    if (backoff_ms) {
      log::info(name + ": accepting connections again");
      backoff_ms = 0;
    }
    if (live_sessions() >= config_.max_sessions) {
      if (!at_limit)
        log::warning(name + ": " + std::to_string(config_.max_sessions) +
                     " sessions already (--max-sessions); refusing new ones");
      at_limit = true;
      close(fd);
      continue;
    }
    at_limit = false;
    int one = 1;
    // Replies are small and latency-bound: never hold them back to coalesce
    // (fails harmlessly on unix sockets).
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // Room for a few 1 MiB READ replies: fewer wake-ups per MiB (the
    // system's net.core.wmem_max caps it). Measured: seq read 0.89 -> 1.1
    // GB/s (writes, whose data goes the other way, measured no worse).
    int buffer = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
    std::string peer = name + "#" + std::to_string(++counter);
    launch(std::make_unique<transport::FrameStream>(fd, config_.serial_streams), peer);
  }
}

// A serial device is one stream that outlives its guests: serve it, and when
// it reports end-of-stream (no guest on the other end), open it again.
// The device is opened again through the fd bind() opened (its /proc magic link): the path
// may not be reachable any more (the sandbox), and this is the same device anyway.
void Server::serial_loop(int device_fd, std::string name) {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
    }
    int fd = open(confine::fd_path(device_fd).c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
      log::error(name + ": cannot open it again: " + std::strerror(errno));
    } else {
      transport::os::make_raw(fd);
      auto stream = std::make_unique<transport::FrameStream>(fd, true);
      auto session = std::make_unique<Session>(std::move(stream), config_.session, name);
      Session* raw = session.get();
      auto running = std::make_shared<Running>();
      running->session = std::move(session);
      {
        std::lock_guard lock(mutex_);
        if (stopped_) return;
        sessions_.push_back(running);
        ++sessions_total_;
      }
      raw->run();
      finish(*running);
    }
    pollfd wake{wake_fd_, POLLIN, 0};
    if (poll(&wake, 1, 200) > 0) return;
  }
}

void Server::serve_fd(int fd, bool resync, std::string peer) {
  launch(std::make_unique<transport::FrameStream>(fd, resync), std::move(peer));
}

// A connection that cannot get its threads (out of threads or memory) is closed, logged;
// the daemon goes on.
void Server::launch(std::unique_ptr<transport::FrameStream> stream, std::string peer) {
  auto running = std::make_shared<Running>();
  try {
    running->session = std::make_unique<Session>(std::move(stream), config_.session, peer);
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    running->thread = std::thread([this, running] {
      running->session->run();
      finish(*running);
    });
    sessions_.push_back(running);
    ++sessions_total_;
  } catch (const std::system_error& error) {
    log::error(peer + ": closed, cannot serve it: " + error.what());
  }
}

// A session that has ended gives back what it holds at once, on its own thread: its nodes'
// fds, its lock waiters, its record locks (a host program may be waiting for them). Only
// the thread itself is left for reap() to join.
void Server::finish(Running& running) {
  std::unique_ptr<Session> ended;
  {
    std::lock_guard lock(mutex_);
    ended = std::move(running.session);
  }
  const StatsSnapshot counted = ended->stats();
  ended.reset();
  std::lock_guard lock(mutex_);
  ended_totals_.add(counted);
  running.done = true;
}

void Server::reap() {
  if (config_.session.parked)
    for (const auto& line : config_.session.parked->expire()) log::info(line);
  std::list<std::shared_ptr<Running>> finished;
  {
    std::lock_guard lock(mutex_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if ((*it)->done) {
        finished.push_back(*it);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& running : finished)
    if (running->thread.joinable()) running->thread.join();
}

size_t Server::session_count() {
  reap();
  return live_sessions();
}

size_t Server::live_sessions() {
  std::lock_guard lock(mutex_);
  size_t live = 0;
  for (auto& running : sessions_) live += running->done ? 0 : 1;
  return live;
}

nlohmann::json Server::describe() {
  nlohmann::json sessions = nlohmann::json::array();
  StatsSnapshot totals;
  size_t now = 0;
  uint64_t total = 0;
  {
    // Under mutex_ a live session cannot be taken away by finish(), nor its counters be
    // counted twice (in ended_totals_ and here).
    std::lock_guard lock(mutex_);
    totals = ended_totals_;
    total = sessions_total_;
    for (auto& running : sessions_) {
      if (!running->session) continue;
      ++now;
      totals.add(running->session->stats());
      sessions.push_back(running->session->describe());
    }
  }
  nlohmann::json out = {
      {"name", config_.name.empty() ? config_.session.export_label : config_.name},
      {"path", config_.session.export_label},
      {"listen", config_.listen},
      {"read_only", config_.session.read_only},
      {"uptime_s",
       std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
           .count()},
      {"sessions_now", now},
      {"sessions_total", total},
      {"parked", config_.session.parked ? config_.session.parked->size() : 0},
      {"totals", totals.to_json()},
      {"sessions", std::move(sessions)}};
  return out;
}

void Server::drain(std::chrono::milliseconds limit) {
  // First no new connections: a guest that reconnected to this daemon now would find its
  // session still here, not yet saved for the next one. Closed listeners refuse at once,
  // and the guest tries again until the next fsoutd listens.
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
  }
  for (auto& thread : listener_threads_) thread.join();
  listener_threads_.clear();
  for (auto& [fd, address] : listeners_)
    if (address.kind != transport::Address::Kind::kSerial && fd >= 0) {
      close(fd);
      fd = -1;
    }
  {
    std::lock_guard lock(mutex_);
    for (auto& running : sessions_)
      if (running->session) running->session->keep_state_for_restart();
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (live_sessions() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop();
}

void Server::stop() {
  std::list<std::shared_ptr<Running>> all;
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    all = sessions_;
  }
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
  }
  {
    std::lock_guard lock(mutex_);  // finish() takes sessions away under it
    for (auto& running : all)
      if (running->session) running->session->stop();
  }
  for (auto& thread : listener_threads_) thread.join();
  listener_threads_.clear();
  for (auto& running : all)
    if (running->thread.joinable()) running->thread.join();
  std::lock_guard lock(mutex_);
  sessions_.clear();
}

}  // namespace fsout::host
