// Identity and permissions on a real mount (issue: files belong to the guest
// user who made them): the permission battery (perm_battery.cpp, several
// non-root users with supplementary groups) against a plain directory, the
// id mapping modes of fsoutd, and the guest making special files.
#include <grp.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cerrno>
#include <functional>

#include "harness.h"

namespace fsout_test {
namespace {

// Runs `body` in a child process as uid:gid with `groups`; returns what the
// body returned (0 or an errno value), 125 when the switch failed.
int as_user(uid_t uid, gid_t gid, std::vector<gid_t> groups, const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
      _exit(125);
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 126;
}

int result(int rc) { return rc == 0 ? 0 : errno; }

std::pair<uid_t, gid_t> owner(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return {uid_t(-1), gid_t(-1)};
  return {st.st_uid, st.st_gid};
}
using Ids = std::pair<uid_t, gid_t>;


class PermissionBattery : public ::testing::TestWithParam<std::string> {};

TEST_P(PermissionBattery, MatchesAPlainDirectory) {
  ASSERT_EQ(geteuid(), 0u) << "the permission battery switches users: it needs root";
  const std::string& native = plain_directory_transcript(PERM_BATTERY_PATH);
  MountedExport mounted("unix", "allow_other,cache=" + GetParam());
  ASSERT_TRUE(mounted.mounted());
  Output out = run({PERM_BATTERY_PATH, mounted.mount_dir()});
  EXPECT_EQ(out.status, 0) << out.err;
  expect_same_transcript(native, out.out, 300);
  EXPECT_TRUE(fs::is_empty(mounted.export_dir()));
}

INSTANTIATE_TEST_SUITE_P(Identity, PermissionBattery, ::testing::Values("coherent", "auto", "none"),
                         [](const auto& info) { return info.param; });

// --uid-map/--gid-map: the host sees mapped ids, the guest its own; host ids
// outside the map show as 65534; unmapped ids can neither create nor be given.
TEST(Identity, UidMapShowsMappedIdsOnEachSide) {
  ASSERT_EQ(geteuid(), 0u);
  MountedExport m("unix", "allow_other",
                  {"--uid-map", "0:0:1", "--uid-map", "1000:201000:100", "--gid-map", "0:0:1",
                   "--gid-map", "1000:201000:100"});
  ASSERT_TRUE(m.mounted());
  std::string shared = m.mount_dir() + "/shared", host = m.export_dir() + "/shared";
  ASSERT_EQ(mkdir(shared.c_str(), 0777), 0);
  ASSERT_EQ(chmod(shared.c_str(), 0777), 0);
  EXPECT_EQ(owner(host), Ids(0, 0));
  int rc = as_user(1005, 1005, {1010}, [&] {
    int fd = open((shared + "/file").c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) return errno;
    close(fd);
    if (mkdir((shared + "/dir").c_str(), 0755) != 0) return errno;
    if (symlink("file", (shared + "/link").c_str()) != 0) return errno;
    return result(lchown((shared + "/file").c_str(), -1, 1010));  // a supplementary group
  });
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(owner(host + "/file"), Ids(201005, 201010));
  EXPECT_EQ(owner(host + "/dir"), Ids(201005, 201005));
  EXPECT_EQ(owner(host + "/link"), Ids(201005, 201005));
  EXPECT_EQ(owner(shared + "/file"), Ids(1005, 1010));
  EXPECT_EQ(owner(shared + "/dir"), Ids(1005, 1005));
  EXPECT_EQ(owner(shared + "/link"), Ids(1005, 1005));
  // Guest root gives a file away inside the map.
  ASSERT_EQ(lchown((shared + "/dir").c_str(), 1020, 1030), 0);
  EXPECT_EQ(owner(host + "/dir"), Ids(201020, 201030));
  EXPECT_EQ(owner(shared + "/dir"), Ids(1020, 1030));
  // ... but not to an id outside it.
  EXPECT_NE(lchown((shared + "/dir").c_str(), 5000, -1), 0);
  EXPECT_EQ(errno, EINVAL);
  // A host file of an unmapped owner shows as the overflow id.
  { std::ofstream(host + "/foreign") << "x"; }
  ASSERT_EQ(lchown((host + "/foreign").c_str(), 4242, 4243), 0);
  EXPECT_EQ(owner(shared + "/foreign"), Ids(65534, 65534));
  // An unmapped guest user cannot create (EOVERFLOW, as in a user namespace).
  rc = as_user(3000, 3000, {}, [&] {
    int fd = open((shared + "/nope").c_str(), O_CREAT | O_WRONLY, 0644);
    return fd < 0 ? errno : 0;
  });
  EXPECT_EQ(rc, EOVERFLOW);
  EXPECT_FALSE(fs::exists(host + "/nope"));
}

// --squash: everything is made as one host user; the guest keeps seeing the
// owners it gave (kept in an xattr that guests cannot see or change).
TEST(Identity, SquashMakesEverythingOneHostUser) {
  ASSERT_EQ(geteuid(), 0u);
  MountedExport m("unix", "allow_other", {"--squash", "4321:4322"});
  ASSERT_TRUE(m.mounted());
  // The squashed user must be able to write the export, as any host user.
  ASSERT_EQ(chown(m.export_dir().c_str(), 4321, 4322), 0);
  std::string shared = m.mount_dir() + "/shared", host = m.export_dir() + "/shared";
  ASSERT_EQ(mkdir(shared.c_str(), 0777), 0);
  ASSERT_EQ(chmod(shared.c_str(), 0777), 0);
  EXPECT_EQ(owner(host), Ids(4321, 4322));
  EXPECT_EQ(owner(shared), Ids(0, 0));
  int rc = as_user(1005, 1006, {}, [&] {
    int fd = open((shared + "/file").c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) return errno;
    close(fd);
    if (mkdir((shared + "/dir").c_str(), 0755) != 0) return errno;
    if (symlink("file", (shared + "/link").c_str()) != 0) return errno;
    return result(mkfifo((shared + "/fifo").c_str(), 0644));
  });
  ASSERT_EQ(rc, 0);
  for (std::string name : {"file", "dir", "link", "fifo"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(owner(host + "/" + name), Ids(4321, 4322));
    EXPECT_EQ(owner(shared + "/" + name), Ids(1005, 1006));
  }
  // chown in the guest changes what the guest sees, not the host owner.
  ASSERT_EQ(lchown((shared + "/file").c_str(), 1007, 1008), 0);
  EXPECT_EQ(owner(shared + "/file"), Ids(1007, 1008));
  EXPECT_EQ(owner(host + "/file"), Ids(4321, 4322));
  // The guest's owner survives a fresh mount (it is on the host, in the xattr).
  // The xattr itself is invisible and untouchable from the guest.
  char names[4096];
  ssize_t n = listxattr((shared + "/file").c_str(), names, sizeof(names));
  ASSERT_GE(n, 0);
  EXPECT_EQ(std::string(names, size_t(n)).find("fsout"), std::string::npos);
  EXPECT_LT(getxattr((shared + "/file").c_str(), "trusted.fsout.owner", names, sizeof(names)), 0);
  EXPECT_NE(setxattr((shared + "/file").c_str(), "trusted.fsout.owner", "0:0", 3, 0), 0);
  EXPECT_EQ(owner(shared + "/file"), Ids(1007, 1008));
}

// The guest makes fifos, sockets and (as root) device nodes; they are real
// objects on the host, and stat shows the right type and device number.
TEST(Identity, GuestMakesSpecialFiles) {
  ASSERT_EQ(geteuid(), 0u);
  MountedExport m("unix", "allow_other");
  ASSERT_TRUE(m.mounted());
  std::string mnt = m.mount_dir(), host = m.export_dir();
  ASSERT_EQ(mknod((mnt + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(mknod((mnt + "/fifo").c_str(), S_IFIFO | 0640, 0), 0);
  ASSERT_EQ(mknod((mnt + "/sock").c_str(), S_IFSOCK | 0600, 0), 0);
  struct stat guest, on_host;
  ASSERT_EQ(lstat((mnt + "/null").c_str(), &guest), 0);
  ASSERT_EQ(lstat((host + "/null").c_str(), &on_host), 0);
  EXPECT_TRUE(S_ISCHR(guest.st_mode) && S_ISCHR(on_host.st_mode));
  EXPECT_EQ(guest.st_rdev, makedev(1, 3));
  EXPECT_EQ(on_host.st_rdev, makedev(1, 3));
  EXPECT_EQ(guest.st_ino, on_host.st_ino);  // the host's inode numbers
  ASSERT_EQ(lstat((mnt + "/fifo").c_str(), &guest), 0);
  EXPECT_TRUE(S_ISFIFO(guest.st_mode));
  EXPECT_EQ(guest.st_mode & 07777, 0640u);
  ASSERT_EQ(lstat((mnt + "/sock").c_str(), &guest), 0);
  EXPECT_TRUE(S_ISSOCK(guest.st_mode));
  // A non-root guest user may not make a device node (where it could make
  // anything else).
  ASSERT_EQ(mkdir((mnt + "/open").c_str(), 0777), 0);
  ASSERT_EQ(chmod((mnt + "/open").c_str(), 0777), 0);
  int rc = as_user(1005, 1005, {}, [&] {
    if (mkfifo((mnt + "/open/fifo").c_str(), 0644) != 0) return errno;
    return result(mknod((mnt + "/open/null").c_str(), S_IFCHR | 0666, makedev(1, 3)));
  });
  EXPECT_EQ(rc, EPERM);
}

}  // namespace
}  // namespace fsout_test
