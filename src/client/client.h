// Path-level operations over a Connection, for programs that do not mount
// (the `fsout` CLI, tests). Paths are '/'-separated, relative to the export.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/connection.h"

namespace fsout::client {

struct ListedEntry {
  std::string name;
  protocol::Attr attr;
};

class Client {
 public:
  explicit Client(std::unique_ptr<Connection> connection);
  Connection& connection() { return *connection_; }

  Result<protocol::Attr> stat(const std::string& path);
  Result<std::vector<ListedEntry>> list(const std::string& path);
  // Streams a file's content to `sink` in chunks.
  Result<uint64_t> read(const std::string& path,
                        const std::function<bool(std::span<const uint8_t>)>& sink);
  // Creates or truncates `path` and fills it from `source` (returns bytes
  // read into the buffer, 0 at end, -1 on error).
  Result<uint64_t> write(const std::string& path, uint32_t mode,
                         const std::function<ssize_t(uint8_t*, size_t)>& source);
  Result<protocol::Empty> mkdir(const std::string& path, uint32_t mode);
  Result<protocol::Empty> remove(const std::string& path);  // a file, or an empty directory
  Result<protocol::Empty> rename(const std::string& from, const std::string& to);
  Result<std::string> readlink(const std::string& path);
  Result<protocol::StatfsReply> statfs();

 private:
  // A looked-up node; forgotten when it goes out of scope.
  struct Held {
    Client* owner = nullptr;
    protocol::NodeId node;
    protocol::Attr attr;
    Held() = default;
    Held(Held&& other) noexcept { *this = std::move(other); }
    Held& operator=(Held&& other) noexcept;
    ~Held();
  };
  Result<Held> walk(const std::string& path);
  Result<std::pair<Held, std::string>> walk_parent(const std::string& path);
  void forget(protocol::NodeId node);

  std::unique_ptr<Connection> connection_;
};

}  // namespace fsout::client
