// What a session must keep across a restart of fsoutd, written as it changes to a file in
// the state directory (a tmpfs such as /run: it outlives the daemon, not the host).
//
// One file per session, named by the session's token (a random 128-bit secret that only
// that guest has been told). It is an append-only log of records; replaying it gives the
// state: the nodes the guest holds (their file handles and names), its open files (flags),
// its record and flock locks, and the answers to its latest requests that must not be
// performed twice (the reply journal). A new fsoutd replays every file before it enters the
// sandbox, opens what they name again, takes the locks again and keeps them for the guest
// until it resumes or the resume window passes.
//
// The guest never sends any of this: a resume names only the token. So a guest cannot
// forge a handle; what a handle opens was handed out by the host itself.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace fsout::host {

// A node as saved: the host's file-handle key (node_table.h) and the name it was last
// known by (for file systems without usable handles, and for non-root daemons).
struct SavedNode {
  uint64_t inode = 0;  // st_ino: what is opened again must be this inode
  uint64_t parent = 0;
  std::string name;
  std::string handle;
  std::string orphan;  // its name in the orphan directory, when unlinked while open
};

struct SavedHandle {
  uint64_t node = 0;
  int flags = 0;  // the host's open flags
  bool directory = false;
  int flock = 0;  // LOCK_SH or LOCK_EX held through it, or 0
};

// One lock owner's record locks on one node: ranges [start, end] with their type.
struct SavedLocks {
  uint64_t handle = 0;  // a handle they were taken through (its access mode opens the fd)
  std::map<uint64_t, std::pair<uint64_t, short>> ranges;  // start -> (end, F_RDLCK/F_WRLCK)
  // Applies a lock request (F_UNLCK included) as the kernel does: the range replaces what
  // it overlaps.
  void apply(uint64_t start, uint64_t end, short type);
};

// A request whose repetition would not give the same answer (CREATE, MKDIR, UNLINK,
// RENAME, ...): what the name it acts on was before it ran, and its reply once sent.
struct JournalEntry {
  uint16_t opcode = 0;
  uint64_t before = 0;  // inode the (first) name named before, 0: none
  bool done = false;    // `reply` holds the whole reply payload
  std::vector<uint8_t> reply;
};

struct SavedState {
  std::map<uint64_t, SavedNode> nodes;      // by node id (node 1, the root, is implicit)
  std::map<uint64_t, SavedHandle> handles;  // by handle id
  std::map<std::pair<uint64_t, uint64_t>, SavedLocks> locks;  // by (node, owner)
  std::unordered_map<uint64_t, JournalEntry> journal;         // by request id
  std::deque<uint64_t> journal_order;                         // oldest first
  uint64_t root_device = 0, root_inode = 0;                   // the export it belongs to
};

class StateLog {
 public:
  // Creates (truncates) the file for a new session. nullopt with errno set on failure.
  static std::unique_ptr<StateLog> create(int dir_fd, const std::string& token,
                                          uint64_t root_device, uint64_t root_inode);
  // Reads a session's file; nullopt when it is missing or not a state file of ours.
  static std::optional<SavedState> load(int dir_fd, const std::string& token);
  // Continues writing an existing file (after load), rewritten compactly first.
  static std::unique_ptr<StateLog> reopen(int dir_fd, const std::string& token, SavedState state);
  ~StateLog();

  void node_added(uint64_t id, uint64_t inode, uint64_t parent, const std::string& name,
                  const std::string& handle);
  void node_renamed(uint64_t id, uint64_t parent, const std::string& name);
  void node_orphaned(uint64_t id, const std::string& orphan);  // "" : no longer
  void node_gone(uint64_t id);
  void handle_added(uint64_t id, uint64_t node, int flags, bool directory);
  void handle_gone(uint64_t id);
  void flock_changed(uint64_t handle, int operation);  // LOCK_SH, LOCK_EX or LOCK_UN
  void lock_applied(uint64_t node, uint64_t owner, uint64_t handle, uint64_t start, uint64_t end,
                    short type);
  void owner_gone(uint64_t node, uint64_t owner);
  void intent(uint64_t request, uint16_t opcode, uint64_t before);
  void done(uint64_t request, uint16_t opcode, std::span<const uint8_t> reply);
  // The journal entry of a request id, if any (a copy).
  std::optional<JournalEntry> journaled(uint64_t request);

  // Ends the session for good: the file is removed.
  void discard();
  const std::string& token() const { return token_; }

  static constexpr size_t kJournalEntries = 1024;  // far above the requests in flight

 private:
  StateLog(int dir_fd, std::string token, SavedState state);
  void append(uint8_t type, const std::vector<uint8_t>& payload);
  void compact_if_due();
  bool write_all(int fd);

  std::mutex mutex_;
  int dir_fd_;
  int fd_ = -1;
  std::string token_;
  SavedState state_;
  size_t records_ = 0;  // since the file was last written whole
  bool discarded_ = false;
  bool write_failed_ = false;
};

// A new random session token (32 hex digits); "" when no randomness is to be had.
std::string new_session_token();
// Whether `text` has the form of a token (so it is safe as a file name).
bool is_session_token(const std::string& text);

}  // namespace fsout::host
