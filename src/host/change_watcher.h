// Watches the export for changes made on the host (by any process: a host
// user, another guest's session) so that guests caching for long can be told
// at once. fanotify with a file-system mark and events that name file
// handles (FAN_REPORT_DFID_NAME_TARGET): one watch for any number of
// directories, memory bounded by the kernel's event queue; when the queue
// overflows, subscribers are told that changes were lost.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/file_system.h"

namespace fsout::host {

class ChangeWatcher {
 public:
  class Subscriber {
   public:
    virtual ~Subscriber() = default;
    // `thread` is the thread id of whoever made the change (FAN_REPORT_TID).
    virtual void changed(const HostChange& change, pid_t thread) = 0;
    virtual void lost_changes() = 0;
  };

  // Starts watching the file system that holds `root_fd`. Returns nullptr
  // and says why when this host cannot (fanotify needs CAP_SYS_ADMIN and a
  // file system with file handles).
  static std::unique_ptr<ChangeWatcher> start(int root_fd, std::string& why);
  ~ChangeWatcher();

  // A subscriber is called from the watcher's thread; unsubscribe() returns
  // once no call to it is running.
  void subscribe(Subscriber* subscriber);
  void unsubscribe(Subscriber* subscriber);

  ChangeWatcher(int fanotify_fd, int wake_fd, bool target_fids);

  // Handles, on the caller's thread, every event the kernel has queued so far: a change
  // made before this call has then reached every subscriber (HELLO asks whether the
  // export's own name was renamed, just before it answers).
  void catch_up();

 private:
  void loop();
  void handle(const char* events, size_t size);

  int fanotify_fd_;
  int wake_fd_;
  bool target_fids_;       // dirent events name the entry's object (Linux >= 5.17)
  std::mutex mutex_;       // guards subscribers_; held while calling them
  std::mutex read_mutex_;  // one reader of the queue at a time, so events keep their order
  std::vector<Subscriber*> subscribers_;
  std::thread thread_;
};

}  // namespace fsout::host
