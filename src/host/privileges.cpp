// fsoutd runs as root to act as any guest user and to watch the export, and reads bytes a
// guest wrote: whatever it does not need is dropped at start, so that a flaw reaches less.
#include "host/privileges.h"

#include <cap-ng.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace fsout::host {

namespace {

// Each one and what needs it.
constexpr int kKept[] = {
    CAP_CHOWN,            // owners a guest sets, and creating files as the caller
    CAP_DAC_OVERRIDE,     // a guest root's access to files of other users, as root has locally
    CAP_DAC_READ_SEARCH,  // the same for directories; file handles (change notifications)
    CAP_FOWNER,           // chmod, utimes and xattrs on files a guest root does not own
    CAP_FSETID,           // keeping set-group-ID bits as a local root does
    CAP_SETUID,           // setfsuid: acting as the guest's user
    CAP_SETGID,           // setfsgid and the caller's supplementary groups
    CAP_MKNOD,            // device nodes a guest root makes (and RENAME_WHITEOUT)
    CAP_SETFCAP,          // security.capability a guest root sets
    CAP_SYS_ADMIN,        // fanotify (change notifications) and trusted.* xattrs
};

}  // namespace

std::string drop_privileges(bool bind_low_ports) {
  std::string note;
  if (geteuid() == 0) {
    capng_clear(CAPNG_SELECT_BOTH);  // also the bounding set
    for (int capability : kKept)
      capng_update(CAPNG_ADD, capng_type_t(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET),
                   unsigned(capability));
    if (bind_low_ports)
      capng_update(CAPNG_ADD, capng_type_t(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET),
                   CAP_NET_BIND_SERVICE);
    if (int rc = capng_apply(CAPNG_SELECT_BOTH); rc != 0)
      throw std::runtime_error("cannot drop capabilities (capng_apply: " + std::to_string(rc) +
                               ")");
    note = "capabilities kept: " + std::to_string(std::size(kKept) + (bind_low_ports ? 1 : 0));
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    throw std::runtime_error(std::string("cannot set no_new_privs: ") + std::strerror(errno));
  return note.empty() ? "no_new_privs" : note + ", no_new_privs";
}

}  // namespace fsout::host
