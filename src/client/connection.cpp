#include "client/connection.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <thread>

#include "transport/address.h"

namespace fsout::client {

using namespace protocol;

namespace {
// Status given to handlers of requests that can no longer be answered.
constexpr uint32_t kNotConnected = uint32_t(canonical::Errno::kNotconn);
}  // namespace

std::unique_ptr<Connection> Connection::open(const std::string& address, const Options& options) {
  int fd;
  bool resync;
  try {
    auto parsed = transport::parse_address(address);
    fd = transport::connect_to(parsed);
    resync = parsed.kind == transport::Address::Kind::kSerial;
  } catch (const transport::TransportError& error) {
    throw ClientError(error.what());
  }
  auto connection = std::make_unique<Connection>(fd, resync, options, address);
  connection->start();
  return connection;
}

Connection::Connection(int fd, bool resync, const Options& options, const std::string& name)
    : options_(options),
      reconnect_seconds_(options.reconnect_seconds),
      resync_(resync),
      stream_(std::make_shared<transport::FrameStream>(fd, resync)),
      name_(name),
      reply_budget_(options.reply_budget) {
  if (reconnect_seconds_)
    options_.capabilities |= kCapResume;
  else
    options_.capabilities &= ~kCapResume;
  adopt_hello(say_hello(*stream_, "", std::chrono::steady_clock::now() + std::chrono::seconds(30)));
}

void Connection::start() {
  if (!reader_.joinable()) reader_ = std::thread([this] { reader_loop(); });
}

Connection::~Connection() {
  close();
  if (reader_.joinable()) reader_.join();
  if (resender_.joinable()) resender_.join();
}

void Connection::close() {
  closing_ = true;
  current_stream()->shutdown();
}

std::shared_ptr<transport::FrameStream> Connection::current_stream() {
  std::lock_guard lock(pending_mutex_);
  return stream_;
}

HelloReply Connection::say_hello(transport::FrameStream& stream, const std::string& token,
                                 std::chrono::steady_clock::time_point deadline) {
  const Options& options = options_;
  HelloRequest request;
  request.min_version = options.min_version;
  request.max_version = options.max_version;
  request.capabilities = options.capabilities;
  request.max_message = options.max_message;
  request.guest_os.value = options.guest_os;
  request.export_name.value = options.export_name;
  request.session.value = token;
  std::vector<uint8_t> body;
  encode_message(body, request);
  uint64_t id = 0;
  auto say = [&] {  // each HELLO under a new id: the answer awaited is the latest one's
    id = next_id_++;
    if (!stream.write_frame({FrameKind::kRequest, uint16_t(Opcode::kHello), id, 0}, body))
      throw ClientError(name_ + ": connection lost while saying HELLO");
  };
  say();
  // A serial port reads as end-of-stream while nobody is at the host end:
  // wait for the host a while, saying HELLO again now and then.
  // Until HELLO is answered nothing else is in flight: read inline. On a
  // serial stream, replies of an earlier session may come first: skip them.
  // And a HELLO or its answer may be lost there (taken for the rest of a frame that
  // another guest module or host daemon did not finish): a host that stays silent is
  // asked again.
  HelloReply reply;
  for (;;) {
    FrameHeader header;
    std::vector<uint8_t> payload;
    auto status = stream.read_frame(header, payload, stream.resyncs() ? kHelloSilenceMs : -1);
    if (status == transport::FrameStream::ReadStatus::kTimedOut) {
      if (std::chrono::steady_clock::now() >= deadline || closing_)
        throw ClientError(name_ + ": no answer to HELLO from the host");
      say();
      continue;
    }
    if (status == transport::FrameStream::ReadStatus::kClosed && stream.resyncs() &&
        std::chrono::steady_clock::now() < deadline && !closing_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      say();
      continue;
    }
    if (status != transport::FrameStream::ReadStatus::kFrame)
      throw ClientError(name_ + ": the server closed the connection during HELLO" +
                        (status == transport::FrameStream::ReadStatus::kFault
                             ? " (" + stream.fault() + ")"
                             : std::string()));
    if (header.kind != FrameKind::kReply || header.request_id != id) continue;
    uint32_t error = decode_reply(payload, reply);
    if (error == kMalformedReply) throw ClientError(name_ + ": malformed HELLO reply");
    if (error != 0) {
      int native = canonical::errno_from_wire(error).value_or(EIO);
      if (native == ESTALE)  // the host's export directory was deleted or replaced
        throw ClientError(name_ +
                          ": server refused the session: its export directory is gone "
                          "(deleted or replaced on the host; see fsoutd's log)");
      if (native == ENOENT && !token.empty())
        throw ClientError(name_ +
                          ": the host no longer has this session (its state is gone: a "
                          "reboot of the host, or fsoutd without its --state-dir)");
      throw ClientError(name_ + ": server refused the session: " + std::strerror(native));
    }
    if (reply.version == 0 || reply.version < options.min_version ||
        reply.version > options.max_version)
      throw ClientError(name_ + ": protocol version mismatch: server speaks " +
                        std::to_string(reply.min_version) + ".." +
                        std::to_string(reply.max_version) + ", this client " +
                        std::to_string(options.min_version) + ".." +
                        std::to_string(options.max_version));
    if (!token.empty() && !(reply.flags & kHelloResumed))
      throw ClientError(name_ + ": the host started a new session instead of resuming ours");
    break;
  }
  stream.set_max_payload(std::max(reply.max_message, 64u * 1024));
  return reply;
}

void Connection::adopt_hello(const HelloReply& reply) {
  hello_ = reply;
  token_ = (reply.capabilities & kCapResume) ? reply.session.value : "";
  // Leave room for the fixed fields next to the data.
  max_io_ = std::min<uint32_t>(kMaxIoSize, hello_.max_message - 4096);
}

void Connection::send(Opcode opcode, std::span<const uint8_t> body, std::span<const uint8_t> tail,
                      Handler handler, uint32_t reply_bytes) {
  uint64_t id = next_id_++;
  std::shared_ptr<transport::FrameStream> stream;
  bool write_now = true;
  if (handler) {
    std::unique_lock lock(pending_mutex_);
    if (reply_budget_ == 0) {
      reply_bytes = 0;
    } else if (std::this_thread::get_id() != reader_id_) {
      // Alone it may exceed the budget (nothing else is then on the way); callers keep their
      // sizes below it (guest/os.h).
      budget_freed_.wait(lock, [&] {
        return broken_ || reply_bytes_reserved_ == 0 ||
               reply_bytes_reserved_ + reply_bytes <= reply_budget_;
      });
    }
    if (broken_ || given_up_) {
      lock.unlock();
      handler(kNotConnected, {});  // every request gets exactly one answer
      return;
    }
    bool counts = opcode != Opcode::kRelease && opcode != Opcode::kReleasedir;
    // A WRITE the host performs before anything sent after it cannot land
    // after a later request's reply: sent, but not "in flight" for the mark.
    bool ordered = opcode == Opcode::kWrite && (hello_.capabilities & kCapOrderedWrites) &&
                   body.size() + tail.size() <= kOrderedWritePayload;
    Pending pending{handler, counts && !ordered, reply_bytes, uint16_t(opcode), {}};
    if (!token_.empty()) {  // kept until answered, to be sent again after a reconnect
      pending.payload.reserve(body.size() + tail.size());
      pending.payload.insert(pending.payload.end(), body.begin(), body.end());
      pending.payload.insert(pending.payload.end(), tail.begin(), tail.end());
    }
    pending_.emplace(id, std::move(pending));
    reply_bytes_reserved_ += reply_bytes;
    if (counts) ++requests_sent_;
    if (counts && !ordered) ++counted_in_flight_;
    // While the host is away the request waits; resend_pending() sends it in its turn.
    write_now = !away_;
    pending_[id].written = write_now;
    stream = stream_;
  } else {
    std::lock_guard lock(pending_mutex_);
    // FORGET and other requests without a reply are not kept: a restored session holds
    // its nodes with a lookup count the guest's next FORGET still ends.
    if (away_ || given_up_) return;
    stream = stream_;
  }
  if (!write_now) return;
  bool sent = stream->write_frame({FrameKind::kRequest, uint16_t(opcode), id, 0}, body, tail);
  if (!sent && handler && token_.empty()) {
    std::unique_lock lock(pending_mutex_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // fail_all() already answered it
    if (it->second.in_flight_counts) --counted_in_flight_;
    release_budget(it->second.reply_bytes);
    pending_.erase(it);
    lock.unlock();
    handler(kNotConnected, {});
  }
  // With a session to resume, a request that could not be written stays pending: the
  // reader sees the broken stream too and sends it again after reconnecting.
}

void Connection::release_budget(uint32_t bytes) {
  if (bytes == 0) return;
  reply_bytes_reserved_ -= bytes;
  budget_freed_.notify_all();
}

void Connection::reader_loop() {
  {
    std::lock_guard lock(pending_mutex_);
    reader_id_ = std::this_thread::get_id();
  }
  for (;;) {
    std::shared_ptr<transport::FrameStream> stream = current_stream();
    FrameHeader header;
    std::vector<uint8_t> payload;
    while (stream->read_frame(header, payload) == transport::FrameStream::ReadStatus::kFrame) {
      if (header.kind == FrameKind::kNotify) {
        if (notify_callback_) notify_callback_(header.opcode, payload);
        continue;
      }
      if (header.kind != FrameKind::kReply) continue;
      Handler handler;
      {
        std::lock_guard lock(pending_mutex_);
        auto it = pending_.find(header.request_id);
        if (it == pending_.end()) continue;  // not ours (an earlier session's leftovers)
        if (it->second.in_flight_counts) --counted_in_flight_;
        release_budget(it->second.reply_bytes);
        handler = std::move(it->second.handler);
        pending_.erase(it);
      }
      if (payload.size() < 4) {
        handler(uint32_t(canonical::Errno::kProto), {});
        continue;
      }
      uint32_t status = load_le32(payload.data());
      handler(status, std::span<const uint8_t>(payload).subspan(4));
    }
    if (closing_ || token_.empty() || !reconnect()) break;
  }
  {
    // Under the lock: a send() either registered before this (and is failed
    // below) or sees broken_ and answers itself.
    std::lock_guard lock(pending_mutex_);
    broken_ = true;
    budget_freed_.notify_all();
  }
  fail_all(kNotConnected);
  if (disconnect_callback_) disconnect_callback_();
}

// The host went away (a crash, a restart, an upgrade). Requests wait in pending_; the same
// address is tried again with backoff (a serial port is kept: QEMU reconnects its end),
// and the session is resumed under its token. Past the reconnect limit the kept requests
// fail with EIO and new ones fail at once, but tries go on (more slowly): when the host is
// back, the mount works again. Returns false when the session cannot be had again.
bool Connection::reconnect() {
  if (resender_.joinable()) resender_.join();
  {
    std::lock_guard lock(pending_mutex_);
    away_ = true;
    for (auto& [id, pending] : pending_) pending.written = false;  // all go again
  }
  std::fprintf(stderr, "fsout: %s: the host went away; waiting for it (up to %u s)\n",
               name_.c_str(), reconnect_seconds_);
  const auto started = std::chrono::steady_clock::now();
  const auto limit = started + std::chrono::seconds(reconnect_seconds_);
  std::optional<transport::Address> address;
  if (!resync_) {
    try {
      address = transport::parse_address(name_);
    } catch (const transport::TransportError&) {
      return false;  // a connection made from an fd: nowhere to connect again
    }
  }
  int backoff_ms = 50;
  bool reported_gone = false;
  while (!closing_) {
    auto now = std::chrono::steady_clock::now();
    if (now >= limit && !reported_gone) {
      std::fprintf(stderr,
                   "fsout: %s: the host has been away for %u s; requests fail (EIO) until it "
                   "is back\n",
                   name_.c_str(), reconnect_seconds_);
      {
        std::lock_guard lock(pending_mutex_);
        given_up_ = true;
      }
      fail_all(uint32_t(canonical::Errno::kIo));
      reported_gone = true;
    }
    std::shared_ptr<transport::FrameStream> stream;
    if (resync_) {
      stream = current_stream();
    } else {
      try {
        stream = std::make_shared<transport::FrameStream>(transport::connect_to(*address), false);
      } catch (const transport::TransportError&) {
      }
    }
    if (stream) {
      try {
        // A serial port: HELLO is said again every 200 ms for a while (the host may not be
        // there yet); a socket: one try per connection.
        // What the old host left half written is no frame of the new one's.
        if (resync_) stream->discard_input();
        auto reply = say_hello(*stream, token_, now + std::chrono::seconds(2));
        {
          std::lock_guard lock(pending_mutex_);
          stream_ = stream;
          hello_.capabilities = reply.capabilities;
          given_up_ = false;
        }
        std::fprintf(
            stderr, "fsout: %s: the host is back after %.1f s; session resumed\n", name_.c_str(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        resender_ = std::thread([this, stream] { resend_pending(stream); });
        return true;
      } catch (const ClientError& error) {
        if (std::string(error.what()).find("no longer has this session") != std::string::npos ||
            std::string(error.what()).find("instead of resuming") != std::string::npos) {
          std::fprintf(stderr, "fsout: %s; requests fail (EIO) until it is mounted again\n",
                       error.what());
          return false;
        }
      }
    }
    if (closing_) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(backoff_ms * 2, reported_gone ? 5000 : 1000);
  }
  return false;
}

// After a resume, on a thread of its own (the reader must read the host's answers
// meanwhile): every request not answered yet goes again, in the order they were first sent
// (the host answers those it performed already from its reply journal); requests sent
// meanwhile wait their turn, so nothing overtakes what was sent before it. Then senders
// write their own requests again.
void Connection::resend_pending(std::shared_ptr<transport::FrameStream> stream) {
  for (;;) {
    std::vector<std::pair<uint64_t, std::pair<uint16_t, std::vector<uint8_t>>>> batch;
    {
      std::lock_guard lock(pending_mutex_);
      for (auto& [id, pending] : pending_)
        if (!pending.written) {
          pending.written = true;
          batch.push_back({id, {pending.opcode, pending.payload}});
        }
      if (batch.empty()) {
        away_ = false;
        return;
      }
    }
    std::sort(batch.begin(), batch.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& [id, request] : batch)
      if (!stream->write_frame({FrameKind::kRequest, request.first, id, 0}, request.second))
        return;  // broken again: the reader reconnects
  }
}

uint64_t Connection::quiet_mark() {
  std::lock_guard lock(pending_mutex_);
  return counted_in_flight_ == 0 ? requests_sent_ + 1 : 0;
}

bool Connection::quiet_since(uint64_t mark) {
  std::lock_guard lock(pending_mutex_);
  return mark != 0 && requests_sent_ == mark;
}

void Connection::fail_all(uint32_t status) {
  std::unordered_map<uint64_t, Pending> pending;
  {
    std::lock_guard lock(pending_mutex_);
    pending.swap(pending_);
    counted_in_flight_ = 0;
    reply_bytes_reserved_ = 0;
    budget_freed_.notify_all();
  }
  for (auto& [id, request] : pending) request.handler(status, {});
}

}  // namespace fsout::client
