#include "host/change_watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "host/confine.h"
#include "host/node_table.h"

namespace fsout::host {

namespace {
// What a guest may have cached: data, attributes, names. FAN_ONDIR: the
// same for directories.
constexpr uint64_t kEvents =
    FAN_MODIFY | FAN_ATTRIB | FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_ONDIR;
}  // namespace

std::unique_ptr<ChangeWatcher> ChangeWatcher::start(int root_fd, std::string& why) {
  const unsigned base = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_TID;
  bool target_fids = true;
  int fd = fanotify_init(base | FAN_REPORT_DFID_NAME_TARGET, O_RDONLY);
  if (fd < 0 && errno == EINVAL) {  // before Linux 5.17: no target ids
    target_fids = false;
    fd = fanotify_init(base | FAN_REPORT_DFID_NAME | FAN_REPORT_FID, O_RDONLY);
  }
  if (fd < 0) {
    why = std::string("fanotify: ") + std::strerror(errno) +
          (errno == EPERM ? " (needs CAP_SYS_ADMIN)" : "");
    return nullptr;
  }
  std::string path = confine::fd_path(root_fd);
  if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, kEvents, AT_FDCWD, path.c_str()) != 0) {
    why = std::string("fanotify_mark: ") + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    why = std::string("eventfd: ") + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  return std::make_unique<ChangeWatcher>(fd, wake, target_fids);
}

ChangeWatcher::ChangeWatcher(int fanotify_fd, int wake_fd, bool target_fids)
    : fanotify_fd_(fanotify_fd), wake_fd_(wake_fd), target_fids_(target_fids) {
  thread_ = std::thread([this] { loop(); });
}

ChangeWatcher::~ChangeWatcher() {
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof(one)) < 0) {
  }
  thread_.join();
  close(fanotify_fd_);
  close(wake_fd_);
}

void ChangeWatcher::subscribe(Subscriber* subscriber) {
  std::lock_guard lock(mutex_);
  subscribers_.push_back(subscriber);
}

void ChangeWatcher::unsubscribe(Subscriber* subscriber) {
  std::lock_guard lock(mutex_);
  subscribers_.erase(std::remove(subscribers_.begin(), subscribers_.end(), subscriber),
                     subscribers_.end());
}

namespace {
constexpr int kGatherMs = 2;
}  // namespace

void ChangeWatcher::loop() {
  static thread_local char buffer[64 * 1024];
  for (;;) {
    pollfd fds[2] = {{fanotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    {
      std::lock_guard lock(read_mutex_);
      for (;;) {
        ssize_t n = read(fanotify_fd_, buffer, sizeof(buffer));
        if (n <= 0) break;  // EAGAIN: all read
        handle(buffer, size_t(n));
      }
    }
    // Let events gather for a moment: a busy export produces one per file
    // operation, and waking this thread for each cost more CPU than the
    // operations themselves (the kernel queues and merges them meanwhile).
    pollfd wake{wake_fd_, POLLIN, 0};
    if (poll(&wake, 1, kGatherMs) > 0) return;
  }
}

void ChangeWatcher::catch_up() {
  std::vector<char> buffer(64 * 1024);
  std::lock_guard lock(read_mutex_);
  for (;;) {
    ssize_t n = read(fanotify_fd_, buffer.data(), buffer.size());
    if (n <= 0) return;  // EAGAIN: all read
    handle(buffer.data(), size_t(n));
  }
}

// Events follow each other at 4-byte boundaries (info records are padded to
// 4 bytes), so every structure is copied out before it is read.
void ChangeWatcher::handle(const char* events, size_t size) {
  size_t at = 0;
  while (at + sizeof(fanotify_event_metadata) <= size) {
    fanotify_event_metadata event;
    std::memcpy(&event, events + at, sizeof(event));
    if (event.vers != FANOTIFY_METADATA_VERSION || event.event_len < event.metadata_len ||
        event.metadata_len < sizeof(event) || at + event.event_len > size)
      return;
    const char* start = events + at;
    const char* end = start + event.event_len;
    at += event.event_len;
    if (event.fd >= 0) close(event.fd);  // not in FID mode; never kept
    if (event.mask & FAN_Q_OVERFLOW) {
      std::lock_guard lock(mutex_);
      for (auto* subscriber : subscribers_) subscriber->lost_changes();
      continue;
    }
    HostChange change;
    change.events = uint32_t(event.mask);
    bool about_directory_itself = false;
    for (const char* info = start + event.metadata_len;
         info + sizeof(fanotify_event_info_header) <= end;) {
      fanotify_event_info_header header;
      std::memcpy(&header, info, sizeof(header));
      if (header.len < sizeof(header) || info + header.len > end) break;
      const bool fid = header.info_type == FAN_EVENT_INFO_TYPE_FID;
      const bool dfid = header.info_type == FAN_EVENT_INFO_TYPE_DFID ||
                        header.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME;
      // header, fsid, then a struct file_handle (bytes, type, the handle).
      const char* handle = info + sizeof(header) + sizeof(__kernel_fsid_t);
      const size_t fixed = sizeof(header) + sizeof(__kernel_fsid_t) + 2 * sizeof(int);
      if ((fid || dfid) && header.len >= fixed) {
        unsigned bytes;
        int type;
        std::memcpy(&bytes, handle, sizeof(bytes));
        std::memcpy(&type, handle + sizeof(bytes), sizeof(type));
        const auto* data = reinterpret_cast<const unsigned char*>(handle + 2 * sizeof(int));
        if (fixed + bytes <= header.len) {
          std::string key = file_handle_key(type, data, bytes);
          if (fid) {
            change.object = key;
          } else {
            change.directory = key;
            if (header.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
              const char* name = reinterpret_cast<const char*>(data) + bytes;
              change.name.assign(name, strnlen(name, size_t(info + header.len - name)));
              if (change.name == ".") {  // an event on the directory itself
                change.name.clear();
                about_directory_itself = true;
              }
            }
          }
        }
      }
      info += header.len;
    }
    // An event on a directory (its mode, owner, times) names it only in the
    // DFID record, with the name ".": the directory is also the object.
    if (about_directory_itself && change.object.empty()) change.object = change.directory;
    // Without target ids a dirent event's object is the directory itself.
    if (!target_fids_ && (event.mask & (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO)))
      change.object.clear();
    std::lock_guard lock(mutex_);
    for (auto* subscriber : subscribers_) subscriber->changed(change, pid_t(event.pid));
  }
}

}  // namespace fsout::host
