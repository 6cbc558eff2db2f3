// The daemon's top level: listeners, and one Session per accepted stream.
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/change_watcher.h"
#include "host/session.h"
#include "host/stats.h"
#include "transport/address.h"

namespace fsout::host {

struct ServerConfig {
  std::string root_path;
  SessionConfig session;  // root_fd is filled in by the Server
  // Accepted streams are virtio-serial ports behind QEMU's -chardev socket:
  // they outlive guest modules, so resynchronise instead of closing.
  bool serial_streams = false;
  // Watch the export for host changes and offer guests NOTIFY (needs root).
  bool watch_changes = true;
  // Connections served at once; more are closed as they come (each costs threads).
  size_t max_sessions = 256;
  // Inside the sandbox socket paths are not the host's: leave them for the next start.
  bool unlink_sockets = true;
  // The export's entry in its parent directory (the parent's file-handle key and the name),
  // when the export's path cannot be looked at any more (inside the sandbox): the change
  // watcher tells when that entry is renamed, removed or replaced.
  std::string export_parent_key, export_entry;
  // For the admin channel: the export's name (--name, or the directory) and its addresses.
  std::string name;
  std::vector<std::string> listen;
};

class Server {
 public:
  // Opens the export; throws std::runtime_error with a one-line message when
  // it is missing or not a directory.
  explicit Server(ServerConfig config);
  ~Server();

  // Binds an address (a serial device is opened, and opened again through that fd for
  // each new guest). Returns the fd; throws transport::TransportError.
  static int bind(const transport::Address& address);
  // Serves on an fd from bind() (made before entering the sandbox); takes it.
  void adopt(int fd, const transport::Address& address);
  void listen(const transport::Address& address) { adopt(bind(address), address); }
  void start();
  // Runs a session on an already connected fd (tests, socketpairs).
  void serve_fd(int fd, bool resync, std::string peer);
  // Ends every listener and session, and waits for their threads.
  void stop();
  // A graceful stop for a restart: sessions keep their state, finish and answer what they
  // are performing (for at most `limit`), then everything stops as in stop().
  void drain(std::chrono::milliseconds limit);
  size_t session_count();
  // The admin channel's view of this export: {"name", "path", "listen", "read_only",
  // "uptime_s", "sessions_now", "sessions_total", "totals": {...}, "sessions": [...]}.
  nlohmann::json describe();

 private:
  struct Running {
    std::unique_ptr<Session> session;
    std::thread thread;
    bool done = false;
  };
  void accept_loop(int listen_fd, std::string name);
  void serial_loop(int device_fd, std::string name);
  class ExportWatch;
  void launch(std::unique_ptr<transport::FrameStream> stream, std::string peer);
  void finish(Running& running);
  size_t live_sessions();  // sessions not yet ended (reap() not needed for the count)
  void reap();
  static constexpr int kReapIntervalMs = 1000;
  static constexpr int kMinBackoffMs = 50;
  static constexpr int kMaxBackoffMs = 1000;

  ServerConfig config_;
  int root_fd_ = -1;
  std::unique_ptr<ChangeWatcher> watcher_;
  std::unique_ptr<ExportWatch> export_watch_;
  int wake_fd_ = -1;
  std::vector<std::pair<int, transport::Address>> listeners_;
  std::vector<std::thread> listener_threads_;
  std::mutex mutex_;
  std::list<std::shared_ptr<Running>> sessions_;
  bool stopped_ = false;
  // Counters of the sessions that have ended (guarded by mutex_), and how many there were.
  StatsSnapshot ended_totals_;
  uint64_t sessions_total_ = 0;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace fsout::host
