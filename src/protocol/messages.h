// The operation list and the request/reply types of protocol v1.
//
// FSOUT_OPERATIONS is the one table that the codec, the host dispatcher, the
// client library, the codec tests and docs/PROTOCOL.md follow. An opcode's
// number never changes once released. All values inside messages are
// canonical (protocol/canonical.h), never a host's or guest's native numbers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "protocol/canonical.h"

namespace fsout::protocol {

inline constexpr uint32_t kProtocolVersion = 1;
// Payload limit both sides accept before HELLO has negotiated one.
inline constexpr uint32_t kDefaultMaxMessage = (1u << 20) + 4096;
inline constexpr uint32_t kMaxIoSize = 1u << 20;  // largest READ/WRITE data
inline constexpr size_t kMaxPathBytes = 4096;     // symlink targets
inline constexpr size_t kMaxXattrNameBytes = 255;
inline constexpr size_t kMaxXattrValueBytes = 65536;
inline constexpr size_t kMaxTextBytes = 256;  // guest OS, export names
inline constexpr size_t kMaxForgetBatch = 4096;
inline constexpr size_t kMaxListItems = 1u << 20;  // directory entries in one reply

// Capability bits negotiated in HELLO (the session uses the intersection).
inline constexpr uint64_t kCapReaddirplus = 1u << 0;
inline constexpr uint64_t kCapPosixLocks = 1u << 1;
inline constexpr uint64_t kCapFlock = 1u << 2;
inline constexpr uint64_t kCapXattr = 1u << 3;
// The host pushes NOTIFY frames when something the guest may cache changes
// on the host (only when the host can watch the export).
inline constexpr uint64_t kCapNotify = 1u << 4;
// After a request that changed names in a directory (CREATE, MKDIR, MKNOD,
// SYMLINK, LINK, UNLINK, RMDIR, RENAME), the host sends the directory's new
// attributes (an AttrNotice) just before the reply.
inline constexpr uint64_t kCapDirAttrs = 1u << 5;
// The host takes OPEN_READ: an OPEN whose reply carries the file's first bytes.
inline constexpr uint64_t kCapOpenRead = 1u << 6;
// The host performs a WRITE whose payload is at most kOrderedWritePayload
// bytes before it starts any request received after it, so a guest may
// answer such writes before the host does (only errors come late).
inline constexpr uint64_t kCapOrderedWrites = 1u << 7;
inline constexpr size_t kOrderedWriteData = 64 * 1024;
inline constexpr size_t kOrderedWritePayload = 16 + kOrderedWriteData;  // handle, offset, data
// The host keeps the session's state (nodes, open files, locks, the answers to its latest
// changes) where a restarted fsoutd finds it: a guest whose stream broke says HELLO again
// with the session token it was given, and goes on with the same node and handle ids.
inline constexpr uint64_t kCapResume = 1u << 8;
inline constexpr uint64_t kCapAllKnown = kCapReaddirplus | kCapPosixLocks | kCapFlock | kCapXattr |
                                         kCapNotify | kCapDirAttrs | kCapOpenRead |
                                         kCapOrderedWrites | kCapResume;

// Declares the fields of a message, in wire order.
#define FSOUT_FIELDS(...)                         \
  auto fields() { return std::tie(__VA_ARGS__); } \
  auto fields() const { return std::tie(__VA_ARGS__); }

// Strong id types: a node id is never a handle id.
struct NodeId {
  uint64_t value = 0;
  bool operator==(const NodeId&) const = default;
};
struct HandleId {
  uint64_t value = 0;
  bool operator==(const HandleId&) const = default;
};
inline constexpr NodeId kRootNode{1};

// One path component, checked by is_valid_name() while decoding.
struct Name {
  std::string value;
  bool operator==(const Name&) const = default;
};

// Byte string with a wire limit given by its type (see codec.h). Unless it is `Binary`, it
// becomes a C string on the other side (a symlink target, an xattr name), so a NUL in it
// fails decoding: cut at the NUL it would mean something else than what was checked.
template <size_t Limit, bool Binary = false>
struct Bounded {
  std::string value;
  bool operator==(const Bounded&) const = default;
};
using Text = Bounded<kMaxTextBytes>;
using PathText = Bounded<kMaxPathBytes>;
using XattrName = Bounded<kMaxXattrNameBytes>;
using XattrValue = Bounded<kMaxXattrValueBytes, true>;  // values and listings ("a\0b\0")
using EntryName = Bounded<1024>;

// The rest of the payload, not copied: file data in READ replies and WRITE
// requests. Points into the buffer that was decoded.
struct Tail {
  std::span<const uint8_t> data;
  bool operator==(const Tail& other) const {
    return data.size() == other.data.size() &&
           std::equal(data.begin(), data.end(), other.data.begin());
  }
};

struct Time {
  int64_t seconds = 0;
  uint32_t nanoseconds = 0;
  FSOUT_FIELDS(seconds, nanoseconds)
  bool operator==(const Time&) const = default;
};

struct Device {
  uint32_t major = 0;
  uint32_t minor = 0;
  FSOUT_FIELDS(major, minor)
  bool operator==(const Device&) const = default;
};

struct Attr {
  uint64_t inode = 0;  // the host's st_ino, shown to the guest
  uint32_t mode = 0;   // canonical type + permission bits
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  Device rdev;
  uint64_t size = 0;
  uint64_t blocks = 0;  // 512-byte units
  uint32_t block_size = 0;
  Time atime, mtime, ctime;
  FSOUT_FIELDS(inode, mode, nlink, uid, gid, rdev, size, blocks, block_size, atime, mtime, ctime)
  bool operator==(const Attr&) const = default;
};

// The caller of an operation that makes a name (create, mkdir, mknod,
// symlink, link): the host performs it as this user, so that new objects get
// this owner and the host's rules (setgid directories, SGID clearing,
// protected hard links) apply as for a local process.
inline constexpr size_t kMaxCallerGroups = 256;
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups, at most kMaxCallerGroups
  FSOUT_FIELDS(uid, gid, groups)
  bool operator==(const Caller&) const = default;
};

struct Empty {
  auto fields() { return std::tie(); }
  auto fields() const { return std::tie(); }
  bool operator==(const Empty&) const = default;
};

// ---- HELLO
struct HelloRequest {
  uint32_t min_version = kProtocolVersion;
  uint32_t max_version = kProtocolVersion;
  uint64_t capabilities = 0;
  uint32_t max_message = kDefaultMaxMessage;
  Text guest_os;  // "linux", "freebsd", ...
  Text export_name;
  Text session;  // kCapResume: the token of the session to resume; empty: a new session
  FSOUT_FIELDS(min_version, max_version, capabilities, max_message, guest_os, export_name, session)
  bool operator==(const HelloRequest&) const = default;
};
struct HelloReply {
  uint32_t version = kProtocolVersion;
  uint32_t min_version = kProtocolVersion;  // the host's range, for error messages
  uint32_t max_version = kProtocolVersion;
  uint64_t capabilities = 0;
  uint32_t max_message = kDefaultMaxMessage;
  uint32_t flags = 0;  // kHelloReadOnly
  NodeId root;
  Attr root_attr;
  Text session;  // kCapResume: this session's token (secret: it is all a resume needs)
  FSOUT_FIELDS(version, min_version, max_version, capabilities, max_message, flags, root.value,
               root_attr, session)
  bool operator==(const HelloReply&) const = default;
};
inline constexpr uint32_t kHelloReadOnly = 1;
inline constexpr uint32_t kHelloResumed = 2;  // the session named in the request goes on

// A NOTIFY frame (kind kNotify, opcode 0, request id 0), host to guest:
// something the guest may have cached changed on the host.
inline constexpr uint32_t kNotifyInode = 1;   // node's data and attributes
inline constexpr uint32_t kNotifyEntry = 2;   // the name `name` in directory `parent`
inline constexpr uint32_t kNotifyDelete = 3;  // `name` in `parent`, which was `node`, is gone
struct NotifyMessage {
  uint32_t what = 0;
  NodeId node;    // kNotifyInode, kNotifyDelete
  NodeId parent;  // kNotifyEntry, kNotifyDelete
  EntryName name;
  FSOUT_FIELDS(what, node.value, parent.value, name)
  bool operator==(const NotifyMessage&) const = default;
};

// A NOTIFY frame with opcode kNotifyAttrOpcode (and the request id of the
// request that caused it), host to guest: a directory's attributes right
// after that request changed it (kCapDirAttrs).
inline constexpr uint16_t kNotifyAttrOpcode = 1;
struct AttrNotice {
  NodeId node;
  Attr attr;
  FSOUT_FIELDS(node.value, attr)
  bool operator==(const AttrNotice&) const = default;
};

// ---- entries and nodes
struct EntryReply {
  NodeId node;
  uint64_t generation = 0;
  Attr attr;
  FSOUT_FIELDS(node.value, generation, attr)
  bool operator==(const EntryReply&) const = default;
};
struct AttrReply {
  Attr attr;
  FSOUT_FIELDS(attr)
  bool operator==(const AttrReply&) const = default;
};
struct LookupRequest {
  NodeId parent;
  Name name;
  FSOUT_FIELDS(parent.value, name)
  bool operator==(const LookupRequest&) const = default;
};
struct ForgetItem {
  NodeId node;
  uint64_t count = 0;
  FSOUT_FIELDS(node.value, count)
  bool operator==(const ForgetItem&) const = default;
};
struct ForgetRequest {  // no reply
  std::vector<ForgetItem> items;
  FSOUT_FIELDS(items)
  bool operator==(const ForgetRequest&) const = default;
};
struct GetattrRequest {
  NodeId node;
  HandleId handle;  // 0 when the guest has no open handle
  FSOUT_FIELDS(node.value, handle.value)
  bool operator==(const GetattrRequest&) const = default;
};

// SETATTR valid bits.
inline constexpr uint32_t kSetMode = 1, kSetUid = 2, kSetGid = 4, kSetSize = 8, kSetAtime = 16,
                          kSetAtimeNow = 32, kSetMtime = 64, kSetMtimeNow = 128;
struct SetattrRequest {
  NodeId node;
  HandleId handle;
  uint32_t valid = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  Time atime, mtime;
  FSOUT_FIELDS(node.value, handle.value, valid, mode, uid, gid, size, atime, mtime)
  bool operator==(const SetattrRequest&) const = default;
};
struct NodeRequest {  // READLINK, OPENDIR's node-only form, STATFS
  NodeId node;
  FSOUT_FIELDS(node.value)
  bool operator==(const NodeRequest&) const = default;
};
struct ReadlinkReply {
  PathText target;
  FSOUT_FIELDS(target)
  bool operator==(const ReadlinkReply&) const = default;
};
struct SymlinkRequest {
  NodeId parent;
  Name name;
  PathText target;  // stored verbatim, never resolved by the host
  Caller caller;
  FSOUT_FIELDS(parent.value, name, target, caller)
  bool operator==(const SymlinkRequest&) const = default;
};
struct MknodRequest {
  NodeId parent;
  Name name;
  uint32_t mode = 0;
  Device rdev;
  Caller caller;
  FSOUT_FIELDS(parent.value, name, mode, rdev, caller)
  bool operator==(const MknodRequest&) const = default;
};
struct MkdirRequest {
  NodeId parent;
  Name name;
  uint32_t mode = 0;
  Caller caller;
  FSOUT_FIELDS(parent.value, name, mode, caller)
  bool operator==(const MkdirRequest&) const = default;
};
struct RemoveRequest {  // UNLINK, RMDIR
  NodeId parent;
  Name name;
  FSOUT_FIELDS(parent.value, name)
  bool operator==(const RemoveRequest&) const = default;
};
using canonical::kRenameExchange;
using canonical::kRenameNoreplace;
struct RenameRequest {
  NodeId parent;
  Name name;
  NodeId new_parent;
  Name new_name;
  uint32_t flags = 0;
  FSOUT_FIELDS(parent.value, name, new_parent.value, new_name, flags)
  bool operator==(const RenameRequest&) const = default;
};
struct LinkRequest {
  NodeId node;
  NodeId new_parent;
  Name new_name;
  Caller caller;
  FSOUT_FIELDS(node.value, new_parent.value, new_name, caller)
  bool operator==(const LinkRequest&) const = default;
};

// ---- files
struct OpenRequest {  // OPEN, OPENDIR
  NodeId node;
  uint32_t flags = 0;  // canonical open flags
  FSOUT_FIELDS(node.value, flags)
  bool operator==(const OpenRequest&) const = default;
};
struct OpenReply {
  HandleId handle;
  FSOUT_FIELDS(handle.value)
  bool operator==(const OpenReply&) const = default;
};
// OPEN_READ: an OPEN for reading that also reads up to `size` bytes from
// offset 0 (at most kMaxOpenReadBytes), so that a small file is opened and
// read in one round trip.
inline constexpr uint32_t kMaxOpenReadBytes = 128 * 1024;
struct OpenReadRequest {
  NodeId node;
  uint32_t flags = 0;  // canonical open flags; the access mode must be read-only
  uint32_t size = 0;
  FSOUT_FIELDS(node.value, flags, size)
  bool operator==(const OpenReadRequest&) const = default;
};
struct OpenReadReply {
  HandleId handle;
  uint32_t at_end = 0;  // 1: the data reaches the end of the file
  Tail data;            // the rest of the payload
  FSOUT_FIELDS(handle.value, at_end, data)
  bool operator==(const OpenReadReply&) const = default;
};
struct CreateRequest {
  NodeId parent;
  Name name;
  uint32_t flags = 0;
  uint32_t mode = 0;
  Caller caller;
  FSOUT_FIELDS(parent.value, name, flags, mode, caller)
  bool operator==(const CreateRequest&) const = default;
};
struct CreateReply {
  EntryReply entry;
  HandleId handle;
  FSOUT_FIELDS(entry, handle.value)
  bool operator==(const CreateReply&) const = default;
};
struct ReadRequest {
  HandleId handle;
  uint64_t offset = 0;
  uint32_t size = 0;
  FSOUT_FIELDS(handle.value, offset, size)
  bool operator==(const ReadRequest&) const = default;
};
struct DataReply {  // READ: the data is the rest of the payload
  Tail data;
  FSOUT_FIELDS(data)
  bool operator==(const DataReply&) const = default;
};
struct WriteRequest {
  HandleId handle;
  uint64_t offset = 0;
  Tail data;
  FSOUT_FIELDS(handle.value, offset, data)
  bool operator==(const WriteRequest&) const = default;
};
struct WriteReply {
  uint32_t written = 0;
  FSOUT_FIELDS(written)
  bool operator==(const WriteReply&) const = default;
};
struct FlushRequest {
  HandleId handle;
  uint64_t lock_owner = 0;  // POSIX locks of this owner are released on flush
  FSOUT_FIELDS(handle.value, lock_owner)
  bool operator==(const FlushRequest&) const = default;
};
struct HandleRequest {  // RELEASE, RELEASEDIR
  HandleId handle;
  FSOUT_FIELDS(handle.value)
  bool operator==(const HandleRequest&) const = default;
};
struct FsyncRequest {
  HandleId handle;
  uint32_t datasync = 0;
  FSOUT_FIELDS(handle.value, datasync)
  bool operator==(const FsyncRequest&) const = default;
};

// ---- directories
struct ReaddirRequest {  // READDIR, READDIRPLUS
  HandleId handle;       // 0: no handle, read `node` (opened for this request only)
  uint64_t offset = 0;   // 0, or the `next_offset` of an entry already returned
  uint32_t size = 0;     // byte budget of the reply's entry list
  NodeId node;           // the directory, when handle is 0
  FSOUT_FIELDS(handle.value, offset, size, node.value)
  bool operator==(const ReaddirRequest&) const = default;
};
struct DirEntry {
  uint64_t inode = 0;
  uint64_t next_offset = 0;
  uint8_t type = 0;  // canonical dirent type
  EntryName name;    // may be "." or "..": host to guest only
  FSOUT_FIELDS(inode, next_offset, type, name)
  bool operator==(const DirEntry&) const = default;
};
struct ReaddirReply {
  std::vector<DirEntry> entries;
  FSOUT_FIELDS(entries)
  bool operator==(const ReaddirReply&) const = default;
};
// READDIRPLUS: each entry other than "." and ".." counts as one LOOKUP; the
// guest FORGETs entries it cannot pass on. "." and ".." carry node 0.
struct DirEntryPlus {
  DirEntry dirent;
  EntryReply entry;
  FSOUT_FIELDS(dirent, entry)
  bool operator==(const DirEntryPlus&) const = default;
};
struct ReaddirplusReply {
  std::vector<DirEntryPlus> entries;
  FSOUT_FIELDS(entries)
  bool operator==(const ReaddirplusReply&) const = default;
};

// ---- file system
struct StatfsReply {
  uint64_t blocks = 0, blocks_free = 0, blocks_available = 0;
  uint64_t files = 0, files_free = 0;
  uint32_t block_size = 0, fragment_size = 0, name_max = 0;
  FSOUT_FIELDS(blocks, blocks_free, blocks_available, files, files_free, block_size, fragment_size,
               name_max)
  bool operator==(const StatfsReply&) const = default;
};
struct AccessRequest {
  NodeId node;
  uint32_t mask = 0;  // canonical R_OK 4, W_OK 2, X_OK 1
  FSOUT_FIELDS(node.value, mask)
  bool operator==(const AccessRequest&) const = default;
};

// ---- extended attributes
struct GetxattrRequest {
  NodeId node;
  XattrName name;
  uint32_t size = 0;  // 0: only ask for the size
  FSOUT_FIELDS(node.value, name, size)
  bool operator==(const GetxattrRequest&) const = default;
};
struct XattrReply {   // GETXATTR and LISTXATTR
  uint32_t size = 0;  // size of the whole value (or name list)
  XattrValue value;   // empty when the request's size was 0
  FSOUT_FIELDS(size, value)
  bool operator==(const XattrReply&) const = default;
};
using canonical::kXattrCreate;
using canonical::kXattrReplace;
struct SetxattrRequest {
  NodeId node;
  XattrName name;
  XattrValue value;
  uint32_t flags = 0;
  FSOUT_FIELDS(node.value, name, value, flags)
  bool operator==(const SetxattrRequest&) const = default;
};
struct ListxattrRequest {
  NodeId node;
  uint32_t size = 0;
  FSOUT_FIELDS(node.value, size)
  bool operator==(const ListxattrRequest&) const = default;
};
struct RemovexattrRequest {
  NodeId node;
  XattrName name;
  FSOUT_FIELDS(node.value, name)
  bool operator==(const RemovexattrRequest&) const = default;
};

// ---- space and seeking
using canonical::kFallocKeepSize;
using canonical::kFallocPunchHole;
struct FallocateRequest {
  HandleId handle;
  uint32_t mode = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  FSOUT_FIELDS(handle.value, mode, offset, length)
  bool operator==(const FallocateRequest&) const = default;
};
using canonical::kWhenceData;
using canonical::kWhenceHole;
struct LseekRequest {
  HandleId handle;
  uint64_t offset = 0;
  uint32_t whence = 0;
  FSOUT_FIELDS(handle.value, offset, whence)
  bool operator==(const LseekRequest&) const = default;
};
struct LseekReply {
  uint64_t offset = 0;
  FSOUT_FIELDS(offset)
  bool operator==(const LseekReply&) const = default;
};

// ---- locks
using canonical::kLockRead;
using canonical::kLockUnlock;
using canonical::kLockWrite;
struct Lock {
  uint32_t type = kLockUnlock;
  uint64_t start = 0;
  uint64_t end = 0;  // inclusive; UINT64_MAX for "to the end of the file"
  uint32_t pid = 0;  // the guest's pid of the owner (informational)
  FSOUT_FIELDS(type, start, end, pid)
  bool operator==(const Lock&) const = default;
};
struct GetlkRequest {
  HandleId handle;
  uint64_t owner = 0;
  Lock lock;
  FSOUT_FIELDS(handle.value, owner, lock)
  bool operator==(const GetlkRequest&) const = default;
};
struct LockReply {
  Lock lock;  // the conflicting lock, or type kLockUnlock when there is none
  FSOUT_FIELDS(lock)
  bool operator==(const LockReply&) const = default;
};
struct SetlkRequest {
  HandleId handle;
  uint64_t owner = 0;
  Lock lock;
  uint32_t wait = 0;  // 1: block until granted (SETLKW)
  FSOUT_FIELDS(handle.value, owner, lock, wait)
  bool operator==(const SetlkRequest&) const = default;
};
inline constexpr uint32_t kFlockShared = 1, kFlockExclusive = 2, kFlockUnlock = 8,
                          kFlockNonblock = 4;
struct FlockRequest {
  HandleId handle;
  uint32_t operation = 0;
  FSOUT_FIELDS(handle.value, operation)
  bool operator==(const FlockRequest&) const = default;
};

// The operation list: X(number, Name, Request, Reply).
// FSOUT_FILE_OPERATIONS are the ones a host back end performs; HELLO belongs
// to the session.
#define FSOUT_OPERATIONS(X)             \
  X(1, Hello, HelloRequest, HelloReply) \
  FSOUT_FILE_OPERATIONS(X)
#define FSOUT_FILE_OPERATIONS(X)                       \
  X(2, Lookup, LookupRequest, EntryReply)              \
  X(3, Forget, ForgetRequest, Empty)                   \
  X(4, Getattr, GetattrRequest, AttrReply)             \
  X(5, Setattr, SetattrRequest, AttrReply)             \
  X(6, Readlink, NodeRequest, ReadlinkReply)           \
  X(7, Symlink, SymlinkRequest, EntryReply)            \
  X(8, Mknod, MknodRequest, EntryReply)                \
  X(9, Mkdir, MkdirRequest, EntryReply)                \
  X(10, Unlink, RemoveRequest, Empty)                  \
  X(11, Rmdir, RemoveRequest, Empty)                   \
  X(12, Rename, RenameRequest, Empty)                  \
  X(13, Link, LinkRequest, EntryReply)                 \
  X(14, Open, OpenRequest, OpenReply)                  \
  X(15, Create, CreateRequest, CreateReply)            \
  X(16, Read, ReadRequest, DataReply)                  \
  X(17, Write, WriteRequest, WriteReply)               \
  X(18, Flush, FlushRequest, Empty)                    \
  X(19, Release, HandleRequest, Empty)                 \
  X(20, Fsync, FsyncRequest, Empty)                    \
  X(21, Opendir, OpenRequest, OpenReply)               \
  X(22, Readdir, ReaddirRequest, ReaddirReply)         \
  X(23, Readdirplus, ReaddirRequest, ReaddirplusReply) \
  X(24, Releasedir, HandleRequest, Empty)              \
  X(25, Statfs, NodeRequest, StatfsReply)              \
  X(26, Access, AccessRequest, Empty)                  \
  X(27, Getxattr, GetxattrRequest, XattrReply)         \
  X(28, Setxattr, SetxattrRequest, Empty)              \
  X(29, Listxattr, ListxattrRequest, XattrReply)       \
  X(30, Removexattr, RemovexattrRequest, Empty)        \
  X(31, Fallocate, FallocateRequest, Empty)            \
  X(32, Lseek, LseekRequest, LseekReply)               \
  X(33, Getlk, GetlkRequest, LockReply)                \
  X(34, Setlk, SetlkRequest, Empty)                    \
  X(35, Flock, FlockRequest, Empty)                    \
  X(36, OpenRead, OpenReadRequest, OpenReadReply)

enum class Opcode : uint16_t {
#define FSOUT_ENUM(number, name, request, reply) k##name = number,
  FSOUT_OPERATIONS(FSOUT_ENUM)
#undef FSOUT_ENUM
};

// Operations the guest sends without waiting for (or getting) a reply.
inline constexpr bool has_reply(Opcode op) { return op != Opcode::kForget; }

// Compile-time map from opcode to its types.
template <Opcode Op>
struct Operation;
#define FSOUT_TRAITS(number, name, request, reply) \
  template <>                                      \
  struct Operation<Opcode::k##name> {              \
    using Request = request;                       \
    using Reply = reply;                           \
    static constexpr const char* kName = #name;    \
  };
FSOUT_OPERATIONS(FSOUT_TRAITS)
#undef FSOUT_TRAITS

const char* opcode_name(uint16_t opcode);  // "Lookup", or nullptr if unknown
bool is_known_opcode(uint16_t opcode);

}  // namespace fsout::protocol
