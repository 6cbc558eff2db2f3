// libfsout's core: one HELLO-negotiated session over one stream, with any
// number of requests in flight. Requests are sent from any thread; a reader
// thread matches replies to requests by id and runs their callbacks, in
// whatever order the host answers.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "protocol/canonical.h"
#include "protocol/codec.h"
#include "transport/stream.h"

namespace fsout::client {

// A failure to set a session up; what() is one line for the user.
struct ClientError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Options {
  std::string guest_os = canonical::os_name(canonical::native_os());
  std::string export_name;
  uint32_t max_message = protocol::kDefaultMaxMessage;
  // NOTIFY and directory attributes only for those that act on them
  // (fsout-mount in coherent mode).
  uint64_t capabilities = protocol::kCapAllKnown & ~protocol::kCapNotify & ~protocol::kCapDirAttrs;
  // At most this many bytes of replies on the way at once (0: no limit). For a stream that
  // drops what its receiver cannot buffer (FreeBSD's virtio console tty holds 23040 bytes):
  // send() then waits until the replies already asked for leave room. A request's share is
  // its largest possible reply (max_reply_bytes); requests sent from the reader thread
  // (a reply handler's follow-up) never wait, so the reader cannot block itself.
  uint32_t reply_budget = 0;
  // The protocol versions offered in HELLO (tests use other values).
  uint32_t min_version = protocol::kProtocolVersion;
  uint32_t max_version = protocol::kProtocolVersion;
  // Restarts of the host: when the stream breaks, requests wait (none fails, none is lost)
  // while the connection is made again to the same address (a serial port is kept) and the
  // session resumed; after this many seconds without the host they fail with EIO until it
  // is back. 0: no reconnecting (a broken stream fails every request, on_disconnect runs).
  unsigned reconnect_seconds = 0;
};

class Connection {
 public:
  // Raw reply handler: status is a canonical errno (0 = success) and body
  // the reply message after the status; body is valid only during the call.
  using Handler = std::function<void(uint32_t status, std::span<const uint8_t> body)>;

  // Connects to an address and says HELLO. Throws ClientError.
  static std::unique_ptr<Connection> open(const std::string& address, const Options& options);
  // Takes a connected fd (e.g. one end of a socketpair) and says HELLO.
  // Replies to later requests are read once start() has run (a program that
  // forks into the background starts it after the fork).
  Connection(int fd, bool resync, const Options& options, const std::string& name);
  void start();
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const protocol::HelloReply& hello() const { return hello_; }
  bool reconnects() const { return reconnect_seconds_ > 0; }
  bool read_only() const { return hello_.flags & protocol::kHelloReadOnly; }
  uint32_t max_io() const { return max_io_; }
  bool connected() const { return !broken_ && !away_; }
  // Called once, from the reader thread, when the stream breaks.
  void on_disconnect(std::function<void()> callback) { disconnect_callback_ = std::move(callback); }
  // Called from the reader thread with each NOTIFY frame's opcode and
  // payload; set before start().
  void on_notify(std::function<void(uint16_t, std::span<const uint8_t>)> callback) {
    notify_callback_ = std::move(callback);
  }

  // Sends one request; `handler` runs on the reader thread (or at once,
  // with EIO-like status kNotConnected, when the stream is broken for good).
  void send(protocol::Opcode opcode, std::span<const uint8_t> body, std::span<const uint8_t> tail,
            Handler handler, uint32_t reply_bytes = kSmallReplyBytes);

  // What a reply can take at most (status, fixed fields, a directory's attributes sent just
  // before it): small for every request but those that carry data or lists.
  static constexpr uint32_t kSmallReplyBytes = 1024;
  template <class Request>
  static uint32_t max_reply_bytes(const Request&) {
    return kSmallReplyBytes;
  }
  static uint32_t max_reply_bytes(const protocol::ReadRequest& r) { return r.size + 512; }
  static uint32_t max_reply_bytes(const protocol::OpenReadRequest& r) { return r.size + 512; }
  static uint32_t max_reply_bytes(const protocol::ReaddirRequest& r) { return r.size + 1024; }
  static uint32_t max_reply_bytes(const protocol::GetxattrRequest& r) { return r.size + 512; }
  static uint32_t max_reply_bytes(const protocol::ListxattrRequest& r) { return r.size + 512; }
  static uint32_t max_reply_bytes(const protocol::NodeRequest&) { return 4096 + 512; }  // READLINK
  uint32_t reply_budget() const { return reply_budget_; }

  // Typed asynchronous call: `done(native_errno, reply)`; reply is only
  // meaningful when native_errno is 0 and, for data, only during the call.
  template <protocol::Opcode Op, class Done>
  void call_async(const typename protocol::Operation<Op>::Request& request, Done done) {
    using Reply = typename protocol::Operation<Op>::Reply;
    std::vector<uint8_t> body;
    auto tail = protocol::encode_message_deferring_tail(body, request);
    if (!protocol::has_reply(Op)) {
      send(Op, body, tail, nullptr);
      return;
    }
    send(
        Op, body, tail,
        [done = std::move(done)](uint32_t status, std::span<const uint8_t> in) mutable {
          Reply reply{};
          if (status == 0 && !protocol::decode_message(in, reply))
            status = uint32_t(canonical::Errno::kProto);
          // A canonical errno this OS has no number for arrives as EIO.
          done(status == 0 ? 0 : canonical::errno_from_wire(status).value_or(EIO), reply);
        },
        max_reply_bytes(request));
  }

  // Typed synchronous call (not for Tail-carrying replies: use call_async).
  template <protocol::Opcode Op>
  Result<typename protocol::Operation<Op>::Reply> call(
      const typename protocol::Operation<Op>::Request& request) {
    using Reply = typename protocol::Operation<Op>::Reply;
    std::promise<Result<Reply>> promise;
    auto future = promise.get_future();
    call_async<Op>(request, [&promise](int error, const Reply& reply) {
      promise.set_value(error ? Result<Reply>(Errno{error}) : Result<Reply>(reply));
    });
    return future.get();
  }

  void close();

  // For caches of what the host said last: a mark taken just before sending
  // a request, and whether no other request was sent since. The mark is 0
  // (never quiet) when an earlier request is still unanswered, as its
  // effect may land after the reply that is being cached. Every request
  // that has a reply counts except RELEASE and RELEASEDIR (closing a host
  // descriptor changes no data or attributes; the kernel sends them in the
  // background after close(), while the program goes on); a small WRITE
  // under kCapOrderedWrites counts as sent but never as in flight. Meant for
  // a sender that sends from one thread (fsout-mount's FUSE loop).
  uint64_t quiet_mark();
  bool quiet_since(uint64_t mark);

 private:
  // Says HELLO on `stream` (resuming session `token` unless empty); throws ClientError.
  protocol::HelloReply say_hello(transport::FrameStream& stream, const std::string& token,
                                 std::chrono::steady_clock::time_point deadline);
  void adopt_hello(const protocol::HelloReply& reply);
  void reader_loop();
  void fail_all(uint32_t status);
  // The stream broke: connect again and resume, or give up (false: the reader ends).
  bool reconnect();
  void resend_pending(std::shared_ptr<transport::FrameStream> stream);
  std::shared_ptr<transport::FrameStream> current_stream();

  Options options_;
  unsigned reconnect_seconds_ = 0;
  bool resync_ = false;
  std::string token_;                               // the host's session token (kCapResume)
  std::shared_ptr<transport::FrameStream> stream_;  // replaced under pending_mutex_
  std::string name_;
  protocol::HelloReply hello_;
  uint32_t max_io_ = protocol::kMaxIoSize;
  // On a serial port, how long a host may stay silent after a HELLO before it is said again.
  static constexpr int kHelloSilenceMs = 2000;
  std::atomic<uint64_t> next_id_ = 1;
  std::atomic<bool> broken_ = false;
  // The host is away: requests are kept, not written (until resend_pending() has sent
  // every kept one again, in order). With `given_up_` they fail at once instead.
  std::atomic<bool> away_ = false;
  bool given_up_ = false;  // under pending_mutex_
  std::atomic<bool> closing_ = false;
  std::mutex pending_mutex_;  // guards pending_; never held while a handler runs
  struct Pending {
    Handler handler;
    bool in_flight_counts = true;  // for quiet_mark()
    uint32_t reply_bytes = 0;      // its share of reply_budget_
    // For sending it again after a reconnect (only when reconnecting is on).
    uint16_t opcode = 0;
    std::vector<uint8_t> payload;
    bool written = false;  // on the current stream
  };
  uint32_t reply_budget_ = 0;
  uint64_t reply_bytes_reserved_ = 0;  // under pending_mutex_
  std::condition_variable budget_freed_;
  std::thread::id reader_id_;
  void release_budget(uint32_t bytes);  // under pending_mutex_
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t requests_sent_ = 0;  // those that count; under pending_mutex_
  size_t counted_in_flight_ = 0;
  std::function<void()> disconnect_callback_;
  std::function<void(uint16_t, std::span<const uint8_t>)> notify_callback_;
  std::thread reader_;
  std::thread resender_;  // resend_pending() after a resume
};

}  // namespace fsout::client
