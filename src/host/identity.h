// Who a guest request acts as on the host. SECURITY: this decides the owner
// of every object a guest creates and which host ids a guest may give away.
//
// The id map of an export turns guest uids/gids into host ones and back:
// - identity (the default): guest id N is host id N. The guest's root is
//   the host's root for new objects and chown: trust the guest as you would
//   a local user with those ids.
// - ranges (--uid-map/--gid-map GUEST:HOST:COUNT): only mapped ids exist;
//   an unmapped host id shows as 65534 in the guest (as user namespaces do),
//   an unmapped guest caller cannot create (EOVERFLOW), chown to an
//   unmapped id fails (EINVAL).
// - squash (--squash UID:GID): every guest caller acts as host UID:GID; the
//   guest ids of new objects are kept in an xattr (kOwnerXattr) and shown to
//   the guest.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "protocol/messages.h"

namespace fsout::host {

constexpr uint32_t kOverflowId = 65534;
// Where squash mode keeps the guest owner ("UID:GID"); hidden from guests.
constexpr const char* kOwnerXattr = "trusted.fsout.owner";

struct IdRange {
  uint32_t guest = 0, host = 0, count = 0;
};

class IdMap {
 public:
  // "GUEST:HOST:COUNT" and "UID:GID"; throw std::invalid_argument with the reason.
  static IdRange parse_range(const std::string& text);
  static std::pair<uint32_t, uint32_t> parse_squash(const std::string& text);

  void add_uid_range(IdRange range);
  void add_gid_range(IdRange range);
  void set_squash(uint32_t uid, uint32_t gid);

  bool squash() const { return squash_.has_value(); }
  bool has_ranges() const { return !uids_.empty() || !gids_.empty(); }
  bool identity() const { return !squash_ && uids_.empty() && gids_.empty(); }

  // Guest -> host; nullopt when the guest id has no host id.
  std::optional<uint32_t> uid_to_host(uint32_t guest) const;
  std::optional<uint32_t> gid_to_host(uint32_t guest) const;
  // Host -> guest; kOverflowId when the host id has no guest id.
  uint32_t uid_to_guest(uint32_t host) const;
  uint32_t gid_to_guest(uint32_t host) const;

 private:
  std::vector<IdRange> uids_, gids_;
  std::optional<std::pair<uint32_t, uint32_t>> squash_;
};

// A guest caller in host terms.
struct HostCaller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};
Result<HostCaller> to_host(const IdMap& ids, const protocol::Caller& caller);

// Makes this thread act as `caller` for file system access while it lives:
// fsuid, fsgid and supplementary groups, so the host kernel applies owner,
// setgid-directory group, SGID clearing and permission checks exactly as
// for that user. Raw syscalls: glibc's setgroups() would change every
// thread of the daemon. Does nothing when the daemon is not root (it then
// creates everything as itself).
class ActingAs {
 public:
  explicit ActingAs(const HostCaller& caller);
  ~ActingAs();
  ActingAs(const ActingAs&) = delete;
  ActingAs& operator=(const ActingAs&) = delete;

 private:
  bool switched_ = false;
};

}  // namespace fsout::host
