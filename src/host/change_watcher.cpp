#include "host/change_watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

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
  std::string path = "/proc/self/fd/" + std::to_string(root_fd);
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

void ChangeWatcher::loop() {
  alignas(fanotify_event_metadata) static thread_local char buffer[64 * 1024];
  for (;;) {
    pollfd fds[2] = {{fanotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    for (;;) {
      ssize_t n = read(fanotify_fd_, buffer, sizeof(buffer));
      if (n <= 0) break;  // EAGAIN: all read
      handle(buffer, size_t(n));
    }
  }
}

void ChangeWatcher::handle(const char* events, size_t size) {
  auto* event = reinterpret_cast<const fanotify_event_metadata*>(events);
  size_t left = size;
  for (; FAN_EVENT_OK(event, left); event = FAN_EVENT_NEXT(event, left)) {
    if (event->vers != FANOTIFY_METADATA_VERSION) return;
    if (event->fd >= 0) close(event->fd);  // not in FID mode; never kept
    if (event->mask & FAN_Q_OVERFLOW) {
      std::lock_guard lock(mutex_);
      for (auto* subscriber : subscribers_) subscriber->lost_changes();
      continue;
    }
    HostChange change;
    change.events = uint32_t(event->mask);
    const char* info = reinterpret_cast<const char*>(event) + event->metadata_len;
    const char* end = reinterpret_cast<const char*>(event) + event->event_len;
    while (info + sizeof(fanotify_event_info_header) <= end) {
      auto* header = reinterpret_cast<const fanotify_event_info_header*>(info);
      if (header->len < sizeof(*header) || info + header->len > end) break;
      if (header->info_type == FAN_EVENT_INFO_TYPE_FID ||
          header->info_type == FAN_EVENT_INFO_TYPE_DFID ||
          header->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
        auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(info);
        auto* handle = reinterpret_cast<const file_handle*>(fid->handle);
        std::string key =
            file_handle_key(handle->handle_type, handle->f_handle, handle->handle_bytes);
        if (header->info_type == FAN_EVENT_INFO_TYPE_FID) {
          change.object = key;
        } else {
          change.directory = key;
          if (header->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
            const char* name =
                reinterpret_cast<const char*>(handle->f_handle) + handle->handle_bytes;
            change.name.assign(name, strnlen(name, size_t(end - name)));
            if (change.name == ".") change.name.clear();  // the directory itself
          }
        }
      }
      info += header->len;
    }
    // Without target ids a dirent event's object is the directory itself.
    if (!target_fids_ && (event->mask & (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO)))
      change.object.clear();
    std::lock_guard lock(mutex_);
    for (auto* subscriber : subscribers_) subscriber->changed(change, pid_t(event->pid));
  }
}

}  // namespace fsout::host
