// SECURITY: every path resolution the host performs goes through here.
//
// The guest names files only as (directory node, one component); components
// were already checked by protocol::is_valid_name() while decoding. These
// functions add the kernel's own guarantees on top, so that a symlink, a
// rename race or a bind mount inside the export can never make the host touch
// anything outside it:
//   - openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS):
//     resolution may not leave the directory fd and never follows a symlink;
//   - O_NOFOLLOW on every open, so the final component is never followed;
//   - a node is reopened for I/O only when it is a regular file or a
//     directory: opening a device node or fifo placed in the export by someone
//     on the host could reach host devices or block the daemon (the class of
//     CVE-2020-35517 in virtiofsd).
#pragma once

#include <string>
#include <string_view>

namespace fsout::host::confine {

// Opens `name` inside directory `dir_fd`. Returns an fd or -errno.
int open_beneath(int dir_fd, std::string_view name, int flags, unsigned mode = 0);

// Creates (or, without O_EXCL, opens an existing) regular file `name` in
// `dir_fd` for I/O. An existing name is opened only through its O_PATH fd and
// reopen_node(), so a device node or fifo that appeared under that name is
// never opened (-EACCES). Returns an fd or -errno.
int create_beneath(int dir_fd, std::string_view name, int flags, unsigned mode);

// Opens the node behind the O_PATH fd `node_fd` for I/O with `flags`
// (O_CREAT, O_EXCL and O_NOCTTY are dropped). Returns an fd or -errno;
// -EACCES when the node is neither a regular file nor a directory.
int reopen_node(int node_fd, int flags);

// "/proc/self/fd/N": for the few calls that take no fd (chmod, xattrs on
// O_PATH fds). The path designates the very inode the fd holds, wherever
// it has been moved since, so it cannot point outside the export.
// Inside the sandbox (sandbox.h), where no /proc is mounted, the working directory is
// /proc/PID/fd and fd_path() names just "N".
std::string fd_path(int fd);
void use_relative_fd_paths();

}  // namespace fsout::host::confine
