// fsoutd.conf (host/config.h): each export's command line from the global part and its
// section, and every mistake refused with the file and line that holds it; load_configuration
// reading exports.d beside the file.
#include "host/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace fsout::host {
namespace {

using Files = std::vector<std::pair<std::string, std::string>>;
using Args = std::vector<std::string>;

const char* const kGood =
    "# fsoutd configuration\n"               // 1
    "admin = unix:/run/fsout/admin.sock\n"   // 2
    "log-level = debug\n"                    // 3
    "threads = 4\n"                          // 4
    "read-only = yes\n"                      // 5
    "uid-map = 0:100000:1\n"                 // 6
    "uid-map = 1000:201000:100\n"            // 7
    "gid-map = 0:100000:1\n"                 // 8
    "squash = 65534:65534\n"                 // 9
    "\n"                                     // 10
    "[export alpha]\n"                       // 11
    "path = /srv/alpha\n"                    // 12
    "listen = unix:/run/fsout/alpha.sock\n"  // 13
    "listen = vsock:3:5000\n"                // 14
    "threads = 8\n"                          // 15
    "\n"                                     // 16
    "[export beta]\n"                        // 17
    "  # an indented comment\n"              // 18
    "path=/srv/beta\n"                       // 19
    "  listen   =   tcp:127.0.0.1:7000  \n"  // 20
    "read-only = no\n"                       // 21
    "serial-streams = true\n"                // 22
    "uid-map = 0:300000:65536\n"             // 23
    "state-dir = /var/lib/beta\n";           // 24

ConfigResult parse(const Files& files) { return parse_configuration(files, "/var/lib/fsout"); }

ConfigResult parse(const std::string& text) { return parse({{"fsoutd.conf", text}}); }

// The files are refused, and the message starts with `where` ("FILE:LINE: ") and says `what`.
void expect_error(const ConfigResult& result, const std::string& where, const std::string& what) {
  EXPECT_FALSE(result.config.has_value()) << "accepted; expected " << where << ": " << what;
  EXPECT_EQ(result.error.rfind(where + ": ", 0), 0u) << result.error;
  EXPECT_NE(result.error.find(what), std::string::npos) << result.error;
}

TEST(ConfigParse, GoodFileGivesEachExportsCommandLine) {
  const ConfigResult result = parse(kGood);
  ASSERT_TRUE(result.config) << result.error;
  const Configuration& config = *result.config;
  EXPECT_EQ(config.admin, "unix:/run/fsout/admin.sock");
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.files, std::vector<std::string>{"fsoutd.conf"});
  ASSERT_EQ(config.exports.size(), 2u);

  const ExportSpec& alpha = config.exports[0];
  EXPECT_EQ(alpha.name, "alpha");
  EXPECT_EQ(alpha.where, "fsoutd.conf:11");
  EXPECT_EQ(alpha.listen, (Args{"unix:/run/fsout/alpha.sock", "vsock:3:5000"}));
  EXPECT_EQ(alpha.state_dir, "/var/lib/fsout/alpha");
  // Global defaults (read-only, uid-map twice in order, gid-map, squash); its own threads.
  EXPECT_EQ(alpha.args, (Args{"--name",
                              "alpha",
                              "--log-level",
                              "debug",
                              "--listen",
                              "unix:/run/fsout/alpha.sock",
                              "--listen",
                              "vsock:3:5000",
                              "--read-only",
                              "--threads",
                              "8",
                              "--state-dir",
                              "/var/lib/fsout/alpha",
                              "--uid-map",
                              "0:100000:1",
                              "--uid-map",
                              "1000:201000:100",
                              "--gid-map",
                              "0:100000:1",
                              "--squash",
                              "65534:65534",
                              "--",
                              "/srv/alpha"}));

  const ExportSpec& beta = config.exports[1];
  EXPECT_EQ(beta.name, "beta");
  EXPECT_EQ(beta.where, "fsoutd.conf:17");
  EXPECT_EQ(beta.listen, Args{"tcp:127.0.0.1:7000"});
  EXPECT_EQ(beta.state_dir, "/var/lib/beta");
  // read-only = no overrides the global yes; its uid-map replaces both global ones (the
  // global gid-map stays); the global threads.
  EXPECT_EQ(beta.args,
            (Args{"--name", "beta", "--log-level", "debug", "--listen", "tcp:127.0.0.1:7000",
                  "--serial-streams", "--threads", "4", "--state-dir", "/var/lib/beta", "--uid-map",
                  "0:300000:65536", "--gid-map", "0:100000:1", "--squash", "65534:65534", "--",
                  "/srv/beta"}));

  EXPECT_EQ(config.find("beta"), &config.exports[1]);
  EXPECT_EQ(config.find("gamma"), nullptr);
}

TEST(ConfigParse, MinimalExportGetsDefaults) {
  const ConfigResult result = parse(
      "[export only]\n"
      "path = /srv/only\n"
      "listen = unix:/run/only.sock\n");
  ASSERT_TRUE(result.config) << result.error;
  EXPECT_EQ(result.config->admin, "");
  EXPECT_EQ(result.config->log_level, "info");
  ASSERT_EQ(result.config->exports.size(), 1u);
  EXPECT_EQ(result.config->exports[0].state_dir, "/var/lib/fsout/only");
  EXPECT_EQ(result.config->exports[0].args,
            (Args{"--name", "only", "--log-level", "info", "--listen", "unix:/run/only.sock",
                  "--state-dir", "/var/lib/fsout/only", "--", "/srv/only"}));
}

TEST(ConfigParse, CarriageReturnsAndBlankLinesAreIgnored) {
  const ConfigResult result =
      parse("log-level = warning\r\n\r\n[export a]\r\npath = /a\r\nlisten = unix:/a.sock\r\n");
  ASSERT_TRUE(result.config) << result.error;
  EXPECT_EQ(result.config->exports.at(0).args,
            (Args{"--name", "a", "--log-level", "warning", "--listen", "unix:/a.sock",
                  "--state-dir", "/var/lib/fsout/a", "--", "/a"}));
}

TEST(ConfigParse, Booleans) {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"yes", true}, {"true", true},   {"on", true},   {"1", true},
      {"no", false}, {"false", false}, {"off", false}, {"0", false}};
  for (const auto& [word, on] : cases) {
    const ConfigResult result =
        parse("[export a]\npath = /a\nlisten = unix:/a.sock\nread-only = " + word + "\n");
    ASSERT_TRUE(result.config) << word << ": " << result.error;
    const Args& args = result.config->exports.at(0).args;
    EXPECT_EQ(std::count(args.begin(), args.end(), "--read-only"), on ? 1 : 0) << word;
    // A boolean is a flag: its word never reaches the command line.
    EXPECT_EQ(std::count(args.begin(), args.end(), word), 0) << word;
  }
  // A section turns off what the global part turned on, and the other way round.
  const ConfigResult result = parse(
      "serial-streams = on\nread-only = off\n"
      "[export a]\npath = /a\nlisten = unix:/a.sock\nserial-streams = off\nread-only = true\n");
  ASSERT_TRUE(result.config) << result.error;
  const Args& args = result.config->exports.at(0).args;
  EXPECT_EQ(std::count(args.begin(), args.end(), "--serial-streams"), 0);
  EXPECT_EQ(std::count(args.begin(), args.end(), "--read-only"), 1);
}

TEST(ConfigParse, GoodNames) {
  const std::string longest(64, 'n');
  for (const std::string& name : {std::string("a"), std::string("vm-01.example_x"), longest}) {
    const ConfigResult result = parse("[export " + name + "]\npath = /a\nlisten = unix:/a.sock\n");
    ASSERT_TRUE(result.config) << name << ": " << result.error;
    EXPECT_EQ(result.config->exports.at(0).name, name);
  }
}

TEST(ConfigErrors, UnknownKey) {
  expect_error(parse("threads = 2\ncolour = red\n"), "fsoutd.conf:2", "unknown key 'colour'");
  expect_error(parse("[export a]\npath = /a\nlisten = unix:/a\nlisten-on = x\n"), "fsoutd.conf:4",
               "listen-on");
}

TEST(ConfigErrors, NotKeyValue) {
  expect_error(parse("[export a]\npath /srv/a\n"), "fsoutd.conf:2", "KEY = VALUE");
}

TEST(ConfigErrors, BadSectionHeader) {
  for (const char* header : {"[exports a]", "[export a", "[server]", "[export]", "[ export a]"})
    expect_error(parse(std::string("# x\n") + header + "\npath = /a\nlisten = unix:/a\n"),
                 "fsoutd.conf:2", "[export NAME]");
}

TEST(ConfigErrors, BadName) {
  for (const std::string& name :
       {std::string("a/b"), std::string(".hidden"), std::string("-x"), std::string("a b"),
        std::string("caf\xc3\xa9"), std::string(65, 'n'), std::string("")})
    expect_error(parse("threads = 1\n[export " + name + "]\npath = /a\nlisten = unix:/a\n"),
                 "fsoutd.conf:2", "bad export name");
}

TEST(ConfigErrors, DuplicateExport) {
  expect_error(parse("[export a]\npath = /a\nlisten = unix:/a\n"
                     "[export b]\npath = /b\nlisten = unix:/b\n"
                     "[export a]\npath = /c\nlisten = unix:/c\n"),
               "fsoutd.conf:7", "the export a is described twice");
  // Across files: the second description is the one named.
  expect_error(parse(Files{{"fsoutd.conf", "[export a]\npath = /a\nlisten = unix:/a\n"},
                           {"exports.d/a.conf", "# again\n[export a]\npath = /b\n"}}),
               "exports.d/a.conf:2", "the export a is described twice");
}

TEST(ConfigErrors, DuplicateKey) {
  expect_error(parse("threads = 1\nthreads = 2\n"), "fsoutd.conf:2", "threads is given twice");
  expect_error(parse("[export a]\npath = /a\nlisten = unix:/a\npath = /b\n"), "fsoutd.conf:4",
               "path is given twice");
  expect_error(parse("[export a]\npath = /a\nlisten = unix:/a\nread-only = yes\nread-only = no\n"),
               "fsoutd.conf:5", "read-only is given twice");
  // A key given once globally and once in a section is not a repetition.
  EXPECT_TRUE(parse("threads = 1\n[export a]\npath = /a\nlisten = unix:/a\nthreads = 2\n").config);
}

TEST(ConfigErrors, MissingPathOrListen) {
  expect_error(parse("[export a]\npath = /a\nlisten = unix:/a\n\n[export b]\nlisten = unix:/b\n"),
               "fsoutd.conf:5", "the export b has no path");
  expect_error(parse("[export a]\npath = /a\n"), "fsoutd.conf:1", "the export a has no listen");
}

TEST(ConfigErrors, SharedListenAddress) {
  expect_error(parse("[export a]\npath = /a\nlisten = unix:/a\nlisten = tcp:127.0.0.1:7000\n"
                     "[export b]\npath = /b\nlisten = tcp:127.0.0.1:7000\n"),
               "fsoutd.conf:5", "tcp:127.0.0.1:7000 is a listen address of a already");
  // Also when the second export is in another file.
  expect_error(parse(Files{{"fsoutd.conf", "[export a]\npath = /a\nlisten = unix:/s\n"},
                           {"exports.d/b.conf", "[export b]\npath = /b\nlisten = unix:/s\n"}}),
               "exports.d/b.conf:1", "listen address of a");
}

TEST(ConfigErrors, GlobalOnlyKeyInSection) {
  expect_error(parse("[export a]\npath = /a\nlisten = unix:/a\nadmin = unix:/adm\n"),
               "fsoutd.conf:4", "admin belongs before the first [export] section");
  expect_error(parse("[export a]\nlog-level = debug\n"), "fsoutd.conf:2",
               "log-level belongs before");
}

TEST(ConfigErrors, PathOrListenInGlobalPart) {
  expect_error(parse("# x\npath = /srv\n"), "fsoutd.conf:2",
               "path belongs in an [export NAME] section");
  expect_error(parse("listen = unix:/a\n"), "fsoutd.conf:1",
               "listen belongs in an [export NAME] section");
}

TEST(ConfigErrors, GlobalKeyInExportsDirectoryFile) {
  expect_error(parse(Files{{"fsoutd.conf", "[export a]\npath = /a\nlisten = unix:/a\n"},
                           {"exports.d/b.conf", "# b\nthreads = 2\n[export b]\n"}}),
               "exports.d/b.conf:2", "files in exports.d hold [export NAME] sections only");
  // A section in the main file does not carry over into the next file.
  expect_error(parse(Files{{"fsoutd.conf", "[export a]\npath = /a\n"},
                           {"exports.d/b.conf", "listen = unix:/a\n"}}),
               "exports.d/b.conf:1", "sections only");
}

TEST(ConfigErrors, EmptyValue) {
  expect_error(parse("threads =\n"), "fsoutd.conf:1", "threads needs a value");
  expect_error(parse("[export a]\npath =   \n"), "fsoutd.conf:2", "path needs a value");
}

TEST(ConfigErrors, BadBoolean) {
  expect_error(parse("read-only = maybe\n"), "fsoutd.conf:1",
               "read-only is yes or no, not 'maybe'");
  expect_error(parse("[export a]\npath = /a\nlisten = unix:/a\nserial-streams = Y\n"),
               "fsoutd.conf:4", "serial-streams is yes or no");
}

TEST(ConfigErrors, EveryErrorIsInTheFirstLineThatHasOne) {
  // Two mistakes: the first one is reported.
  expect_error(parse("threads = 1\nbogus = 1\nthreads = 2\n"), "fsoutd.conf:2", "bogus");
}

TEST(ExportSpecEquality, ComparesTheCommandLine) {
  const ConfigResult before = parse(
      "threads = 4\n[export a]\npath = /a\nlisten = unix:/a\n[export b]\npath = /b\n"
      "listen = unix:/b\n");
  // The same exports, written in another order and place: unchanged for SIGHUP.
  const ConfigResult moved = parse(
      "# moved\n\nthreads = 4\n[export b]\npath = /b\nlisten = unix:/b\n\n[export a]\n"
      "listen = unix:/a\npath = /a\n");
  // b with another thread count.
  const ConfigResult changed = parse(
      "threads = 4\n[export a]\npath = /a\nlisten = unix:/a\n[export b]\npath = /b\n"
      "listen = unix:/b\nthreads = 5\n");
  ASSERT_TRUE(before.config && moved.config && changed.config);
  const ExportSpec& a = *before.config->find("a");
  EXPECT_NE(a.where, moved.config->find("a")->where);
  EXPECT_TRUE(a == *moved.config->find("a"));
  EXPECT_TRUE(*before.config->find("b") == *moved.config->find("b"));
  EXPECT_TRUE(a == *changed.config->find("a"));
  EXPECT_FALSE(*before.config->find("b") == *changed.config->find("b"));
  EXPECT_FALSE(a == *before.config->find("b"));
}

class ConfigLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fsout-config-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::filesystem::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigLoad, ReadsExportsDirectoryInNameOrder) {
  write("fsoutd.conf", "threads = 3\n[export main]\npath = /m\nlisten = unix:/m\n");
  write("exports.d/20-b.conf", "[export b]\npath = /b\nlisten = unix:/b\n");
  write("exports.d/10-a.conf", "# a\n[export a]\npath = /a\nlisten = unix:/a\n");
  // Not *.conf: never read (each would be an error if it were).
  write("exports.d/notes.txt", "this is not a configuration\n");
  write("exports.d/30-c.conf.disabled", "[export c]\n");
  write("exports.d/40-d.conf~", "bogus = 1\n");
  std::filesystem::create_directories(dir_ / "exports.d/50-dir.conf");

  const ConfigResult result = load_configuration((dir_ / "fsoutd.conf").string(), "/state");
  ASSERT_TRUE(result.config) << result.error;
  const Configuration& config = *result.config;
  EXPECT_EQ(config.files, (std::vector<std::string>{(dir_ / "fsoutd.conf").string(),
                                                    (dir_ / "exports.d/10-a.conf").string(),
                                                    (dir_ / "exports.d/20-b.conf").string()}));
  ASSERT_EQ(config.exports.size(), 3u);
  EXPECT_EQ(config.exports[0].name, "main");
  EXPECT_EQ(config.exports[1].name, "a");
  EXPECT_EQ(config.exports[2].name, "b");
  EXPECT_EQ(config.exports[1].where, (dir_ / "exports.d/10-a.conf").string() + ":2");
  // The global part of the main file is the default for exports.d's sections too.
  EXPECT_EQ(config.exports[2].args,
            (Args{"--name", "b", "--log-level", "info", "--listen", "unix:/b", "--threads", "3",
                  "--state-dir", "/state/b", "--", "/b"}));
}

TEST_F(ConfigLoad, ErrorInExportsDirectoryNamesThatFile) {
  write("fsoutd.conf", "[export a]\npath = /a\nlisten = unix:/a\n");
  write("exports.d/b.conf", "[export b]\npath = /b\nlisten = unix:/b\nthreads =\n");
  const ConfigResult result = load_configuration((dir_ / "fsoutd.conf").string(), "/state");
  expect_error(result, (dir_ / "exports.d/b.conf").string() + ":4", "threads needs a value");
}

TEST_F(ConfigLoad, WithoutExportsDirectory) {
  write("fsoutd.conf", "[export a]\npath = /a\nlisten = unix:/a\n");
  const ConfigResult result = load_configuration((dir_ / "fsoutd.conf").string(), "/state");
  ASSERT_TRUE(result.config) << result.error;
  EXPECT_EQ(result.config->exports.size(), 1u);
  EXPECT_EQ(result.config->exports[0].state_dir, "/state/a");
}

TEST_F(ConfigLoad, MissingFileIsAnError) {
  const std::string path = (dir_ / "absent.conf").string();
  const ConfigResult result = load_configuration(path, "/state");
  EXPECT_FALSE(result.config);
  EXPECT_NE(result.error.find(path), std::string::npos) << result.error;
}

TEST(ConfigKeys, ListsEveryKey) {
  const auto& keys = configuration_keys();
  for (const char* key : {"admin", "log-level", "path", "listen", "read-only", "uid-map", "gid-map",
                          "squash", "state-dir", "threads"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  // Each listed key other than path, listen and state-dir (each export has its own) is
  // accepted in the global part; those three are refused there.
  for (const auto& key : keys) {
    if (key == "path" || key == "listen" || key == "state-dir") {
      const ConfigResult refused = parse(key + " = x\n[export a]\npath = /a\nlisten = unix:/a\n");
      EXPECT_FALSE(refused.config) << key;
      EXPECT_NE(refused.error.find("belongs in an [export NAME] section"), std::string::npos)
          << refused.error;
      continue;
    }
    const std::string value = key == "read-only" || key == "serial-streams" ? "yes" : "x";
    const ConfigResult result =
        parse(key + " = " + value + "\n[export a]\npath = /a\nlisten = unix:/a\n");
    EXPECT_TRUE(result.config) << key << ": " << result.error;
  }
}

}  // namespace
}  // namespace fsout::host
