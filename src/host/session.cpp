#include "host/session.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

#include "protocol/canonical.h"
#include "protocol/codec.h"

namespace fsout::host {

using namespace protocol;

void install_session_signals() {
  signal(SIGPIPE, SIG_IGN);
  struct sigaction action {};
  action.sa_handler = [](int) {};
  action.sa_flags = 0;  // no SA_RESTART: a blocked fcntl(F_OFD_SETLKW) returns EINTR
  sigemptyset(&action.sa_mask);
  sigaction(SIGURG, &action, nullptr);
}

Session::Session(std::unique_ptr<transport::FrameStream> stream, SessionConfig config,
                 std::string peer)
    : stream_(std::move(stream)), config_(std::move(config)), peer_(std::move(peer)) {
  sender_ = std::thread([this] { sender_loop(); });
  if (config_.watcher) config_.watcher->subscribe(this);
}

Session::~Session() {
  stop();
  if (config_.watcher) config_.watcher->unsubscribe(this);
  {
    std::lock_guard lock(outbox_mutex_);
    outbox_closing_ = true;
  }
  outbox_ready_.notify_all();
  sender_.join();
  std::unique_lock lock(mutex_);
  wait_for_waiters(lock);
  if (fs_ && keep_state_) fs_->keep_state();
  fs_.reset();
}

void Session::keep_state_for_restart() {
  keep_state_ = true;
  stream_->stop_reading();
}

void Session::wait_for_waiters(std::unique_lock<std::mutex>& lock) {
  // A waiter may be about to block when the first interruption arrives:
  // interrupt again until every one of them has returned.
  while (waiters_ > 0) {
    if (fs_) fs_->cancel_waits();
    changed_.wait_for(lock, std::chrono::milliseconds(50));
  }
}

bool Session::is_blocking_lock(const Job& job) const {
  if (job.header.opcode == uint16_t(Opcode::kSetlk)) {
    SetlkRequest request;
    return decode_message(job.payload, request) && request.wait;
  }
  if (job.header.opcode == uint16_t(Opcode::kFlock)) {
    FlockRequest request;
    return decode_message(job.payload, request) &&
           !(request.operation & (kFlockNonblock | kFlockUnlock));
  }
  return false;
}

bool Session::is_quick(const Job& job) const {
  switch (Opcode(job.header.opcode)) {
    case Opcode::kLookup:
    case Opcode::kSymlink:
    case Opcode::kMknod:
    case Opcode::kMkdir:
    case Opcode::kLink:
    case Opcode::kCreate:
      // These add nodes; with the table nearly full they may wait for FORGETs,
      // which only a reading thread can take in.
      return !fs_->short_of_nodes();
    case Opcode::kGetattr:
    case Opcode::kReadlink:
    case Opcode::kOpen:
    case Opcode::kFlush:
    case Opcode::kOpendir:
    case Opcode::kReleasedir:
    case Opcode::kAccess:
    case Opcode::kGetxattr:
    case Opcode::kSetxattr:
    case Opcode::kListxattr:
    case Opcode::kRemovexattr:
    case Opcode::kLseek:
    case Opcode::kGetlk:
    case Opcode::kSetlk:  // blocking ones were sent to waiters before
    case Opcode::kFlock:
      return true;
    case Opcode::kWrite:
      // Small writes land in the page cache; large ones may wait for the
      // disk (dirty-page throttling) and go to another thread. Performed
      // here, small ones are done before the next request is even read:
      // the order kCapOrderedWrites promises.
      return job.payload.size() <= kOrderedWritePayload;
    case Opcode::kSetattr: {
      SetattrRequest request;  // a truncation may free many blocks: not quick
      return decode_message(job.payload, request) && !(request.valid & kSetSize);
    }
    default:
      return false;  // data, sync, unlink/rmdir/rename/release (may free blocks), listings
  }
}

void Session::start_waiter(Job job) {
  {
    std::lock_guard lock(mutex_);
    ++waiters_;
  }
  std::thread([this, job = std::move(job)] {
    dispatch(job);
    std::lock_guard lock(mutex_);
    --waiters_;
    changed_.notify_all();
  }).detach();  // the session waits for waiters_ to reach zero before it ends
}

void Session::stop() {
  stopping_ = true;
  stream_->shutdown();
}

void Session::log(const std::string& message, log::Level level) {
  if (!log::enabled(level)) return;
  const std::string line = peer_ + ": " + message;
  switch (level) {
    case log::Level::kError:
      return log::error(line);
    case log::Level::kWarning:
      return log::warning(line);
    case log::Level::kInfo:
      return log::info(line);
    case log::Level::kDebug:
      return log::debug(line);
  }
}

// Refusals that say something to an administrator: permissions, the read-only export,
// names outside it, limits, a full disk.
void Session::note_refusal(uint16_t opcode, int error) {
  bool refusal = false;
  switch (error) {
    case EACCES:
    case EPERM:
    case EROFS:
    case EXDEV:
    case EMFILE:
    case ENFILE:
    case ENOSPC:
    case EDQUOT:
    case ENOSYS:
      refusal = true;
      break;
    default:
      break;  // ENOENT, EEXIST, ...: the normal business of a file system
  }
  // Failed LOOKUPs are common: nothing is made for them unless debug lines are wanted.
  if (!refusal && !log::enabled(log::Level::kDebug)) return;
  const char* name = opcode_name(opcode);
  const std::string what = std::string("refused ") + (name ? name : "an unknown operation") + ": " +
                           std::strerror(error);
  bool first = false;
  if (refusal) {
    std::lock_guard lock(info_mutex_);
    const std::pair<uint16_t, int> kind{opcode, error};
    first =
        std::find(refusals_logged_.begin(), refusals_logged_.end(), kind) == refusals_logged_.end();
    if (first) refusals_logged_.push_back(kind);
  }
  if (first)
    log(what + " (the first of its kind in this session; later ones are counted, see fsout admin)");
  else
    log(what, log::Level::kDebug);
}

nlohmann::json Session::describe() {
  nlohmann::json out;
  {
    std::lock_guard lock(info_mutex_);
    out["peer"] = peer_;
    out["guest_os"] = guest_os_;
    out["resumed"] = resumes_;
  }
  out["uptime_s"] =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count();
  FileSystem::Held held;
  {
    std::lock_guard lock(notify_mutex_);  // against a HELLO replacing fs_
    if (fs_) held = fs_->held();
  }
  out["nodes"] = held.nodes;
  out["handles"] = held.handles;
  out.update(stats_.snapshot().to_json());
  return out;
}

void Session::fault(const std::string& why) {
  if (faulted_.exchange(true)) return;
  if (stream_->resyncs()) {
    log("protocol fault: " + why + "; dropping the session, waiting for a new HELLO",
        log::Level::kWarning);
  } else {
    log("protocol fault: " + why + "; closing the session", log::Level::kWarning);
    stream_->shutdown();
  }
}

void Session::run() {
  log("connected");
  serve_loop();
  std::vector<std::thread> helpers;
  {
    std::lock_guard lock(helpers_mutex_);
    helpers_closed_ = true;  // none started after this
    helpers.swap(helpers_);
  }
  for (auto& helper : helpers) helper.join();
  const StatsSnapshot totals = stats_.snapshot();
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  log(std::string(faulted_ ? "closed after a protocol fault" : "disconnected") + " after " +
      std::to_string(seconds.count()) + " s: " + std::to_string(totals.requests()) + " requests, " +
      std::to_string(totals.errors()) + " errors, " + std::to_string(totals.bytes_read) +
      " bytes read, " + std::to_string(totals.bytes_written) + " written");
}

void Session::serve_loop() {
  {
    std::lock_guard lock(notify_mutex_);
    own_threads_.push_back(gettid());
  }
  // Kept across iterations: unlocking and relocking at once would wake a
  // waiting thread for nothing.
  std::unique_lock reading(reader_mutex_, std::defer_lock);
  for (;;) {
    if (!reading.owns_lock()) reading.lock();
    if (stream_done_) return;
    Job job;
    auto status = stream_->read_frame(job.header, job.payload);
    if (status == transport::FrameStream::ReadStatus::kFault) fault(stream_->fault());
    if (status != transport::FrameStream::ReadStatus::kFrame) {
      stream_done_ = true;  // the threads waiting to read see it and end
      return;
    }
    if (faulted_) {
      if (!stream_->resyncs()) {
        stream_done_ = true;
        return;
      }
      reset_state();  // forget the misbehaving session; only a HELLO revives it
      faulted_ = false;
    }
    if (job.header.kind != FrameKind::kRequest) {
      fault("unexpected frame kind from the guest");
      continue;
    }
    if (job.header.opcode == uint16_t(Opcode::kHello)) {
      // A new HELLO starts the session again (a restarted guest module on a
      // stream that stayed open): finish what is running, drop all state.
      // A resume of the session this stream serves keeps its state.
      reset_state(resumes_this_session(job));
      hello(job);
      continue;
    }
    if (!fs_) {
      if (!stream_->resyncs()) fault("request before HELLO");
      continue;  // a resyncing stream waits for HELLO and ignores the rest
    }
    if (job.header.opcode == uint16_t(Opcode::kForget)) {
      // Here, while reading: quick, no reply, and threads waiting for room
      // in the node table must see it while they wait.
      dispatch(job);
      continue;
    }
    if (is_blocking_lock(job)) {
      start_waiter(std::move(job));
      continue;
    }
    if (is_quick(job)) {
      // Metadata work that takes microseconds: done while still the reader,
      // so no other thread is woken to read meanwhile (that wake-up costs
      // more than the work).
      dispatch(job);
      after_request();
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      ++in_flight_;
    }
    reading.unlock();  // the next thread reads while this one works
    dispatch(job);
    after_request();
    std::lock_guard lock(mutex_);
    if (--in_flight_ == 0) changed_.notify_all();
  }
}

void Session::reset_state(bool keep) {
  // Called by the reading thread: no new request starts meanwhile.
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return in_flight_ == 0; });
  wait_for_waiters(lock);
  if (keep) return;
  notify_ = false;
  dir_attrs_ = false;
  std::lock_guard notify_lock(notify_mutex_);
  fs_.reset();
}

bool Session::resumes_this_session(const Job& job) {
  HelloRequest request;
  return fs_ && fs_->state() && decode_message(job.payload, request) &&
         (request.capabilities & kCapResume) && request.session.value == fs_->state()->token();
}

void Session::changed(const HostChange& change, pid_t thread) {
  if (!notify_) return;
  std::vector<NotifyMessage> notes;
  {
    std::lock_guard lock(notify_mutex_);
    // The guest made this change itself through us: it knows.
    if (std::find(own_threads_.begin(), own_threads_.end(), thread) != own_threads_.end()) return;
    if (fs_) fs_->notifications_for(change, notes);
  }
  send_notifications(notes);
}

void Session::lost_changes() {
  if (!notify_) return;
  std::vector<NotifyMessage> notes;
  {
    std::lock_guard lock(notify_mutex_);
    if (fs_) fs_->forget_everything(notes);
  }
  log("change events were lost; the guest forgets everything it cached", log::Level::kWarning);
  send_notifications(notes);
}

void Session::send_notifications(const std::vector<NotifyMessage>& notes) {
  // Queued for the sender thread: the watcher's thread serves every session
  // and must not wait for one guest that reads its stream slowly.
  {
    std::lock_guard lock(outbox_mutex_);
    if (outbox_.size() + notes.size() > kMaxOutbox) {
      outbox_.clear();  // too far behind: the guest forgets everything instead
      outbox_overflowed_ = true;
    } else {
      outbox_.insert(outbox_.end(), notes.begin(), notes.end());
    }
  }
  outbox_ready_.notify_one();
}

void Session::sender_loop() {
  std::vector<uint8_t> body;
  for (;;) {
    std::deque<NotifyMessage> batch;
    bool overflowed;
    {
      std::unique_lock lock(outbox_mutex_);
      outbox_ready_.wait(lock,
                         [&] { return outbox_closing_ || outbox_overflowed_ || !outbox_.empty(); });
      if (outbox_closing_) return;
      batch.swap(outbox_);
      overflowed = std::exchange(outbox_overflowed_, false);
    }
    if (overflowed) {
      std::lock_guard lock(notify_mutex_);
      std::vector<NotifyMessage> all;
      if (fs_) fs_->forget_everything(all);
      batch.insert(batch.end(), all.begin(), all.end());
    }
    for (const auto& note : batch) {
      body.clear();
      encode_message(body, note);
      if (!stream_->write_frame({FrameKind::kNotify, 0, 0, 0}, body)) break;
      stats_.add_notifications(1);
    }
  }
}

void Session::send_error(const FrameHeader& request, int native_errno) {
  std::vector<uint8_t> body;
  // A host errno without a canonical number goes as EIO, the generic failure.
  encode_error_reply(body, canonical::errno_to_wire(native_errno)
                               .value_or(static_cast<uint32_t>(canonical::Errno::kIo)));
  stream_->write_frame({FrameKind::kReply, request.opcode, request.request_id, 0}, body);
}

namespace {
// The directories whose names a request changes (for kCapDirAttrs).
struct Directories {
  NodeId first, second;  // 0: none
};
template <class Request>
Directories changed_directories(const Request&) {
  return {};
}
Directories changed_directories(const CreateRequest& r) { return {r.parent, {}}; }
Directories changed_directories(const MkdirRequest& r) { return {r.parent, {}}; }
Directories changed_directories(const MknodRequest& r) { return {r.parent, {}}; }
Directories changed_directories(const SymlinkRequest& r) { return {r.parent, {}}; }
Directories changed_directories(const RemoveRequest& r) { return {r.parent, {}}; }
Directories changed_directories(const LinkRequest& r) { return {r.new_parent, {}}; }
Directories changed_directories(const RenameRequest& r) {
  return {r.parent, r.new_parent == r.parent ? NodeId{} : r.new_parent};
}

// The requests whose repetition could answer differently (the reply journal,
// session_state.h), the name each acts on first, and what that name was before.
template <class Request>
constexpr bool kMaybeJournaled =
    std::is_same_v<Request, CreateRequest> || std::is_same_v<Request, MkdirRequest> ||
    std::is_same_v<Request, MknodRequest> || std::is_same_v<Request, SymlinkRequest> ||
    std::is_same_v<Request, LinkRequest> || std::is_same_v<Request, RemoveRequest> ||
    std::is_same_v<Request, RenameRequest> || std::is_same_v<Request, WriteRequest>;
template <class Request>
std::pair<NodeId, std::string> first_name(const Request& r) {
  if constexpr (std::is_same_v<Request, LinkRequest>)
    return {r.new_parent, r.new_name.value};
  else if constexpr (std::is_same_v<Request, WriteRequest>)
    return {kRootNode, ""};
  else
    return {r.parent, r.name.value};
}
// For a request that goes through the journal: what its name named (its file's end, for an
// append) just before it runs. nullopt for requests that do not go through it.
template <class Request>
std::optional<uint64_t> journal_before(const Request& r, FileSystem& fs) {
  if (!fs.state()) return std::nullopt;
  if constexpr (std::is_same_v<Request, WriteRequest>) {
    return fs.append_size(r.handle);  // only O_APPEND writes are not idempotent
  } else {
    auto [parent, name] = first_name(r);
    auto inode = fs.inode_of(parent, name);
    return inode.ok() ? inode.value() : 0;
  }
}

// What a reply carries besides its data or entries (kDefaultMaxMessage is 1 MiB of READ data
// plus this).
constexpr uint32_t kReplyOverhead = 4096;

// SECURITY: the guest chooses the sizes in its requests, the reply must still fit the
// message size negotiated in HELLO (and the host's memory must not grow with the guest's
// wish): sizes are cut to `room` before the request runs. A READ then returns fewer bytes,
// a listing one page of entries (the guest asks again from the next offset), an attribute
// value that does not fit ERANGE.
template <class Request>
void fit_reply(Request&, uint32_t) {}
void fit_reply(ReadRequest& r, uint32_t room) { r.size = std::min(r.size, room); }
void fit_reply(OpenReadRequest& r, uint32_t room) { r.size = std::min(r.size, room); }
void fit_reply(ReaddirRequest& r, uint32_t room) { r.size = std::min(r.size, room); }
void fit_reply(GetxattrRequest& r, uint32_t room) { r.size = std::min(r.size, room); }
void fit_reply(ListxattrRequest& r, uint32_t room) { r.size = std::min(r.size, room); }
}  // namespace

// Decode, perform, reply: the one place where a back end's Result becomes a
// reply (or a failed decode becomes a protocol fault).
template <class Request, class Reply, class Call>
bool Session::serve(const Job& job, Call call) {
  Request request;
  if (!decode_message(job.payload, request)) {
    fault(std::string("malformed ") + opcode_name(job.header.opcode) + " request");
    return false;
  }
  const uint32_t max_payload = stream_->max_payload();
  fit_reply(request, max_payload > kReplyOverhead ? max_payload - kReplyOverhead : 0);
  StateLog* journal = nullptr;
  if constexpr (kMaybeJournaled<Request>) {
    if (std::optional<uint64_t> before = journal_before(request, *fs_)) {
      if (answered_from_journal(job, request)) return true;
      journal = fs_->state();
      journal->intent(job.header.request_id, job.header.opcode, *before);
    }
  }
  Result<Reply> result = call(request);
  if (!has_reply(Opcode(job.header.opcode))) return result.ok();
  // A lock wait cut short by a graceful stop is not answered: the guest asks the next
  // fsoutd again.
  if (keep_state_ && !result.ok() && result.error() == EINTR) return false;
  if (!result.ok()) note_refusal(job.header.opcode, result.error());
  if constexpr (std::is_same_v<Reply, DataReply>) {
    if (result.ok()) stats_.add_read(result.value().data.data.size());
  }
  if constexpr (std::is_same_v<Request, WriteRequest>) {
    if (result.ok()) stats_.add_written(result.value().written);
  }
  // A journaled reply (these carry no tail) is encoded once: saved, then sent.
  std::vector<uint8_t> body;
  if (journal) {
    if (result.ok())
      encode_reply(body, result.value());
    else
      encode_error_reply(body, canonical::errno_to_wire(result.error())
                                   .value_or(static_cast<uint32_t>(canonical::Errno::kIo)));
    journal->done(job.header.request_id, job.header.opcode, body);
  }
  if (!result.ok()) {
    if (journal)
      send_payload(job, body);
    else
      send_error(job.header, result.error());
    return false;
  }
  // The changed directories' attributes go first, in the same write: the
  // guest has them when the reply makes its kernel forget the old ones.
  std::vector<uint8_t> before;
  if (dir_attrs_) {
    Directories dirs = changed_directories(request);
    for (NodeId dir : {dirs.first, dirs.second}) {
      if (dir.value == 0) continue;
      auto attr = fs_->Getattr(GetattrRequest{dir, HandleId{0}});
      if (!attr.ok()) continue;
      std::vector<uint8_t> notice;
      encode_message(notice, AttrNotice{dir, attr.value().attr});
      transport::append_frame(
          before, {FrameKind::kNotify, kNotifyAttrOpcode, job.header.request_id, 0}, notice);
    }
  }
  std::span<const uint8_t> tail;
  if (!journal) {
    body.reserve(128);
    tail = encode_reply_deferring_tail(body, result.value());
  }
  if (body.size() + tail.size() > max_payload) {  // fit_reply missed a case: a bug of ours
    log(std::string("refused to send a ") + opcode_name(job.header.opcode) + " reply of " +
            std::to_string(body.size() + tail.size()) + " bytes (the session allows " +
            std::to_string(max_payload) + ")",
        log::Level::kError);
    send_error(job.header, EOVERFLOW);
    return false;
  }
  stream_->write_frame({FrameKind::kReply, job.header.opcode, job.header.request_id, 0}, body, tail,
                       before);
  return true;
}

void Session::send_payload(const Job& job, const std::vector<uint8_t>& payload) {
  stream_->write_frame({FrameKind::kReply, job.header.opcode, job.header.request_id, 0}, payload);
}

// A request the guest sends again after a restart, that the journal knows: answered as
// before if its reply was saved; if fsoutd died while performing it, whether it was
// performed is read from the file system (the name it acts on), and if it was the answer
// is made from what is there now.
template <class Request>
bool Session::answered_from_journal(const Job& job, const Request& request) {
  auto entry = fs_->state()->journaled(job.header.request_id);
  if (!entry || entry->opcode != job.header.opcode) return false;
  if (entry->done) {
    send_payload(job, entry->reply);
    return true;
  }
  auto [parent, name] = first_name(request);
  Result<uint64_t> now = uint64_t(0);
  if constexpr (!std::is_same_v<Request, WriteRequest>) now = fs_->inode_of(parent, name);
  if (!now.ok()) return false;
  std::vector<uint8_t> payload;
  if constexpr (std::is_same_v<Request, RemoveRequest> || std::is_same_v<Request, RenameRequest>) {
    if (entry->before == 0 || now.value() == entry->before) return false;  // not performed
    encode_reply(payload, Empty{});
  } else if constexpr (std::is_same_v<Request, WriteRequest>) {
    if (!fs_->appended(request.handle, entry->before, request.data.data)) return false;
    encode_reply(payload, WriteReply{uint32_t(request.data.data.size())});
  } else {
    if (entry->before != 0 || now.value() == 0) return false;  // not performed
    auto found = fs_->Lookup(LookupRequest{parent, Name{name}});
    if (!found.ok()) return false;
    if constexpr (std::is_same_v<Request, CreateRequest>) {
      auto opened = fs_->Open(OpenRequest{
          found.value().node,
          request.flags & ~canonical::kOpenCreat & ~canonical::kOpenExcl & ~canonical::kOpenTrunc});
      if (!opened.ok()) return false;
      encode_reply(payload, CreateReply{found.value(), opened.value().handle});
    } else {
      encode_reply(payload, found.value());
    }
  }
  fs_->state()->done(job.header.request_id, job.header.opcode, payload);
  send_payload(job, payload);
  return true;
}

void Session::dispatch(const Job& job) {
  if (faulted_) return;
  FileSystem& fs = *fs_;
  const auto began = std::chrono::steady_clock::now();
  bool ok = false;
  switch (job.header.opcode) {
#define FSOUT_CASE(number, name, request, reply)                                   \
  case number:                                                                     \
    ok = serve<request, reply>(job, [&](const request& r) { return fs.name(r); }); \
    break;
    FSOUT_FILE_OPERATIONS(FSOUT_CASE)
#undef FSOUT_CASE
    default:
      // An operation from a newer protocol: refuse it, keep the session.
      note_refusal(job.header.opcode, ENOSYS);
      send_error(job.header, ENOSYS);
      break;
  }
  stats_.record(job.header.opcode, !ok, std::chrono::steady_clock::now() - began);
}

void Session::after_request() {
  // fs_ stays while requests are in flight (a HELLO waits for them).
  if (!notify_ || !fs_) return;
  std::vector<NotifyMessage> notes;
  fs_->make_room(notes);
  if (!notes.empty()) send_notifications(notes);
}

// fsoutd holds the export open from its start: when the directory is deleted, or another
// one is put in its place, a new guest would get the old, dead one (empty, every create
// ENOENT). Empty when the export is still what the path names.
std::string Session::export_gone() const {
  struct stat held {
  }, named{};
  if (fstat(config_.root_fd, &held) != 0 || held.st_nlink == 0) return "was deleted";
  if (config_.export_moved && config_.watcher) config_.watcher->catch_up();
  if (config_.export_moved && *config_.export_moved)
    return "was renamed or removed on the host, and its name leads elsewhere or nowhere";
  if (config_.root_path.empty()) return "";
  if (stat(config_.root_path.c_str(), &named) != 0) return "was deleted";
  if (named.st_dev != held.st_dev || named.st_ino != held.st_ino)
    return "was replaced by another directory";
  return "";
}

void Session::hello(const Job& job) {
  HelloRequest request;
  if (!decode_message(job.payload, request)) {
    fault("malformed HELLO");
    return;
  }
  HelloReply reply;
  reply.min_version = kProtocolVersion;
  reply.max_version = kProtocolVersion;
  bool compatible =
      request.min_version <= kProtocolVersion && kProtocolVersion <= request.max_version;
  if (!compatible) {
    // version 0 says "no common version"; the guest reports our range.
    reply.version = 0;
    std::vector<uint8_t> body;
    encode_reply(body, reply);
    stream_->write_frame({FrameKind::kReply, job.header.opcode, job.header.request_id, 0}, body);
    fault("guest speaks protocol versions " + std::to_string(request.min_version) + ".." +
          std::to_string(request.max_version) + ", this host only " +
          std::to_string(kProtocolVersion));
    return;
  }
  if (!config_.export_name.empty() && !request.export_name.value.empty() &&
      request.export_name.value != config_.export_name) {
    send_error(job.header, ENOENT);
    fault("guest asked for export '" + request.export_name.value + "'");
    return;
  }
  if (std::string gone = export_gone(); !gone.empty()) {
    log("the export " + config_.export_label + " " + gone +  // logged before the guest hears it
            "; refusing the guest (restart fsoutd to serve what is there now)",
        log::Level::kWarning);
    send_error(job.header, ESTALE);
    if (!faulted_.exchange(true) && !stream_->resyncs()) stream_->shutdown();
    return;
  }
  // Restarts: a guest that asks to resume gets its session back, as this stream still has
  // it or as a restarted fsoutd restored it; a new session gets a token and a state file.
  const bool resumable = config_.parked && (request.capabilities & kCapResume);
  std::unique_ptr<FileSystem> fs;
  std::string token;
  bool resumed = false;
  if (resumable && !request.session.value.empty()) {
    token = request.session.value;
    if (fs_ && fs_->state() && fs_->state()->token() == token) {
      std::lock_guard lock(notify_mutex_);
      fs = std::move(fs_);
    } else {
      fs = config_.parked->take(token);
    }
    if (!fs) {
      log("the guest asked to resume a session this host does not have (its state is gone: "
          "a reboot, another --state-dir, or it ended); refusing",
          log::Level::kWarning);
      send_error(job.header, ENOENT);
      if (!faulted_.exchange(true) && !stream_->resyncs()) stream_->shutdown();
      return;
    }
    resumed = true;
  } else {
    std::unique_ptr<StateLog> state;
    if (resumable) {
      state = config_.parked->create(token);
      if (!state)
        log(std::string("no state kept for restarts: ") + std::strerror(errno),
            log::Level::kWarning);
    }
    fs = make_passthrough(config_.root_fd, config_.limits, config_.ids, std::move(state));
    if (!fs) {
      send_error(job.header, EIO);
      return;
    }
    if (config_.read_only) fs = make_read_only(std::move(fs));
    if (!fs->state()) token.clear();
  }
  auto root = fs->root_attr();
  if (!root.ok()) {
    send_error(job.header, root.error());
    return;
  }
  reply.version = kProtocolVersion;
  reply.capabilities = request.capabilities & kCapAllKnown;
  if (!config_.watcher) reply.capabilities &= ~kCapNotify;
  if (token.empty()) reply.capabilities &= ~kCapResume;
  reply.session.value = token;
  if ((reply.capabilities & kCapNotify) && !notify_) fs->track_changes();
  reply.max_message = std::min(std::max(request.max_message, 64u * 1024), config_.max_message);
  reply.flags = (config_.read_only ? kHelloReadOnly : 0) | (resumed ? kHelloResumed : 0);
  reply.root = kRootNode;
  reply.root_attr = root.value();
  {
    std::lock_guard lock(notify_mutex_);
    fs_ = std::move(fs);
  }
  notify_ = (reply.capabilities & kCapNotify) != 0;
  dir_attrs_ = (reply.capabilities & kCapDirAttrs) != 0;
  stream_->set_max_payload(reply.max_message);
  {
    std::lock_guard lock(info_mutex_);
    guest_os_ = request.guest_os.value;
    resumes_ += resumed ? 1 : 0;
  }
  log(std::string(resumed ? "session resumed" : "session started") + ": guest " +
      request.guest_os.value + ", protocol " + std::to_string(reply.version));
  start_helpers();
  std::vector<uint8_t> body;
  encode_reply(body, reply);
  stream_->write_frame({FrameKind::kReply, job.header.opcode, job.header.request_id, 0}, body);
  if (resumed && notify_) {
    // What changed on the host while no daemon watched is unknown: the guest forgets what
    // it cached (its nodes stay valid).
    std::vector<NotifyMessage> notes;
    {
      std::lock_guard lock(notify_mutex_);
      fs_->forget_everything(notes);
    }
    send_notifications(notes);
  }
}

// ---- ParkedSessions

ParkedSessions::ParkedSessions(int dir_fd, int root_fd, std::chrono::seconds window)
    : dir_fd_(dir_fd), root_fd_(root_fd), window_(window) {
  struct stat st;
  if (fstat(root_fd_, &st) == 0) root_device_ = st.st_dev, root_inode_ = st.st_ino;
}

ParkedSessions::~ParkedSessions() {
  std::lock_guard lock(mutex_);
  for (auto& [token, parked] : parked_) parked.fs->keep_state();  // for the next fsoutd
  parked_.clear();
  close(dir_fd_);
}

std::vector<std::string> ParkedSessions::restore_all(Limits limits,
                                                     std::shared_ptr<const IdMap> ids) {
  std::vector<std::string> lines;
  int fd = openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dir = fd >= 0 ? fdopendir(fd) : nullptr;
  if (!dir) return lines;
  std::vector<std::string> tokens;
  while (dirent* d = readdir(dir)) {
    std::string name = d->d_name;
    if (name.size() == 38 && name.compare(32, 6, ".state") == 0 &&
        is_session_token(name.substr(0, 32)))
      tokens.push_back(name.substr(0, 32));
  }
  closedir(dir);
  const auto until = std::chrono::steady_clock::now() + window_;
  for (const auto& token : tokens) {
    // Another export's sessions (a state directory shared by mistake) are left alone.
    auto saved = StateLog::load(dir_fd_, token);
    if (!saved || saved->root_device != root_device_ || saved->root_inode != root_inode_) continue;
    std::string report;
    auto fs = restore_passthrough(root_fd_, limits, ids, dir_fd_, token, *saved, report);
    lines.push_back(
        "session " + token.substr(0, 8) + "… saved by an earlier fsoutd: " +
        (fs ? report + "; kept " + std::to_string(window_.count()) + " s for its guest to resume it"
            : "cannot be restored (" + report + ")"));
    if (!fs) continue;
    std::lock_guard lock(mutex_);
    parked_[token] = Parked{std::move(fs), until};
  }
  return lines;
}

std::unique_ptr<FileSystem> ParkedSessions::take(const std::string& token) {
  std::lock_guard lock(mutex_);
  auto it = parked_.find(token);
  if (it == parked_.end()) return nullptr;
  auto fs = std::move(it->second.fs);
  parked_.erase(it);
  return fs;
}

std::unique_ptr<StateLog> ParkedSessions::create(std::string& token) {
  token = new_session_token();
  if (token.empty()) return nullptr;
  return StateLog::create(dir_fd_, token, root_device_, root_inode_);
}

std::vector<std::string> ParkedSessions::expire() {
  std::vector<std::unique_ptr<FileSystem>> ended;
  std::vector<std::string> lines;
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->second.until > now) {
        ++it;
        continue;
      }
      lines.push_back("session " + it->first.substr(0, 8) +
                      "… was not resumed in time; its files and locks are let go");
      ended.push_back(std::move(it->second.fs));
      it = parked_.erase(it);
    }
  }
  ended.clear();  // outside the lock: closes fds, releases locks, removes the state
  return lines;
}

size_t ParkedSessions::size() {
  std::lock_guard lock(mutex_);
  return parked_.size();
}

// The other serving threads start once a guest has said HELLO: a connection that never
// does costs the daemon two threads (this session's and its sender), not `workers` + 1.
void Session::start_helpers() {
  std::lock_guard lock(helpers_mutex_);
  if (helpers_closed_ || !helpers_.empty()) return;
  try {
    for (unsigned i = 1; i < std::max(1u, config_.workers); ++i)
      helpers_.emplace_back([this] { serve_loop(); });
  } catch (const std::system_error& error) {  // out of threads or memory: serve with fewer
    log(std::string("serving with ") + std::to_string(helpers_.size() + 1) +
            " threads (no more: " + error.what() + ")",
        log::Level::kWarning);
  }
}

}  // namespace fsout::host
