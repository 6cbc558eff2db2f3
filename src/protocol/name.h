// SECURITY: the rule for names that arrive from a guest.
//
// Every operation names a file by (directory node, one name component); the
// host never glues strings into paths. A component must therefore never be a
// path: this check runs while a request is decoded, before any handler sees
// it, and a request that fails it is a protocol fault (the session ends).
#pragma once

#include <string_view>

namespace fsout::protocol {

// Longest name the wire accepts. Longer than NAME_MAX (255) on purpose: a
// name of 256..1024 bytes reaches the host, which answers ENAMETOOLONG as a
// local file system would, instead of ending the session.
inline constexpr size_t kMaxNameBytes = 1024;

inline bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  if (name == "." || name == "..") return false;  // would step out of or stay in the directory
  for (char c : name)
    if (c == '/' || c == '\0') return false;  // a separator would make it a path
  return true;
}

}  // namespace fsout::protocol
