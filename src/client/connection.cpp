#include "client/connection.h"

#include <sys/utsname.h>

#include <cerrno>
#include <chrono>
#include <cstring>
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
    : stream_(std::make_unique<transport::FrameStream>(fd, resync)),
      name_(name),
      reply_budget_(options.reply_budget) {
  say_hello(options);
}

void Connection::start() {
  if (!reader_.joinable()) reader_ = std::thread([this] { reader_loop(); });
}

Connection::~Connection() {
  close();
  if (reader_.joinable()) reader_.join();
}

void Connection::close() { stream_->shutdown(); }

void Connection::say_hello(const Options& options) {
  HelloRequest request;
  request.min_version = options.min_version;
  request.max_version = options.max_version;
  request.capabilities = options.capabilities;
  request.max_message = options.max_message;
  request.guest_os.value = options.guest_os;
  request.export_name.value = options.export_name;
  std::vector<uint8_t> body;
  encode_message(body, request);
  uint64_t id = next_id_++;
  if (!stream_->write_frame({FrameKind::kRequest, uint16_t(Opcode::kHello), id, 0}, body))
    throw ClientError(name_ + ": connection lost while saying HELLO");
  // A serial port reads as end-of-stream while nobody is at the host end:
  // wait for the host a while, saying HELLO again now and then.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  // Until HELLO is answered nothing else is in flight: read inline. On a
  // serial stream, replies of an earlier session may come first: skip them.
  for (;;) {
    FrameHeader header;
    std::vector<uint8_t> payload;
    auto status = stream_->read_frame(header, payload);
    if (status == transport::FrameStream::ReadStatus::kClosed && stream_->resyncs() &&
        std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      id = next_id_++;
      if (!stream_->write_frame({FrameKind::kRequest, uint16_t(Opcode::kHello), id, 0}, body))
        throw ClientError(name_ + ": connection lost while saying HELLO");
      continue;
    }
    if (status != transport::FrameStream::ReadStatus::kFrame)
      throw ClientError(name_ + ": the server closed the connection during HELLO" +
                        (status == transport::FrameStream::ReadStatus::kFault
                             ? " (" + stream_->fault() + ")"
                             : std::string()));
    if (header.kind != FrameKind::kReply || header.request_id != id) continue;
    uint32_t error = decode_reply(payload, hello_);
    if (error == kMalformedReply) throw ClientError(name_ + ": malformed HELLO reply");
    if (error != 0) {
      int native = canonical::errno_from_wire(error).value_or(EIO);
      if (native == ESTALE)  // the host's export directory was deleted or replaced
        throw ClientError(name_ +
                          ": server refused the session: its export directory is gone "
                          "(deleted or replaced on the host; see fsoutd's log)");
      throw ClientError(name_ + ": server refused the session: " + std::strerror(native));
    }
    if (hello_.version == 0 || hello_.version < options.min_version ||
        hello_.version > options.max_version)
      throw ClientError(name_ + ": protocol version mismatch: server speaks " +
                        std::to_string(hello_.min_version) + ".." +
                        std::to_string(hello_.max_version) + ", this client " +
                        std::to_string(options.min_version) + ".." +
                        std::to_string(options.max_version));
    break;
  }
  stream_->set_max_payload(std::max(hello_.max_message, 64u * 1024));
  // Leave room for the fixed fields next to the data.
  max_io_ = std::min<uint32_t>(kMaxIoSize, hello_.max_message - 4096);
}

void Connection::send(Opcode opcode, std::span<const uint8_t> body, std::span<const uint8_t> tail,
                      Handler handler, uint32_t reply_bytes) {
  uint64_t id = next_id_++;
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
    if (broken_) {
      lock.unlock();
      handler(kNotConnected, {});  // every request gets exactly one answer
      return;
    }
    bool counts = opcode != Opcode::kRelease && opcode != Opcode::kReleasedir;
    // A WRITE the host performs before anything sent after it cannot land
    // after a later request's reply: sent, but not "in flight" for the mark.
    bool ordered = opcode == Opcode::kWrite && (hello_.capabilities & kCapOrderedWrites) &&
                   body.size() + tail.size() <= kOrderedWritePayload;
    pending_.emplace(id, Pending{handler, counts && !ordered, reply_bytes});
    reply_bytes_reserved_ += reply_bytes;
    if (counts) ++requests_sent_;
    if (counts && !ordered) ++counted_in_flight_;
  }
  bool sent = stream_->write_frame({FrameKind::kRequest, uint16_t(opcode), id, 0}, body, tail);
  if (!sent && handler) {
    std::unique_lock lock(pending_mutex_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;  // fail_all() already answered it
    if (it->second.in_flight_counts) --counted_in_flight_;
    release_budget(it->second.reply_bytes);
    pending_.erase(it);
    lock.unlock();
    handler(kNotConnected, {});
  }
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
  FrameHeader header;
  std::vector<uint8_t> payload;
  while (stream_->read_frame(header, payload) == transport::FrameStream::ReadStatus::kFrame) {
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
  {
    // Under the lock: a send() either registered before this (and is failed
    // below) or sees broken_ and answers itself.
    std::lock_guard lock(pending_mutex_);
    broken_ = true;
    budget_freed_.notify_all();
  }
  fail_all();
  if (disconnect_callback_) disconnect_callback_();
}

uint64_t Connection::quiet_mark() {
  std::lock_guard lock(pending_mutex_);
  return counted_in_flight_ == 0 ? requests_sent_ + 1 : 0;
}

bool Connection::quiet_since(uint64_t mark) {
  std::lock_guard lock(pending_mutex_);
  return mark != 0 && requests_sent_ == mark;
}

void Connection::fail_all() {
  std::unordered_map<uint64_t, Pending> pending;
  {
    std::lock_guard lock(pending_mutex_);
    pending.swap(pending_);
    counted_in_flight_ = 0;
    reply_bytes_reserved_ = 0;
    budget_freed_.notify_all();
  }
  for (auto& [id, request] : pending) request.handler(kNotConnected, {});
}

}  // namespace fsout::client
