// SECURITY: what a compromised fsoutd could still reach. fsoutd reads bytes written by a
// guest that may be hostile; path resolution (confine.h) keeps every request inside the
// export, and the sandbox makes sure that even code that went wrong could not see more:
//   - namespace (default): a mount namespace whose root is the export (pivot_root; nothing
//     else of the host's file tree is left), its own network and IPC namespaces (no new
//     connections anywhere; listeners are bound before), and /proc only as one directory fd
//     of a private proc mount that shows processes and nothing else (/proc/PID/fd is what
//     fsoutd needs: reopening O_PATH nodes, xattrs and times through the magic links).
//     Without root: the same inside a user namespace of fsoutd's own user.
//   - chroot: chroot(2) into the export, for hosts that allow no namespaces (containers);
//     /proc as above, but the host's own and still attached: `..` from the working
//     directory leaves the chroot, so this removes absolute paths only.
//   - none: nothing (debugging).
// Then a seccomp allow-list of the system calls fsoutd makes: any other call stops the
// daemon with a log line that names it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace fsout::host {

enum class SandboxMode { kNamespace, kChroot, kNone };

std::optional<SandboxMode> parse_sandbox_mode(std::string_view text);

struct Sandboxed {
  std::string export_path;  // where the export is now ("/" inside the sandbox)
  std::string note;         // for the log: what was done, or what could not be had
};

// Enters the sandbox. Must run before any thread exists (namespaces are per thread until
// then) and after every host path fsoutd needs was opened or bound. Throws
// std::runtime_error with a one-line message when the mode cannot be had.
Sandboxed enter_sandbox(SandboxMode mode, const std::string& export_path);

// Installs the seccomp allow-list (needs no_new_privs or CAP_SYS_ADMIN), for this thread
// and every thread it starts later. Throws std::runtime_error when it cannot.
void restrict_system_calls();

}  // namespace fsout::host
