// One guest's session: a small pool of threads take turns reading request
// frames from one stream (leader/followers): the thread that read a request
// hands the stream to the next and performs the request itself, against the
// session's own FileSystem, so a request never waits for a thread switch on
// the host. Replies go out in whatever order they finish.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/change_watcher.h"
#include "host/file_system.h"
#include "host/log.h"
#include "host/stats.h"
#include "transport/stream.h"

namespace fsout::host {

// Sessions a restarted fsoutd found in its state directory (session_state.h), opened again
// and waiting for their guests to resume them; and where new sessions keep their state.
class ParkedSessions {
 public:
  // `dir_fd`: the state directory (owned); `root_fd`: the export.
  ParkedSessions(int dir_fd, int root_fd, std::chrono::seconds window);
  ~ParkedSessions();
  // Before the sandbox: opens every saved session of this export again. Lines for the log.
  std::vector<std::string> restore_all(Limits limits, std::shared_ptr<const IdMap> ids);
  std::unique_ptr<FileSystem> take(const std::string& token);
  std::unique_ptr<StateLog> create(std::string& token);
  // Sessions whose guest did not come back within the window end (their locks go).
  std::vector<std::string> expire();
  size_t size();

 private:
  int dir_fd_;
  uint64_t root_device_ = 0, root_inode_ = 0;
  int root_fd_;
  std::chrono::seconds window_;
  std::mutex mutex_;
  struct Parked {
    std::unique_ptr<FileSystem> fs;
    std::chrono::steady_clock::time_point until;
  };
  std::map<std::string, Parked> parked_;
};

struct SessionConfig {
  int root_fd = -1;  // O_PATH directory fd of the export (not owned)
  // The export as named on the command line (root_fd was opened from it); empty inside the
  // sandbox, where `export_moved` says instead when the host renamed or removed that name.
  std::string root_path;
  std::string export_label;  // the export's name for the log
  std::shared_ptr<const std::atomic<bool>> export_moved;
  bool read_only = false;
  unsigned workers = 4;  // threads, and so requests in flight; reading pauses beyond
  uint32_t max_message = protocol::kDefaultMaxMessage;
  Limits limits;
  std::string export_name;
  std::shared_ptr<const IdMap> ids;  // guest <-> host ids; null: identity
  ChangeWatcher* watcher = nullptr;  // host changes, for NOTIFY; null: none
  ParkedSessions* parked = nullptr;  // restarts: where state is kept; null: nowhere
};

class Session : public ChangeWatcher::Subscriber {
 public:
  Session(std::unique_ptr<transport::FrameStream> stream, SessionConfig config, std::string peer);
  ~Session();

  // Serves until the stream closes, the guest misbehaves (non-resync
  // streams) or stop() is called.
  void run();
  void stop();
  // A graceful stop of the daemon: the session's state stays for the next fsoutd, requests
  // being performed finish and are answered, the rest wait in the stream for the guest to
  // send them again. Call before stop().
  void keep_state_for_restart();

  // From the change watcher's thread: tell the guest what to forget.
  void changed(const HostChange& change, pid_t thread) override;
  void lost_changes() override;

  // For the admin channel (any thread): who the guest is, how long it has been here, what
  // it holds and asked for. {"peer", "guest_os", "uptime_s", "resumed", "nodes", "handles",
  // and the counters of StatsSnapshot::to_json()}.
  nlohmann::json describe();
  StatsSnapshot stats() const { return stats_.snapshot(); }

 private:
  struct Job {
    protocol::FrameHeader header;
    std::vector<uint8_t> payload;
  };

  void serve_loop();
  bool is_blocking_lock(const Job& job) const;
  bool is_quick(const Job& job) const;
  void start_waiter(Job job);
  void wait_for_waiters(std::unique_lock<std::mutex>& lock);
  void dispatch(const Job& job);
  // Returns whether the request succeeded (for the counters).
  template <class Request, class Reply, class Call>
  bool serve(const Job& job, Call call);
  // The first refusal of each kind (operation, errno) a session meets is logged.
  void note_refusal(uint16_t opcode, int error);
  void hello(const Job& job);
  bool resumes_this_session(const Job& job);
  // The reply journal (requests that must not be performed twice): true when `job` was
  // answered from it.
  template <class Request>
  bool answered_from_journal(const Job& job, const Request& request);
  void send_payload(const Job& job, const std::vector<uint8_t>& payload);
  std::string export_gone() const;
  void start_helpers();
  // Waits for in-flight requests, then drops the FileSystem (unless `keep`).
  void reset_state(bool keep = false);
  std::atomic<bool> keep_state_ = false;
  void fault(const std::string& why);
  void send_error(const protocol::FrameHeader& request, int native_errno);
  void log(const std::string& message, log::Level level = log::Level::kInfo);
  void send_notifications(const std::vector<protocol::NotifyMessage>& notes);
  void after_request();  // asks the guest to forget when fds run short

  std::unique_ptr<transport::FrameStream> stream_;
  SessionConfig config_;
  std::string peer_;
  RequestStats stats_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::mutex info_mutex_;  // guards the three below
  std::string guest_os_;
  unsigned resumes_ = 0;
  std::vector<std::pair<uint16_t, int>> refusals_logged_;
  std::unique_ptr<FileSystem> fs_;  // null until HELLO; replaced only while idle
  std::atomic<bool> faulted_ = false;
  std::atomic<bool> stopping_ = false;

  // One thread at a time reads the stream; it holds reader_mutex_ while it
  // does, and while it runs what must not overlap other requests (HELLO,
  // a reset after a fault, FORGET).
  std::mutex reader_mutex_;
  bool stream_done_ = false;  // guarded by reader_mutex_

  std::mutex mutex_;                 // guards the counters below
  std::condition_variable changed_;  // a request or waiter finished
  size_t in_flight_ = 0;             // requests being performed by serving threads
  // Requests that may block for long (SETLKW, blocking flock) run on threads
  // of their own and do not count as in flight: otherwise waiters could take
  // every worker and every slot, and the unlock that frees them would never
  // be read.
  size_t waiters_ = 0;

  // NOTIFY: on when the guest asked for it. notify_mutex_ guards fs_ against
  // a HELLO replacing it while the watcher's thread reads it, and the ids of
  // this session's own threads, whose changes need no echo.
  std::atomic<bool> notify_ = false;
  std::atomic<bool> dir_attrs_ = false;  // kCapDirAttrs negotiated
  std::mutex notify_mutex_;
  std::vector<pid_t> own_threads_;
  // Notifications wait here for the sender thread (bounded: beyond
  // kMaxOutbox the guest is told to forget everything instead).
  static constexpr size_t kMaxOutbox = 65536;
  void sender_loop();
  std::mutex outbox_mutex_;
  std::condition_variable outbox_ready_;
  std::deque<protocol::NotifyMessage> outbox_;
  bool outbox_overflowed_ = false;
  bool outbox_closing_ = false;
  std::thread sender_;
  std::mutex helpers_mutex_;
  std::vector<std::thread> helpers_;  // serving threads besides run()'s, from the first HELLO
  bool helpers_closed_ = false;       // run() is joining them
};

// Installs the process-wide signal setup sessions rely on (SIGPIPE ignored,
// SIGURG interrupting blocked lock waits). Call once from main or a test.
void install_session_signals();

}  // namespace fsout::host
