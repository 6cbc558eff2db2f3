// The guest's bookkeeping of writes answered before the host's reply: every
// error reaches the program once, at the next WRITE, FSYNC or FLUSH of the
// same open file, also when a later write of the file succeeded.
#include <gtest/gtest.h>

#include <cerrno>

#include "guest/fuse_guest.h"

namespace fsout::guest {
namespace {

TEST(WritesBehind, NothingInFlightAnswersAtOnce) {
  WritesBehind writes;
  int got = -1;
  writes.after_writes(7, [&](int error) { got = error; });
  EXPECT_EQ(got, 0);
  EXPECT_EQ(writes.take_error(7), 0);
}

TEST(WritesBehind, CloseWaitsForTheWritesAndGetsTheFirstError) {
  WritesBehind writes;
  writes.sent(7);
  writes.sent(7);
  writes.sent(7);
  int got = -1;
  writes.after_writes(7, [&](int error) { got = error; });  // close() now
  EXPECT_EQ(got, -1) << "answered while writes were in flight";
  EXPECT_TRUE(writes.done(7, ENOSPC).then.empty());
  EXPECT_TRUE(writes.done(7, EIO).then.empty());
  auto last = writes.done(7, 0);  // the last one succeeded
  ASSERT_EQ(last.then.size(), 1u);
  EXPECT_EQ(last.error, ENOSPC) << "the first error, though the last write succeeded";
  for (auto& then : last.then) then(last.error);
  EXPECT_EQ(got, ENOSPC);
  EXPECT_EQ(writes.take_error(7), 0) << "reported twice";
}

TEST(WritesBehind, AnErrorWithNobodyWaitingGoesToTheNextWrite) {
  WritesBehind writes;
  writes.sent(1);
  writes.sent(2);
  EXPECT_TRUE(writes.done(1, ENOSPC).then.empty());
  EXPECT_TRUE(writes.done(2, 0).then.empty());
  EXPECT_EQ(writes.take_error(2), 0) << "another open file's error";
  EXPECT_EQ(writes.take_error(1), ENOSPC);
  EXPECT_EQ(writes.take_error(1), 0);
}

TEST(WritesBehind, AnErrorKeptUntilFsyncOrClose) {
  WritesBehind writes;
  writes.sent(3);
  EXPECT_TRUE(writes.done(3, EDQUOT).then.empty());
  int got = -1;
  writes.after_writes(3, [&](int error) { got = error; });
  EXPECT_EQ(got, EDQUOT);
  got = -1;
  writes.after_writes(3, [&](int error) { got = error; });
  EXPECT_EQ(got, 0);
}

TEST(WritesBehind, ReleaseForgetsOnlyWhatIsDone) {
  WritesBehind writes;
  writes.sent(4);
  writes.released(4);  // RELEASE overtook the reply: keep counting
  int got = -1;
  writes.after_writes(4, [&](int error) { got = error; });
  EXPECT_EQ(got, -1);
  auto last = writes.done(4, EIO);
  ASSERT_EQ(last.then.size(), 1u);
  EXPECT_EQ(last.error, EIO);
}

}  // namespace
}  // namespace fsout::guest
