// The admin channel: `fsout admin` asks, fsoutd answers with what it is doing (admin.md in
// docs/operations.md). One request is one line ("stats", "sessions" or "exports": each gets
// the whole document); the answer is one line of JSON.
//
// SECURITY: it is never a guest's channel. It is a unix socket only (mode 0600, checked
// against SO_PEERCRED: root or fsoutd's own user), bound before the sandbox, or a socketpair
// an `fsoutd --config` holds for each export's process. It reads counters; it changes nothing.
#pragma once

#include <functional>
#include <string>
#include <thread>

namespace fsout::host {

class AdminChannel {
 public:
  // `fd`: a listening unix socket (AdminChannel::bind) or a connected stream (a socketpair
  // end). `answer` makes the document for a request; it runs on the channel's thread.
  AdminChannel(int fd, std::function<std::string(const std::string&)> answer);
  ~AdminChannel();  // stops the thread, closes fd
  // Binds `address` ("unix:PATH"); throws std::runtime_error with a one-line message.
  static int bind(const std::string& address);

 private:
  void loop();
  void serve_connection(int fd, bool timed);
  int fd_, wake_fd_;
  bool listening_;
  std::function<std::string(const std::string&)> answer_;
  std::thread thread_;
};

// Asks over a connected stream (an export's process, from `fsoutd --config`); waits at
// most `timeout_ms`. nullopt-like: empty string when it did not answer.
std::string admin_exchange(int fd, const std::string& request, int timeout_ms);

}  // namespace fsout::host
