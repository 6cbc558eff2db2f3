// Mount tests: a real fsoutd and a real fsout-mount (FUSE), differential
// against a plain directory on the same file system. The battery
// (battery.cpp) runs the same operation sequence on both and prints a
// transcript of results and errno names; the transcripts must be identical.
#include "harness.h"

namespace fsout_test {

void expect_same_transcript(const std::string& native, const std::string& mounted,
                            size_t at_least) {
  auto a = lines(native), b = lines(mounted);
  EXPECT_GT(a.size(), at_least);
  size_t differences = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    std::string left = i < a.size() ? a[i] : "<missing>", right = i < b.size() ? b[i] : "<missing>";
    if (left != right && ++differences <= 30)
      ADD_FAILURE() << "line " << i + 1 << "\n  plain directory: " << left
                    << "\n  fsout mount:     " << right;
  }
  EXPECT_EQ(differences, 0u);
}

struct Variant {
  std::string transport;
  std::string cache;
};

void PrintTo(const Variant& v, std::ostream* out) { *out << v.transport << ", cache=" << v.cache; }

class Differential : public ::testing::TestWithParam<Variant> {};

TEST_P(Differential, BatteryMatchesAPlainDirectory) {
  ASSERT_EQ(geteuid(), 0u) << "mount tests need root (FUSE allow_other and the non-root checks)";
  const std::string& native = plain_directory_transcript(BATTERY_PATH);
  MountedExport mounted(GetParam().transport,
                        "allow_other,default_permissions,cache=" + GetParam().cache);
  ASSERT_TRUE(mounted.mounted());
  Output out = run({BATTERY_PATH, mounted.mount_dir()});
  EXPECT_EQ(out.status, 0) << out.err;
  expect_same_transcript(native, out.out);
  EXPECT_TRUE(fs::is_empty(mounted.export_dir()));  // the battery cleaned up, through the mount
}

INSTANTIATE_TEST_SUITE_P(Mount, Differential,
                         ::testing::Values(Variant{"unix", "coherent"}, Variant{"tcp", "coherent"},
                                           Variant{"unix", "auto"}, Variant{"tcp", "auto"},
                                           Variant{"unix", "none"}, Variant{"unix", "always"},
                                           Variant{"tcp", "none"}),
                         [](const auto& info) {
                           return info.param.transport + "_" + info.param.cache;
                         });

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Mount, DataCrossesBothWays) {
  MountedExport mounted("unix", "cache=none");
  ASSERT_TRUE(mounted.mounted());
  std::string data(5 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = char(i * 31 + (i >> 11));
  std::ofstream(mounted.mount_dir() + "/from-guest", std::ios::binary) << data;
  EXPECT_EQ(read_text(mounted.export_dir() + "/from-guest"), data);
  std::ofstream(mounted.export_dir() + "/from-host", std::ios::binary) << "written on the host";
  EXPECT_EQ(read_text(mounted.mount_dir() + "/from-host"), "written on the host");
  fs::create_directories(mounted.mount_dir() + "/a/b/c");
  EXPECT_TRUE(fs::is_directory(mounted.export_dir() + "/a/b/c"));
}

TEST(Mount, ReadOnlyExport) {
  std::string root = make_temp_dir();
  fs::create_directory(root + "/export");
  fs::create_directory(root + "/mnt");
  std::ofstream(root + "/export/file") << "kept";
  std::string address = "unix:" + root + "/sock";
  {
    Background daemon({FSOUTD_PATH, "--read-only", "--listen", address, "--state-dir",
                       root + "/state", root + "/export"},
                      root + "/fsoutd.log");
    ASSERT_TRUE(wait_until([&] { return run({FSOUT_PATH, address, "df"}, 10).status == 0; }));
    Background mount({FSOUT_MOUNT_PATH, "-f", "-o", "reconnect=0", address, root + "/mnt"},
                     root + "/mount.log");
    ASSERT_TRUE(wait_until([&] { return is_mounted(root + "/mnt"); }));
    EXPECT_EQ(read_text(root + "/mnt/file"), "kept");
    errno = 0;
    EXPECT_LT(open((root + "/mnt/new").c_str(), O_WRONLY | O_CREAT, 0644), 0);
    EXPECT_EQ(errno, EROFS);
    EXPECT_NE(unlink((root + "/mnt/file").c_str()), 0);
    umount2((root + "/mnt").c_str(), MNT_DETACH);
  }
  EXPECT_TRUE(fs::exists(root + "/export/file"));
  EXPECT_FALSE(fs::exists(root + "/export/new"));
  fs::remove_all(root);
}

// When fsoutd goes away, the mount ends instead of hanging its users.
// -o reconnect=0: the behaviour from before restarts were survived (restart_test.cpp has
// the default, where the mount stays).
TEST(Mount, WithoutReconnectHostExitEndsTheMount) {
  std::string root = make_temp_dir();
  fs::create_directory(root + "/export");
  fs::create_directory(root + "/mnt");
  std::string address = "unix:" + root + "/sock";
  auto daemon = std::make_unique<Background>(
      std::vector<std::string>{FSOUTD_PATH, "--listen", address, "--state-dir", root + "/state",
                               root + "/export"},
      root + "/fsoutd.log");
  ASSERT_TRUE(wait_until([&] { return run({FSOUT_PATH, address, "df"}, 10).status == 0; }));
  Background mount({FSOUT_MOUNT_PATH, "-f", "-o", "reconnect=0", address, root + "/mnt"},
                   root + "/mount.log");
  ASSERT_TRUE(wait_until([&] { return is_mounted(root + "/mnt"); }));
  daemon.reset();
  EXPECT_TRUE(wait_until([&] { return !mount.running(); }));
  if (is_mounted(root + "/mnt")) umount2((root + "/mnt").c_str(), MNT_DETACH);
  EXPECT_FALSE(is_mounted(root + "/mnt"));
  fs::remove_all(root);
}

TEST(Cli, CommandsWorkAgainstARunningHost) {
  MountedExport host("unix", "cache=none");
  const std::string& a = host.address();
  std::string local = host.export_dir() + "/../local.bin";
  std::string data(3 << 20, 'x');
  data[100] = 'y';
  std::ofstream(local, std::ios::binary) << data;
  EXPECT_EQ(run({FSOUT_PATH, a, "mkdir", "dir"}).status, 0);
  EXPECT_EQ(run({FSOUT_PATH, a, "put", local, "dir/file"}).status, 0);
  EXPECT_EQ(read_text(host.export_dir() + "/dir/file"), data);
  Output cat = run({FSOUT_PATH, a, "cat", "dir/file"});
  EXPECT_EQ(cat.status, 0);
  EXPECT_EQ(cat.out, data);
  Output ls = run({FSOUT_PATH, a, "ls", "dir"});
  EXPECT_EQ(ls.status, 0);
  EXPECT_NE(ls.out.find(" file\n"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(std::to_string(data.size())), std::string::npos) << ls.out;
  Output st = run({FSOUT_PATH, a, "stat", "dir/file"});
  EXPECT_NE(st.out.find("size: " + std::to_string(data.size())), std::string::npos) << st.out;
  EXPECT_EQ(run({FSOUT_PATH, a, "mv", "dir/file", "moved"}).status, 0);
  EXPECT_TRUE(fs::exists(host.export_dir() + "/moved"));
  EXPECT_EQ(run({FSOUT_PATH, a, "get", "moved", local + ".back"}).status, 0);
  EXPECT_EQ(read_text(local + ".back"), data);
  EXPECT_EQ(run({FSOUT_PATH, a, "rm", "moved"}).status, 0);
  EXPECT_EQ(run({FSOUT_PATH, a, "rm", "dir"}).status, 0);
  EXPECT_TRUE(fs::is_empty(host.export_dir()));
  Output df = run({FSOUT_PATH, a, "df"});
  EXPECT_EQ(df.status, 0);
  EXPECT_NE(df.out.find("available"), std::string::npos);
  // Through the mount, the same names are seen.
  std::ofstream(host.mount_dir() + "/via-mount") << "m";
  EXPECT_EQ(run({FSOUT_PATH, a, "cat", "via-mount"}).out, "m");
}

}  // namespace fsout_test
