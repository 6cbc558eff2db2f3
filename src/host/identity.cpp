#include "host/identity.h"

#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <stdexcept>

namespace fsout::host {

namespace {

uint32_t parse_id(const std::string& text, const std::string& whole) {
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("bad id '" + text + "' in '" + whole + "'");
  unsigned long long value = std::stoull(text);
  if (value >= 0xFFFFFFFFull) throw std::invalid_argument("id out of range in '" + whole + "'");
  return uint32_t(value);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) return parts;
    start = colon + 1;
  }
}

bool overlaps(const std::vector<IdRange>& ranges, IdRange r) {
  for (const auto& other : ranges) {
    auto disjoint = [](uint64_t a, uint64_t n, uint64_t b, uint64_t m) {
      return a + n <= b || b + m <= a;
    };
    if (!disjoint(r.guest, r.count, other.guest, other.count) ||
        !disjoint(r.host, r.count, other.host, other.count))
      return true;
  }
  return false;
}

std::optional<uint32_t> forward(const std::vector<IdRange>& ranges, uint32_t guest) {
  if (ranges.empty()) return guest;
  for (const auto& r : ranges)
    if (guest >= r.guest && uint64_t(guest) < uint64_t(r.guest) + r.count)
      return r.host + (guest - r.guest);
  return std::nullopt;
}

uint32_t backward(const std::vector<IdRange>& ranges, uint32_t host) {
  if (ranges.empty()) return host;
  for (const auto& r : ranges)
    if (host >= r.host && uint64_t(host) < uint64_t(r.host) + r.count)
      return r.guest + (host - r.host);
  return kOverflowId;
}

}  // namespace

IdRange IdMap::parse_range(const std::string& text) {
  auto parts = split(text);
  if (parts.size() != 3) throw std::invalid_argument("'" + text + "' is not GUEST:HOST:COUNT");
  IdRange r{parse_id(parts[0], text), parse_id(parts[1], text), parse_id(parts[2], text)};
  if (r.count == 0) throw std::invalid_argument("empty range in '" + text + "'");
  if (uint64_t(r.guest) + r.count > 0xFFFFFFFFull || uint64_t(r.host) + r.count > 0xFFFFFFFFull)
    throw std::invalid_argument("range out of bounds in '" + text + "'");
  return r;
}

std::pair<uint32_t, uint32_t> IdMap::parse_squash(const std::string& text) {
  auto parts = split(text);
  if (parts.size() != 2) throw std::invalid_argument("'" + text + "' is not UID:GID");
  return {parse_id(parts[0], text), parse_id(parts[1], text)};
}

void IdMap::add_uid_range(IdRange range) {
  if (overlaps(uids_, range)) throw std::invalid_argument("overlapping uid ranges");
  uids_.push_back(range);
}

void IdMap::add_gid_range(IdRange range) {
  if (overlaps(gids_, range)) throw std::invalid_argument("overlapping gid ranges");
  gids_.push_back(range);
}

void IdMap::set_squash(uint32_t uid, uint32_t gid) { squash_ = {uid, gid}; }

std::optional<uint32_t> IdMap::uid_to_host(uint32_t guest) const {
  if (squash_) return squash_->first;
  return forward(uids_, guest);
}

std::optional<uint32_t> IdMap::gid_to_host(uint32_t guest) const {
  if (squash_) return squash_->second;
  return forward(gids_, guest);
}

uint32_t IdMap::uid_to_guest(uint32_t host) const { return squash_ ? host : backward(uids_, host); }
uint32_t IdMap::gid_to_guest(uint32_t host) const { return squash_ ? host : backward(gids_, host); }

Result<HostCaller> to_host(const IdMap& ids, const protocol::Caller& caller) {
  HostCaller host;
  auto uid = ids.uid_to_host(caller.uid);
  auto gid = ids.gid_to_host(caller.gid);
  if (!uid || !gid) return Errno{EOVERFLOW};  // as the kernel says for an unmapped fsuid
  host.uid = *uid;
  host.gid = *gid;
  if (ids.squash()) return host;  // the squashed user has no other groups
  for (uint32_t group : caller.groups)
    if (auto mapped = ids.gid_to_host(group)) host.groups.push_back(*mapped);
  return host;
}

// The daemon's own groups, put back after each request.
const std::vector<gid_t>& daemon_groups() {
  static const std::vector<gid_t> groups = [] {
    std::vector<gid_t> list(size_t(std::max(0, getgroups(0, nullptr))));
    list.resize(size_t(std::max(0, getgroups(int(list.size()), list.data()))));
    return list;
  }();
  return groups;
}

ActingAs::ActingAs(const HostCaller& caller) {
  static const uid_t daemon_uid = geteuid();
  static const gid_t daemon_gid = getegid();
  if (daemon_uid != 0) return;
  // Root's own group with no other groups: the daemon (root, with every
  // file capability) already acts exactly so; the common case of a guest
  // working as root costs no syscall.
  if (caller.uid == 0 && caller.gid == daemon_gid && caller.groups.empty()) return;
  daemon_groups();  // taken before the first switch
  // Groups first: after fsuid leaves 0 the thread may no longer change them.
  syscall(SYS_setgroups, caller.groups.size(), caller.groups.data());
  syscall(SYS_setfsgid, caller.gid);
  syscall(SYS_setfsuid, caller.uid);  // drops the file capabilities unless uid 0
  switched_ = true;
}

ActingAs::~ActingAs() {
  if (!switched_) return;
  syscall(SYS_setfsuid, geteuid());  // regains the file capabilities
  syscall(SYS_setfsgid, getegid());
  syscall(SYS_setgroups, daemon_groups().size(), daemon_groups().data());
}

}  // namespace fsout::host
