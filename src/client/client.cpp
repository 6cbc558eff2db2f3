#include "client/client.h"

#include <unistd.h>

#include <cerrno>

namespace fsout::client {

using namespace protocol;

namespace {
std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (!part.empty() && part != ".") parts.push_back(part);
    start = end + 1;
  }
  return parts;
}

// This process as the caller of creating requests.
Caller this_caller() {
  Caller caller{getuid(), getgid(), {}};
  gid_t groups[kMaxCallerGroups];
  int n = getgroups(int(kMaxCallerGroups), groups);
  for (int i = 0; i < n; ++i) caller.groups.push_back(groups[i]);
  return caller;
}
}  // namespace

Client::Client(std::unique_ptr<Connection> connection) : connection_(std::move(connection)) {}

Client::Held& Client::Held::operator=(Held&& other) noexcept {
  std::swap(owner, other.owner);
  std::swap(node, other.node);
  std::swap(attr, other.attr);
  return *this;
}

Client::Held::~Held() {
  if (owner && node.value != kRootNode.value) owner->forget(node);
}

void Client::forget(NodeId node) {
  connection_->call_async<Opcode::kForget>(ForgetRequest{{ForgetItem{node, 1}}},
                                           [](int, const Empty&) {});
}

Result<Client::Held> Client::walk(const std::string& path) {
  Held current;
  current.owner = this;
  current.node = kRootNode;
  current.attr = connection_->hello().root_attr;
  for (const auto& part : split(path)) {
    // "..": the host refuses it by design; the CLI resolves it lexically.
    if (part == "..") return Errno{EINVAL};
    auto entry = connection_->call<Opcode::kLookup>(LookupRequest{current.node, Name{part}});
    if (!entry.ok()) return Errno{entry.error()};
    Held next;
    next.owner = this;
    next.node = entry.value().node;
    next.attr = entry.value().attr;
    current = std::move(next);
  }
  return current;
}

Result<std::pair<Client::Held, std::string>> Client::walk_parent(const std::string& path) {
  auto parts = split(path);
  if (parts.empty()) return Errno{EINVAL};
  std::string name = parts.back();
  parts.pop_back();
  std::string parent_path;
  for (auto& part : parts) parent_path += "/" + part;
  auto parent = walk(parent_path);
  if (!parent.ok()) return Errno{parent.error()};
  return std::make_pair(std::move(parent.value()), name);
}

Result<Attr> Client::stat(const std::string& path) {
  auto held = walk(path);
  if (!held.ok()) return Errno{held.error()};
  return held.value().attr;
}

Result<std::vector<ListedEntry>> Client::list(const std::string& path) {
  auto dir = walk(path);
  if (!dir.ok()) return Errno{dir.error()};
  auto opened = connection_->call<Opcode::kOpendir>(OpenRequest{dir.value().node, 0});
  if (!opened.ok()) return Errno{opened.error()};
  std::vector<ListedEntry> entries;
  uint64_t offset = 0;
  int error = 0;
  for (;;) {
    auto page = connection_->call<Opcode::kReaddirplus>(
        ReaddirRequest{opened.value().handle, offset, 64 * 1024, {}});
    if (!page.ok()) {
      error = page.error();
      break;
    }
    if (page.value().entries.empty()) break;
    for (auto& item : page.value().entries) {
      offset = item.dirent.next_offset;
      if (item.entry.node.value != 0) forget(item.entry.node);
      if (item.dirent.name.value == "." || item.dirent.name.value == "..") continue;
      entries.push_back({item.dirent.name.value, item.entry.attr});
    }
  }
  connection_->call<Opcode::kReleasedir>(HandleRequest{opened.value().handle});
  if (error) return Errno{error};
  return entries;
}

Result<uint64_t> Client::read(const std::string& path,
                              const std::function<bool(std::span<const uint8_t>)>& sink) {
  auto file = walk(path);
  if (!file.ok()) return Errno{file.error()};
  auto opened =
      connection_->call<Opcode::kOpen>(OpenRequest{file.value().node, canonical::kOpenRdonly});
  if (!opened.ok()) return Errno{opened.error()};
  uint64_t offset = 0;
  int error = 0;
  for (;;) {
    std::promise<std::pair<int, size_t>> done;
    auto future = done.get_future();
    bool keep_going = true;
    connection_->call_async<Opcode::kRead>(
        ReadRequest{opened.value().handle, offset, connection_->max_io()},
        [&](int status, const DataReply& reply) {
          if (status == 0 && !reply.data.data.empty()) keep_going = sink(reply.data.data);
          done.set_value({status, reply.data.data.size()});
        });
    auto [status, size] = future.get();
    if (status) {
      error = status;
      break;
    }
    if (!keep_going) {
      error = EIO;
      break;
    }
    if (size == 0) break;
    offset += size;
  }
  connection_->call<Opcode::kRelease>(HandleRequest{opened.value().handle});
  if (error) return Errno{error};
  return offset;
}

Result<uint64_t> Client::write(const std::string& path, uint32_t mode,
                               const std::function<ssize_t(uint8_t*, size_t)>& source) {
  auto parent = walk_parent(path);
  if (!parent.ok()) return Errno{parent.error()};
  auto& [dir, name] = parent.value();
  CreateRequest create{dir.node, Name{name},
                       canonical::kOpenWronly | canonical::kOpenCreat | canonical::kOpenTrunc,
                       canonical::kModeRegular | (mode & 07777), this_caller()};
  auto created = connection_->call<Opcode::kCreate>(create);
  if (!created.ok()) return Errno{created.error()};
  forget(created.value().entry.node);
  HandleId handle = created.value().handle;
  std::vector<uint8_t> buffer(connection_->max_io());
  uint64_t offset = 0;
  int error = 0;
  for (;;) {
    ssize_t n = source(buffer.data(), buffer.size());
    if (n < 0) {
      error = EIO;
      break;
    }
    if (n == 0) break;
    auto written = connection_->call<Opcode::kWrite>(
        WriteRequest{handle, offset, Tail{std::span<const uint8_t>(buffer.data(), size_t(n))}});
    if (!written.ok()) {
      error = written.error();
      break;
    }
    if (written.value().written != size_t(n)) {
      error = EIO;
      break;
    }
    offset += size_t(n);
  }
  if (!error) {
    auto synced = connection_->call<Opcode::kFsync>(FsyncRequest{handle, 0});
    if (!synced.ok()) error = synced.error();
  }
  connection_->call<Opcode::kRelease>(HandleRequest{handle});
  if (error) return Errno{error};
  return offset;
}

Result<Empty> Client::mkdir(const std::string& path, uint32_t mode) {
  auto parent = walk_parent(path);
  if (!parent.ok()) return Errno{parent.error()};
  auto& [dir, name] = parent.value();
  auto made = connection_->call<Opcode::kMkdir>(MkdirRequest{
      dir.node, Name{name}, canonical::kModeDirectory | (mode & 07777), this_caller()});
  if (!made.ok()) return Errno{made.error()};
  forget(made.value().node);
  return Empty{};
}

Result<Empty> Client::remove(const std::string& path) {
  auto target = stat(path);
  if (!target.ok()) return Errno{target.error()};
  auto parent = walk_parent(path);
  if (!parent.ok()) return Errno{parent.error()};
  auto& [dir, name] = parent.value();
  bool is_dir = (target.value().mode & canonical::kModeTypeMask) == canonical::kModeDirectory;
  if (is_dir) return connection_->call<Opcode::kRmdir>(RemoveRequest{dir.node, Name{name}});
  return connection_->call<Opcode::kUnlink>(RemoveRequest{dir.node, Name{name}});
}

Result<Empty> Client::rename(const std::string& from, const std::string& to) {
  auto source = walk_parent(from);
  if (!source.ok()) return Errno{source.error()};
  auto target = walk_parent(to);
  if (!target.ok()) return Errno{target.error()};
  return connection_->call<Opcode::kRename>(
      RenameRequest{source.value().first.node, Name{source.value().second},
                    target.value().first.node, Name{target.value().second}, 0});
}

Result<std::string> Client::readlink(const std::string& path) {
  auto link = walk(path);
  if (!link.ok()) return Errno{link.error()};
  auto target = connection_->call<Opcode::kReadlink>(NodeRequest{link.value().node});
  if (!target.ok()) return Errno{target.error()};
  return target.value().target.value;
}

Result<StatfsReply> Client::statfs() {
  return connection_->call<Opcode::kStatfs>(NodeRequest{kRootNode});
}

}  // namespace fsout::client
