#include "host/session_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace fsout::host {

namespace {

// A record: u32 length of what follows the checksum, u32 checksum (FNV-1a of type and
// payload), u8 type, payload. A record cut short by a crash fails its checksum and ends the
// replay there: it was written before the reply it belongs to, so the guest never heard of
// what it names.
enum Record : uint8_t {
  kHeader = 0,
  kNode,
  kNodeName,
  kNodeOrphan,
  kNodeGone,
  kHandle,
  kHandleGone,
  kFlock,
  kLock,
  kOwnerGone,
  kIntent,
  kDone,
};
constexpr uint64_t kMagic = 0x3174617473747366;  // "fststat1"
constexpr size_t kMaxRecord = 16u << 20;

uint32_t checksum(uint8_t type, const uint8_t* data, size_t size) {
  uint32_t hash = 2166136261u;
  hash = (hash ^ type) * 16777619u;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 16777619u;
  return hash;
}

struct Writer {
  std::vector<uint8_t> out;
  Writer& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Writer& bytes(const void* data, size_t size) {
    u64(size);
    auto p = static_cast<const uint8_t*>(data);
    out.insert(out.end(), p, p + size);
    return *this;
  }
  Writer& str(const std::string& s) { return bytes(s.data(), s.size()); }
};

struct Reader {
  const uint8_t* p;
  size_t left;
  bool ok = true;
  uint64_t u64() {
    if (left < 8) return ok = false, 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
    p += 8, left -= 8;
    return v;
  }
  std::string str() {
    uint64_t size = u64();
    if (!ok || size > left) return ok = false, std::string();
    std::string s(reinterpret_cast<const char*>(p), size);
    p += size, left -= size;
    return s;
  }
};

// Applies one record to the model; false for one that makes no sense.
bool apply(SavedState& state, uint8_t type, Reader& in) {
  switch (type) {
    case kHeader:
      if (in.u64() != kMagic) return false;
      state.root_device = in.u64();
      state.root_inode = in.u64();
      break;
    case kNode: {
      uint64_t id = in.u64();
      SavedNode& node = state.nodes[id];
      node.inode = in.u64();
      node.parent = in.u64();
      node.name = in.str();
      node.handle = in.str();
      break;
    }
    case kNodeName: {
      uint64_t id = in.u64(), parent = in.u64();
      std::string name = in.str();
      if (auto it = state.nodes.find(id); it != state.nodes.end())
        it->second.parent = parent, it->second.name = std::move(name);
      break;
    }
    case kNodeOrphan: {
      uint64_t id = in.u64();
      std::string orphan = in.str();
      if (auto it = state.nodes.find(id); it != state.nodes.end())
        it->second.orphan = std::move(orphan);
      break;
    }
    case kNodeGone:
      state.nodes.erase(in.u64());
      break;
    case kHandle: {
      uint64_t id = in.u64();
      SavedHandle& handle = state.handles[id];
      handle.node = in.u64();
      handle.flags = int(in.u64());
      handle.directory = in.u64() != 0;
      handle.flock = 0;
      break;
    }
    case kHandleGone:
      state.handles.erase(in.u64());
      break;
    case kFlock: {
      uint64_t id = in.u64();
      int operation = int(in.u64());
      if (auto it = state.handles.find(id); it != state.handles.end())
        it->second.flock = operation == LOCK_UN ? 0 : operation;
      break;
    }
    case kLock: {
      uint64_t node = in.u64(), owner = in.u64(), handle = in.u64();
      uint64_t start = in.u64(), end = in.u64();
      short lock_type = short(in.u64());
      SavedLocks& locks = state.locks[{node, owner}];
      locks.handle = handle;
      locks.apply(start, end, lock_type);
      if (locks.ranges.empty()) state.locks.erase({node, owner});
      break;
    }
    case kOwnerGone: {
      uint64_t node = in.u64(), owner = in.u64();
      state.locks.erase({node, owner});
      break;
    }
    case kIntent:
    case kDone: {
      uint64_t request = in.u64();
      uint16_t opcode = uint16_t(in.u64());
      auto [it, fresh] = state.journal.try_emplace(request);
      if (fresh) state.journal_order.push_back(request);
      it->second.opcode = opcode;
      if (type == kIntent) {
        it->second.before = in.u64();
      } else {
        std::string reply = in.str();
        it->second.done = true;
        it->second.reply.assign(reply.begin(), reply.end());
      }
      while (state.journal_order.size() > StateLog::kJournalEntries) {
        state.journal.erase(state.journal_order.front());
        state.journal_order.pop_front();
      }
      break;
    }
    default:
      return false;
  }
  return in.ok;
}

std::string file_name(const std::string& token) { return token + ".state"; }

}  // namespace

void SavedLocks::apply(uint64_t start, uint64_t end, short type) {
  // Cut every range that overlaps [start, end] down to its parts outside it.
  std::vector<std::pair<uint64_t, std::pair<uint64_t, short>>> keep;
  for (auto it = ranges.begin(); it != ranges.end();) {
    auto [s, rest] = *it;
    auto [e, t] = rest;
    if (e < start || s > end) {
      ++it;
      continue;
    }
    if (s < start) keep.push_back({s, {start - 1, t}});
    if (e > end) keep.push_back({end + 1, {e, t}});
    it = ranges.erase(it);
  }
  for (auto& part : keep) ranges.insert(part);
  if (type != F_UNLCK) ranges[start] = {end, type};
}

StateLog::StateLog(int dir_fd, std::string token, SavedState state)
    : dir_fd_(dir_fd), token_(std::move(token)), state_(std::move(state)) {}

StateLog::~StateLog() {
  if (fd_ >= 0) close(fd_);
}

std::unique_ptr<StateLog> StateLog::create(int dir_fd, const std::string& token,
                                           uint64_t root_device, uint64_t root_inode) {
  SavedState state;
  state.root_device = root_device;
  state.root_inode = root_inode;
  std::unique_ptr<StateLog> log(new StateLog(dir_fd, token, std::move(state)));
  int fd = openat(dir_fd, file_name(token).c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || !log->write_all(fd)) {
    if (fd >= 0) close(fd);
    return nullptr;
  }
  log->fd_ = fd;
  return log;
}

std::optional<SavedState> StateLog::load(int dir_fd, const std::string& token) {
  if (!is_session_token(token)) return std::nullopt;
  int fd = openat(dir_fd, file_name(token).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  std::vector<uint8_t> data;
  uint8_t buffer[65536];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.insert(data.end(), buffer, buffer + n);
  }
  close(fd);
  SavedState state;
  size_t at = 0;
  bool first = true;
  while (data.size() - at >= 9) {
    uint32_t size, sum;
    std::memcpy(&size, &data[at], 4);
    std::memcpy(&sum, &data[at + 4], 4);
    if (size > kMaxRecord || data.size() - at - 8 < size + 1) break;  // cut short
    uint8_t type = data[at + 8];
    const uint8_t* payload = &data[at + 9];
    if (checksum(type, payload, size) != sum) break;
    if (first != (type == kHeader)) return std::nullopt;
    first = false;
    Reader in{payload, size};
    if (!apply(state, type, in)) return std::nullopt;
    at += 9 + size;
  }
  if (first) return std::nullopt;
  return state;
}

std::unique_ptr<StateLog> StateLog::reopen(int dir_fd, const std::string& token, SavedState state) {
  std::unique_ptr<StateLog> log(new StateLog(dir_fd, token, std::move(state)));
  const std::string temp = file_name(token) + ".new";
  int fd = openat(dir_fd, temp.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return nullptr;
  if (!log->write_all(fd) || renameat(dir_fd, temp.c_str(), dir_fd, file_name(token).c_str())) {
    close(fd);
    unlinkat(dir_fd, temp.c_str(), 0);
    return nullptr;
  }
  log->fd_ = fd;
  return log;
}

// Writes the whole model to `fd` (a new file), one record per item.
bool StateLog::write_all(int fd) {
  const int previous = fd_;
  fd_ = fd;
  write_failed_ = false;
  append(kHeader, Writer().u64(kMagic).u64(state_.root_device).u64(state_.root_inode).out);
  for (auto& [id, node] : state_.nodes) {
    append(kNode,
           Writer().u64(id).u64(node.inode).u64(node.parent).str(node.name).str(node.handle).out);
    if (!node.orphan.empty()) append(kNodeOrphan, Writer().u64(id).str(node.orphan).out);
  }
  for (auto& [id, handle] : state_.handles) {
    append(kHandle,
           Writer().u64(id).u64(handle.node).u64(uint64_t(handle.flags)).u64(handle.directory).out);
    if (handle.flock) append(kFlock, Writer().u64(id).u64(uint64_t(handle.flock)).out);
  }
  for (auto& [key, locks] : state_.locks)
    for (auto& [start, rest] : locks.ranges)
      append(kLock, Writer()
                        .u64(key.first)
                        .u64(key.second)
                        .u64(locks.handle)
                        .u64(start)
                        .u64(rest.first)
                        .u64(uint64_t(rest.second))
                        .out);
  for (uint64_t request : state_.journal_order) {
    const JournalEntry& entry = state_.journal[request];
    append(kIntent, Writer().u64(request).u64(entry.opcode).u64(entry.before).out);
    if (entry.done)
      append(kDone, Writer()
                        .u64(request)
                        .u64(entry.opcode)
                        .bytes(entry.reply.data(), entry.reply.size())
                        .out);
  }
  fd_ = previous;
  records_ = 0;
  return !write_failed_;
}

void StateLog::append(uint8_t type, const std::vector<uint8_t>& payload) {
  if (fd_ < 0) return;
  std::vector<uint8_t> record(9 + payload.size());
  uint32_t size = uint32_t(payload.size()), sum = checksum(type, payload.data(), payload.size());
  std::memcpy(&record[0], &size, 4);
  std::memcpy(&record[4], &sum, 4);
  record[8] = type;
  std::memcpy(&record[9], payload.data(), payload.size());
  size_t done = 0;
  while (done < record.size()) {
    ssize_t n = write(fd_, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      write_failed_ = true;
      return;
    }
    done += size_t(n);
  }
  ++records_;
}

// The log grows with every lookup and forget; once it holds far more records than the
// state has items, it is written again whole (to a new file, renamed over the old).
void StateLog::compact_if_due() {
  const size_t live = state_.nodes.size() + state_.handles.size() + state_.locks.size() +
                      2 * state_.journal_order.size();
  if (records_ < 8192 || records_ < 4 * live) return;
  const std::string temp = file_name(token_) + ".new";
  int fd = openat(dir_fd_, temp.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  if (!write_all(fd) || renameat(dir_fd_, temp.c_str(), dir_fd_, file_name(token_).c_str())) {
    close(fd);
    unlinkat(dir_fd_, temp.c_str(), 0);
    write_failed_ = false;
    return;
  }
  close(fd_);
  fd_ = fd;
}

#define STATE_RECORD(type, writer)         \
  do {                                     \
    Writer w;                              \
    writer;                                \
    Reader in{w.out.data(), w.out.size()}; \
    std::lock_guard lock(mutex_);          \
    if (discarded_) return;                \
    apply(state_, type, in);               \
    append(type, w.out);                   \
    compact_if_due();                      \
  } while (0)

void StateLog::node_added(uint64_t id, uint64_t inode, uint64_t parent, const std::string& name,
                          const std::string& handle) {
  STATE_RECORD(kNode, w.u64(id).u64(inode).u64(parent).str(name).str(handle));
}
void StateLog::node_renamed(uint64_t id, uint64_t parent, const std::string& name) {
  STATE_RECORD(kNodeName, w.u64(id).u64(parent).str(name));
}
void StateLog::node_orphaned(uint64_t id, const std::string& orphan) {
  STATE_RECORD(kNodeOrphan, w.u64(id).str(orphan));
}
void StateLog::node_gone(uint64_t id) { STATE_RECORD(kNodeGone, w.u64(id)); }
void StateLog::handle_added(uint64_t id, uint64_t node, int flags, bool directory) {
  STATE_RECORD(kHandle, w.u64(id).u64(node).u64(uint64_t(flags)).u64(directory));
}
void StateLog::handle_gone(uint64_t id) { STATE_RECORD(kHandleGone, w.u64(id)); }
void StateLog::flock_changed(uint64_t handle, int operation) {
  STATE_RECORD(kFlock, w.u64(handle).u64(uint64_t(operation)));
}
void StateLog::lock_applied(uint64_t node, uint64_t owner, uint64_t handle, uint64_t start,
                            uint64_t end, short type) {
  STATE_RECORD(kLock, w.u64(node).u64(owner).u64(handle).u64(start).u64(end).u64(uint64_t(type)));
}
void StateLog::owner_gone(uint64_t node, uint64_t owner) {
  STATE_RECORD(kOwnerGone, w.u64(node).u64(owner));
}
void StateLog::intent(uint64_t request, uint16_t opcode, uint64_t before) {
  STATE_RECORD(kIntent, w.u64(request).u64(opcode).u64(before));
}
void StateLog::done(uint64_t request, uint16_t opcode, std::span<const uint8_t> reply) {
  STATE_RECORD(kDone, w.u64(request).u64(opcode).bytes(reply.data(), reply.size()));
}
#undef STATE_RECORD

std::optional<JournalEntry> StateLog::journaled(uint64_t request) {
  std::lock_guard lock(mutex_);
  auto it = state_.journal.find(request);
  if (it == state_.journal.end()) return std::nullopt;
  return it->second;
}

void StateLog::discard() {
  std::lock_guard lock(mutex_);
  if (discarded_) return;
  discarded_ = true;
  unlinkat(dir_fd_, file_name(token_).c_str(), 0);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

std::string new_session_token() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    got += size_t(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string token;
  for (unsigned char b : bytes) token += kHex[b >> 4], token += kHex[b & 15];
  return token;
}

bool is_session_token(const std::string& text) {
  if (text.size() != 32) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace fsout::host
