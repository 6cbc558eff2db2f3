// The session state log (host/session_state.h): what a restarted fsoutd reads back.
#include "host/session_state.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace fsout::host {
namespace {

using Ranges = std::map<uint64_t, std::pair<uint64_t, short>>;

TEST(SavedLocks, ALockReplacesWhatItOverlaps) {
  SavedLocks locks;
  locks.apply(0, 99, F_WRLCK);
  locks.apply(10, 19, F_UNLCK);
  EXPECT_EQ(locks.ranges, (Ranges{{0, {9, F_WRLCK}}, {20, {99, F_WRLCK}}}));
  locks.apply(5, 30, F_RDLCK);
  EXPECT_EQ(locks.ranges, (Ranges{{0, {4, F_WRLCK}}, {5, {30, F_RDLCK}}, {31, {99, F_WRLCK}}}));
  locks.apply(0, UINT64_MAX, F_UNLCK);
  EXPECT_TRUE(locks.ranges.empty());
}

class StateLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fsout-state-XXXXXX";
    dir_ = mkdtemp(pattern);
    fd_ = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  void TearDown() override {
    close(fd_);
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  int fd_ = -1;
  const std::string token_ = "0123456789abcdef0123456789abcdef";
};

TEST_F(StateLogTest, ReplayGivesTheStateAndStopsAtATornRecord) {
  {
    auto log = StateLog::create(fd_, token_, 7, 42);
    ASSERT_TRUE(log);
    log->node_added(2, 100, 1, "dir", "handle-2");
    log->node_added(3, 101, 2, "file", "handle-3");
    log->node_added(4, 102, 2, "gone", "handle-4");
    log->node_gone(4);
    log->node_renamed(3, 1, "moved");
    log->handle_added(1, 3, O_WRONLY | O_APPEND, false);
    log->flock_changed(1, 2 /* LOCK_EX */);
    log->lock_applied(3, 77, 1, 0, 99, F_WRLCK);
    log->intent(500, 9, 0);
    const std::vector<uint8_t> reply{1, 2, 3};
    log->done(500, 9, reply);
    log->intent(501, 10, 101);
  }
  // A record cut short by a crash: the replay ends before it.
  int file = openat(fd_, (token_ + ".state").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(file, 0);
  const unsigned char torn[] = {200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9};
  ASSERT_EQ(write(file, torn, sizeof torn), ssize_t(sizeof torn));
  close(file);

  auto state = StateLog::load(fd_, token_);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->root_device, 7u);
  EXPECT_EQ(state->root_inode, 42u);
  ASSERT_EQ(state->nodes.size(), 2u);
  EXPECT_EQ(state->nodes[3].name, "moved");
  EXPECT_EQ(state->nodes[3].parent, 1u);
  EXPECT_EQ(state->nodes[3].inode, 101u);
  EXPECT_EQ(state->nodes[3].handle, "handle-3");
  ASSERT_EQ(state->handles.count(1), 1u);
  EXPECT_EQ(state->handles[1].flags, O_WRONLY | O_APPEND);
  EXPECT_EQ(state->handles[1].flock, 2);
  EXPECT_EQ((state->locks[{3, 77}].ranges), (Ranges{{0, {99, F_WRLCK}}}));
  EXPECT_TRUE(state->journal[500].done);
  EXPECT_EQ(state->journal[500].reply, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_FALSE(state->journal[501].done);
  EXPECT_EQ(state->journal[501].before, 101u);

  // Rewritten compactly, it reads back the same; discarded, it is gone.
  auto again = StateLog::reopen(fd_, token_, *state);
  ASSERT_TRUE(again);
  auto reread = StateLog::load(fd_, token_);
  ASSERT_TRUE(reread);
  EXPECT_EQ(reread->nodes.size(), 2u);
  EXPECT_EQ(reread->locks.size(), 1u);
  EXPECT_EQ(reread->journal.size(), 2u);
  again->discard();
  EXPECT_FALSE(StateLog::load(fd_, token_));
}

TEST_F(StateLogTest, NotAStateFileIsRefused) {
  int file = openat(fd_, (token_ + ".state").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_EQ(write(file, "not a state file at all", 23), 23);
  close(file);
  EXPECT_FALSE(StateLog::load(fd_, token_));
  EXPECT_FALSE(StateLog::load(fd_, "../etc/passwd"));  // not a token: never opened
}

TEST(SessionToken, IsRandomHexOfFixedLength) {
  std::string a = new_session_token(), b = new_session_token();
  EXPECT_TRUE(is_session_token(a));
  EXPECT_NE(a, b);
  EXPECT_FALSE(is_session_token("0123456789ABCDEF0123456789abcdef"));
  EXPECT_FALSE(is_session_token("short"));
}

}  // namespace
}  // namespace fsout::host
