#include "protocol/canonical.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

// The system headers are only needed for the static checks that compare the tables with the
// native macros of the OS being built on.
#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#elif defined(__FreeBSD__)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#endif

namespace fsout::canonical {
namespace {

using ValueTable = std::span<const ValueMapping>;

// ---------------------------------------------------------------------------------------------
// Compile-time checks of the tables themselves.

template <std::size_t N>
constexpr bool errno_table_is_one_to_one(const std::array<ErrnoMapping, N>& table) {
  for (std::size_t i = 0; i < N; ++i) {
    // The lookup arrays below are indexed by both numbers, and 0 means success.
    if (table[i].native <= 0 || table[i].native >= 256) return false;
    if (static_cast<uint32_t>(table[i].canonical) >= 256) return false;
    for (std::size_t j = i + 1; j < N; ++j) {
      if (table[i].canonical == table[j].canonical || table[i].native == table[j].native) {
        return false;
      }
    }
  }
  return true;
}

template <std::size_t N>
constexpr bool value_table_is_one_to_one(const std::array<ValueMapping, N>& table) {
  for (std::size_t i = 0; i < N; ++i) {
    for (std::size_t j = i + 1; j < N; ++j) {
      if (table[i].canonical == table[j].canonical || table[i].native == table[j].native) {
        return false;
      }
    }
  }
  return true;
}

// A bit-set table maps one canonical bit to a non-empty native mask. Native masks may overlap
// (Linux O_SYNC contains the O_DSYNC bit); bits_to_wire handles that by requiring all of a
// row's native bits.
template <std::size_t N>
constexpr bool bit_table_is_valid(const std::array<ValueMapping, N>& table) {
  for (const ValueMapping& row : table) {
    const bool single_bit = row.canonical != 0 && (row.canonical & (row.canonical - 1)) == 0;
    if (!single_bit || row.native == 0) return false;
  }
  return value_table_is_one_to_one(table);
}

template <typename Row, std::size_t N, std::size_t M>
constexpr int first_difference(const std::array<Row, N>& table,
                               const std::array<Row, M>& expected) {
  if (N != M) return -2;
  for (std::size_t i = 0; i < N; ++i) {
    if (table[i].canonical != expected[i].canonical || table[i].native != expected[i].native) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

static_assert(errno_table_is_one_to_one(kLinuxErrnoTable));
static_assert(errno_table_is_one_to_one(kFreeBsdErrnoTable));
static_assert(value_table_is_one_to_one(kLinuxOpenAccessTable));
static_assert(value_table_is_one_to_one(kFreeBsdOpenAccessTable));
static_assert(bit_table_is_valid(kLinuxOpenFlagTable));
static_assert(bit_table_is_valid(kFreeBsdOpenFlagTable));
static_assert(value_table_is_one_to_one(kLinuxModeTypeTable));
static_assert(value_table_is_one_to_one(kFreeBsdModeTypeTable));
static_assert(value_table_is_one_to_one(kLinuxDirentTypeTable));
static_assert(value_table_is_one_to_one(kFreeBsdDirentTypeTable));
static_assert(value_table_is_one_to_one(kLinuxLockTypeTable));
static_assert(value_table_is_one_to_one(kFreeBsdLockTypeTable));
static_assert(value_table_is_one_to_one(kLinuxWhenceTable));
static_assert(value_table_is_one_to_one(kFreeBsdWhenceTable));
static_assert(bit_table_is_valid(kLinuxRenameFlagTable));
static_assert(bit_table_is_valid(kFreeBsdRenameFlagTable));
static_assert(bit_table_is_valid(kLinuxXattrFlagTable));
static_assert(bit_table_is_valid(kFreeBsdXattrFlagTable));
static_assert(bit_table_is_valid(kLinuxAccessMaskTable));
static_assert(bit_table_is_valid(kFreeBsdAccessMaskTable));
static_assert(bit_table_is_valid(kLinuxFallocateModeTable));
static_assert(bit_table_is_valid(kFreeBsdFallocateModeTable));

// ---------------------------------------------------------------------------------------------
// Compile-time checks against the native headers of the OS being built on. Each table is
// restated with the system macros; first_difference names the first row that disagrees.

#if defined(__linux__)
constexpr auto kLinuxErrnoFromHeaders = std::to_array<ErrnoMapping>({
    {Errno::kPerm, EPERM},
    {Errno::kNoent, ENOENT},
    {Errno::kSrch, ESRCH},
    {Errno::kIntr, EINTR},
    {Errno::kIo, EIO},
    {Errno::kNxio, ENXIO},
    {Errno::k2big, E2BIG},
    {Errno::kNoexec, ENOEXEC},
    {Errno::kBadf, EBADF},
    {Errno::kChild, ECHILD},
    {Errno::kAgain, EAGAIN},
    {Errno::kNomem, ENOMEM},
    {Errno::kAcces, EACCES},
    {Errno::kFault, EFAULT},
    {Errno::kNotblk, ENOTBLK},
    {Errno::kBusy, EBUSY},
    {Errno::kExist, EEXIST},
    {Errno::kXdev, EXDEV},
    {Errno::kNodev, ENODEV},
    {Errno::kNotdir, ENOTDIR},
    {Errno::kIsdir, EISDIR},
    {Errno::kInval, EINVAL},
    {Errno::kNfile, ENFILE},
    {Errno::kMfile, EMFILE},
    {Errno::kNotty, ENOTTY},
    {Errno::kTxtbsy, ETXTBSY},
    {Errno::kFbig, EFBIG},
    {Errno::kNospc, ENOSPC},
    {Errno::kSpipe, ESPIPE},
    {Errno::kRofs, EROFS},
    {Errno::kMlink, EMLINK},
    {Errno::kPipe, EPIPE},
    {Errno::kDom, EDOM},
    {Errno::kRange, ERANGE},
    {Errno::kDeadlk, EDEADLK},
    {Errno::kNametoolong, ENAMETOOLONG},
    {Errno::kNolck, ENOLCK},
    {Errno::kNosys, ENOSYS},
    {Errno::kNotempty, ENOTEMPTY},
    {Errno::kLoop, ELOOP},
    {Errno::kNomsg, ENOMSG},
    {Errno::kIdrm, EIDRM},
    {Errno::kChrng, ECHRNG},
    {Errno::kL2nsync, EL2NSYNC},
    {Errno::kL3hlt, EL3HLT},
    {Errno::kL3rst, EL3RST},
    {Errno::kLnrng, ELNRNG},
    {Errno::kUnatch, EUNATCH},
    {Errno::kNocsi, ENOCSI},
    {Errno::kL2hlt, EL2HLT},
    {Errno::kBade, EBADE},
    {Errno::kBadr, EBADR},
    {Errno::kXfull, EXFULL},
    {Errno::kNoano, ENOANO},
    {Errno::kBadrqc, EBADRQC},
    {Errno::kBadslt, EBADSLT},
    {Errno::kBfont, EBFONT},
    {Errno::kNostr, ENOSTR},
    {Errno::kNodata, ENODATA},
    {Errno::kTime, ETIME},
    {Errno::kNosr, ENOSR},
    {Errno::kNonet, ENONET},
    {Errno::kNopkg, ENOPKG},
    {Errno::kRemote, EREMOTE},
    {Errno::kNolink, ENOLINK},
    {Errno::kAdv, EADV},
    {Errno::kSrmnt, ESRMNT},
    {Errno::kComm, ECOMM},
    {Errno::kProto, EPROTO},
    {Errno::kMultihop, EMULTIHOP},
    {Errno::kDotdot, EDOTDOT},
    {Errno::kBadmsg, EBADMSG},
    {Errno::kOverflow, EOVERFLOW},
    {Errno::kNotuniq, ENOTUNIQ},
    {Errno::kBadfd, EBADFD},
    {Errno::kRemchg, EREMCHG},
    {Errno::kLibacc, ELIBACC},
    {Errno::kLibbad, ELIBBAD},
    {Errno::kLibscn, ELIBSCN},
    {Errno::kLibmax, ELIBMAX},
    {Errno::kLibexec, ELIBEXEC},
    {Errno::kIlseq, EILSEQ},
    {Errno::kRestart, ERESTART},
    {Errno::kStrpipe, ESTRPIPE},
    {Errno::kUsers, EUSERS},
    {Errno::kNotsock, ENOTSOCK},
    {Errno::kDestaddrreq, EDESTADDRREQ},
    {Errno::kMsgsize, EMSGSIZE},
    {Errno::kPrototype, EPROTOTYPE},
    {Errno::kNoprotoopt, ENOPROTOOPT},
    {Errno::kProtonosupport, EPROTONOSUPPORT},
    {Errno::kSocktnosupport, ESOCKTNOSUPPORT},
    {Errno::kOpnotsupp, EOPNOTSUPP},
    {Errno::kPfnosupport, EPFNOSUPPORT},
    {Errno::kAfnosupport, EAFNOSUPPORT},
    {Errno::kAddrinuse, EADDRINUSE},
    {Errno::kAddrnotavail, EADDRNOTAVAIL},
    {Errno::kNetdown, ENETDOWN},
    {Errno::kNetunreach, ENETUNREACH},
    {Errno::kNetreset, ENETRESET},
    {Errno::kConnaborted, ECONNABORTED},
    {Errno::kConnreset, ECONNRESET},
    {Errno::kNobufs, ENOBUFS},
    {Errno::kIsconn, EISCONN},
    {Errno::kNotconn, ENOTCONN},
    {Errno::kShutdown, ESHUTDOWN},
    {Errno::kToomanyrefs, ETOOMANYREFS},
    {Errno::kTimedout, ETIMEDOUT},
    {Errno::kConnrefused, ECONNREFUSED},
    {Errno::kHostdown, EHOSTDOWN},
    {Errno::kHostunreach, EHOSTUNREACH},
    {Errno::kAlready, EALREADY},
    {Errno::kInprogress, EINPROGRESS},
    {Errno::kStale, ESTALE},
    {Errno::kUclean, EUCLEAN},
    {Errno::kNotnam, ENOTNAM},
    {Errno::kNavail, ENAVAIL},
    {Errno::kIsnam, EISNAM},
    {Errno::kRemoteio, EREMOTEIO},
    {Errno::kDquot, EDQUOT},
    {Errno::kNomedium, ENOMEDIUM},
    {Errno::kMediumtype, EMEDIUMTYPE},
    {Errno::kCanceled, ECANCELED},
    {Errno::kNokey, ENOKEY},
    {Errno::kKeyexpired, EKEYEXPIRED},
    {Errno::kKeyrevoked, EKEYREVOKED},
    {Errno::kKeyrejected, EKEYREJECTED},
    {Errno::kOwnerdead, EOWNERDEAD},
    {Errno::kNotrecoverable, ENOTRECOVERABLE},
    {Errno::kRfkill, ERFKILL},
    {Errno::kHwpoison, EHWPOISON},
});
static_assert(first_difference(kLinuxErrnoTable, kLinuxErrnoFromHeaders) == -1);
static_assert(static_cast<int>(Errno::kWouldblock) == EWOULDBLOCK);
static_assert(static_cast<int>(Errno::kDeadlock) == EDEADLOCK);
static_assert(static_cast<int>(Errno::kNotsup) == ENOTSUP);

constexpr auto kLinuxOpenAccessFromHeaders = std::to_array<ValueMapping>({
    {kOpenRdonly, O_RDONLY},
    {kOpenWronly, O_WRONLY},
    {kOpenRdwr, O_RDWR},
    {kOpenNoAccess, O_ACCMODE},
});
static_assert(first_difference(kLinuxOpenAccessTable, kLinuxOpenAccessFromHeaders) == -1);
static_assert(O_ACCMODE == 3);

// glibc defines O_LARGEFILE as 0 on 64-bit targets (the kernel forces it there); the kernel's
// own value is 0100000.
static_assert(O_LARGEFILE == 0 || O_LARGEFILE == 0100000);
constexpr auto kLinuxOpenFlagFromHeaders = std::to_array<ValueMapping>({
    {kOpenCreat, O_CREAT},
    {kOpenExcl, O_EXCL},
    {kOpenNoctty, O_NOCTTY},
    {kOpenTrunc, O_TRUNC},
    {kOpenAppend, O_APPEND},
    {kOpenNonblock, O_NONBLOCK},
    {kOpenDsync, O_DSYNC},
    {kOpenDirect, O_DIRECT},
    {kOpenLargefile, O_LARGEFILE != 0 ? O_LARGEFILE : 0100000},
    {kOpenDirectory, O_DIRECTORY},
    {kOpenNofollow, O_NOFOLLOW},
    {kOpenNoatime, O_NOATIME},
    {kOpenCloexec, O_CLOEXEC},
    {kOpenSync, O_SYNC},
});
static_assert(first_difference(kLinuxOpenFlagTable, kLinuxOpenFlagFromHeaders) == -1);

constexpr auto kLinuxModeTypeFromHeaders = std::to_array<ValueMapping>({
    {kModeFifo, S_IFIFO},
    {kModeCharDevice, S_IFCHR},
    {kModeDirectory, S_IFDIR},
    {kModeBlockDevice, S_IFBLK},
    {kModeRegular, S_IFREG},
    {kModeSymlink, S_IFLNK},
    {kModeSocket, S_IFSOCK},
});
static_assert(first_difference(kLinuxModeTypeTable, kLinuxModeTypeFromHeaders) == -1);
static_assert(S_IFMT == kModeTypeMask);
static_assert((S_ISUID | S_ISGID | S_ISVTX | S_IRWXU | S_IRWXG | S_IRWXO) == kModePermissionMask);

constexpr auto kLinuxDirentTypeFromHeaders = std::to_array<ValueMapping>({
    {kDirentUnknown, DT_UNKNOWN},
    {kDirentFifo, DT_FIFO},
    {kDirentCharDevice, DT_CHR},
    {kDirentDirectory, DT_DIR},
    {kDirentBlockDevice, DT_BLK},
    {kDirentRegular, DT_REG},
    {kDirentSymlink, DT_LNK},
    {kDirentSocket, DT_SOCK},
});
static_assert(first_difference(kLinuxDirentTypeTable, kLinuxDirentTypeFromHeaders) == -1);

constexpr auto kLinuxLockTypeFromHeaders = std::to_array<ValueMapping>({
    {kLockRead, F_RDLCK},
    {kLockWrite, F_WRLCK},
    {kLockUnlock, F_UNLCK},
});
static_assert(first_difference(kLinuxLockTypeTable, kLinuxLockTypeFromHeaders) == -1);

constexpr auto kLinuxWhenceFromHeaders = std::to_array<ValueMapping>({
    {kWhenceSet, SEEK_SET},
    {kWhenceCur, SEEK_CUR},
    {kWhenceEnd, SEEK_END},
    {kWhenceData, SEEK_DATA},
    {kWhenceHole, SEEK_HOLE},
});
static_assert(first_difference(kLinuxWhenceTable, kLinuxWhenceFromHeaders) == -1);

constexpr auto kLinuxRenameFlagFromHeaders = std::to_array<ValueMapping>({
    {kRenameNoreplace, RENAME_NOREPLACE},
    {kRenameExchange, RENAME_EXCHANGE},
    {kRenameWhiteout, RENAME_WHITEOUT},
});
static_assert(first_difference(kLinuxRenameFlagTable, kLinuxRenameFlagFromHeaders) == -1);

constexpr auto kLinuxXattrFlagFromHeaders = std::to_array<ValueMapping>({
    {kXattrCreate, XATTR_CREATE},
    {kXattrReplace, XATTR_REPLACE},
});
static_assert(first_difference(kLinuxXattrFlagTable, kLinuxXattrFlagFromHeaders) == -1);

constexpr auto kLinuxAccessMaskFromHeaders = std::to_array<ValueMapping>({
    {kAccessExecute, X_OK},
    {kAccessWrite, W_OK},
    {kAccessRead, R_OK},
});
static_assert(first_difference(kLinuxAccessMaskTable, kLinuxAccessMaskFromHeaders) == -1);
static_assert(F_OK == kAccessExists);

constexpr auto kLinuxFallocateModeFromHeaders = std::to_array<ValueMapping>({
    {kFallocKeepSize, FALLOC_FL_KEEP_SIZE},
    {kFallocPunchHole, FALLOC_FL_PUNCH_HOLE},
    {kFallocZeroRange, FALLOC_FL_ZERO_RANGE},
    {kFallocCollapseRange, FALLOC_FL_COLLAPSE_RANGE},
    {kFallocInsertRange, FALLOC_FL_INSERT_RANGE},
    {kFallocUnshareRange, FALLOC_FL_UNSHARE_RANGE},
});
static_assert(kLinuxOpenGuestOnlyFlags == (FASYNC | 040 | 0x4000000));
static_assert((kLinuxOpenGuestOnlyFlags & O_ACCMODE) == 0);
static_assert(first_difference(kLinuxFallocateModeTable, kLinuxFallocateModeFromHeaders) == -1);
#endif  // __linux__

#if defined(__FreeBSD__)
constexpr auto kFreeBsdErrnoFromHeaders = std::to_array<ErrnoMapping>({
    {Errno::kPerm, EPERM},
    {Errno::kNoent, ENOENT},
    {Errno::kSrch, ESRCH},
    {Errno::kIntr, EINTR},
    {Errno::kIo, EIO},
    {Errno::kNxio, ENXIO},
    {Errno::k2big, E2BIG},
    {Errno::kNoexec, ENOEXEC},
    {Errno::kBadf, EBADF},
    {Errno::kChild, ECHILD},
    {Errno::kDeadlk, EDEADLK},
    {Errno::kNomem, ENOMEM},
    {Errno::kAcces, EACCES},
    {Errno::kFault, EFAULT},
    {Errno::kNotblk, ENOTBLK},
    {Errno::kBusy, EBUSY},
    {Errno::kExist, EEXIST},
    {Errno::kXdev, EXDEV},
    {Errno::kNodev, ENODEV},
    {Errno::kNotdir, ENOTDIR},
    {Errno::kIsdir, EISDIR},
    {Errno::kInval, EINVAL},
    {Errno::kNfile, ENFILE},
    {Errno::kMfile, EMFILE},
    {Errno::kNotty, ENOTTY},
    {Errno::kTxtbsy, ETXTBSY},
    {Errno::kFbig, EFBIG},
    {Errno::kNospc, ENOSPC},
    {Errno::kSpipe, ESPIPE},
    {Errno::kRofs, EROFS},
    {Errno::kMlink, EMLINK},
    {Errno::kPipe, EPIPE},
    {Errno::kDom, EDOM},
    {Errno::kRange, ERANGE},
    {Errno::kAgain, EAGAIN},
    {Errno::kInprogress, EINPROGRESS},
    {Errno::kAlready, EALREADY},
    {Errno::kNotsock, ENOTSOCK},
    {Errno::kDestaddrreq, EDESTADDRREQ},
    {Errno::kMsgsize, EMSGSIZE},
    {Errno::kPrototype, EPROTOTYPE},
    {Errno::kNoprotoopt, ENOPROTOOPT},
    {Errno::kProtonosupport, EPROTONOSUPPORT},
    {Errno::kSocktnosupport, ESOCKTNOSUPPORT},
    {Errno::kOpnotsupp, EOPNOTSUPP},
    {Errno::kPfnosupport, EPFNOSUPPORT},
    {Errno::kAfnosupport, EAFNOSUPPORT},
    {Errno::kAddrinuse, EADDRINUSE},
    {Errno::kAddrnotavail, EADDRNOTAVAIL},
    {Errno::kNetdown, ENETDOWN},
    {Errno::kNetunreach, ENETUNREACH},
    {Errno::kNetreset, ENETRESET},
    {Errno::kConnaborted, ECONNABORTED},
    {Errno::kConnreset, ECONNRESET},
    {Errno::kNobufs, ENOBUFS},
    {Errno::kIsconn, EISCONN},
    {Errno::kNotconn, ENOTCONN},
    {Errno::kShutdown, ESHUTDOWN},
    {Errno::kToomanyrefs, ETOOMANYREFS},
    {Errno::kTimedout, ETIMEDOUT},
    {Errno::kConnrefused, ECONNREFUSED},
    {Errno::kLoop, ELOOP},
    {Errno::kNametoolong, ENAMETOOLONG},
    {Errno::kHostdown, EHOSTDOWN},
    {Errno::kHostunreach, EHOSTUNREACH},
    {Errno::kNotempty, ENOTEMPTY},
    {Errno::kUsers, EUSERS},
    {Errno::kDquot, EDQUOT},
    {Errno::kStale, ESTALE},
    {Errno::kRemote, EREMOTE},
    {Errno::kNolck, ENOLCK},
    {Errno::kNosys, ENOSYS},
    {Errno::kIdrm, EIDRM},
    {Errno::kNomsg, ENOMSG},
    {Errno::kOverflow, EOVERFLOW},
    {Errno::kCanceled, ECANCELED},
    {Errno::kIlseq, EILSEQ},
    {Errno::kNodata, ENOATTR},
    {Errno::kBadmsg, EBADMSG},
    {Errno::kMultihop, EMULTIHOP},
    {Errno::kNolink, ENOLINK},
    {Errno::kProto, EPROTO},
    {Errno::kNotrecoverable, ENOTRECOVERABLE},
    {Errno::kOwnerdead, EOWNERDEAD},
    {Errno::kUclean, EINTEGRITY},
});
static_assert(first_difference(kFreeBsdErrnoTable, kFreeBsdErrnoFromHeaders) == -1);
static_assert(ENOTSUP == EOPNOTSUPP);
static_assert(EWOULDBLOCK == EAGAIN);

constexpr auto kFreeBsdOpenAccessFromHeaders = std::to_array<ValueMapping>({
    {kOpenRdonly, O_RDONLY},
    {kOpenWronly, O_WRONLY},
    {kOpenRdwr, O_RDWR},
});
static_assert(first_difference(kFreeBsdOpenAccessTable, kFreeBsdOpenAccessFromHeaders) == -1);
static_assert(O_ACCMODE == 3);

constexpr auto kFreeBsdOpenFlagFromHeaders = std::to_array<ValueMapping>({
    {kOpenNonblock, O_NONBLOCK},
    {kOpenAppend, O_APPEND},
    {kOpenSync, O_SYNC},
    {kOpenNofollow, O_NOFOLLOW},
    {kOpenCreat, O_CREAT},
    {kOpenTrunc, O_TRUNC},
    {kOpenExcl, O_EXCL},
    {kOpenNoctty, O_NOCTTY},
    {kOpenDirect, O_DIRECT},
    {kOpenDirectory, O_DIRECTORY},
    {kOpenCloexec, O_CLOEXEC},
    {kOpenDsync, O_DSYNC},
});
static_assert(first_difference(kFreeBsdOpenFlagTable, kFreeBsdOpenFlagFromHeaders) == -1);

constexpr auto kFreeBsdModeTypeFromHeaders = std::to_array<ValueMapping>({
    {kModeFifo, S_IFIFO},
    {kModeCharDevice, S_IFCHR},
    {kModeDirectory, S_IFDIR},
    {kModeBlockDevice, S_IFBLK},
    {kModeRegular, S_IFREG},
    {kModeSymlink, S_IFLNK},
    {kModeSocket, S_IFSOCK},
});
static_assert(first_difference(kFreeBsdModeTypeTable, kFreeBsdModeTypeFromHeaders) == -1);
static_assert(S_IFMT == kModeTypeMask);
static_assert((S_ISUID | S_ISGID | S_ISVTX | S_IRWXU | S_IRWXG | S_IRWXO) == kModePermissionMask);

constexpr auto kFreeBsdDirentTypeFromHeaders = std::to_array<ValueMapping>({
    {kDirentUnknown, DT_UNKNOWN},
    {kDirentFifo, DT_FIFO},
    {kDirentCharDevice, DT_CHR},
    {kDirentDirectory, DT_DIR},
    {kDirentBlockDevice, DT_BLK},
    {kDirentRegular, DT_REG},
    {kDirentSymlink, DT_LNK},
    {kDirentSocket, DT_SOCK},
});
static_assert(first_difference(kFreeBsdDirentTypeTable, kFreeBsdDirentTypeFromHeaders) == -1);

constexpr auto kFreeBsdLockTypeFromHeaders = std::to_array<ValueMapping>({
    {kLockRead, F_RDLCK},
    {kLockUnlock, F_UNLCK},
    {kLockWrite, F_WRLCK},
});
static_assert(first_difference(kFreeBsdLockTypeTable, kFreeBsdLockTypeFromHeaders) == -1);

constexpr auto kFreeBsdWhenceFromHeaders = std::to_array<ValueMapping>({
    {kWhenceSet, SEEK_SET},
    {kWhenceCur, SEEK_CUR},
    {kWhenceEnd, SEEK_END},
    {kWhenceData, SEEK_DATA},
    {kWhenceHole, SEEK_HOLE},
});
static_assert(first_difference(kFreeBsdWhenceTable, kFreeBsdWhenceFromHeaders) == -1);

constexpr auto kFreeBsdAccessMaskFromHeaders = std::to_array<ValueMapping>({
    {kAccessExecute, X_OK},
    {kAccessWrite, W_OK},
    {kAccessRead, R_OK},
});
static_assert(first_difference(kFreeBsdAccessMaskTable, kFreeBsdAccessMaskFromHeaders) == -1);
static_assert(F_OK == kAccessExists);
#endif  // __FreeBSD__

// ---------------------------------------------------------------------------------------------
// Lookup structures.

// errno is on the hot path (every failed request), so both directions are direct array
// lookups built at compile time. Every errno in both tables is below 255; 255 marks "none".
constexpr uint8_t kNoErrno = 0xff;
struct ErrnoLookup {
  std::array<uint8_t, 256> to_wire;    // indexed by native errno
  std::array<uint8_t, 256> from_wire;  // indexed by canonical errno
};

template <std::size_t N>
constexpr ErrnoLookup build_errno_lookup(const std::array<ErrnoMapping, N>& table) {
  ErrnoLookup lookup{};
  lookup.to_wire.fill(kNoErrno);
  lookup.from_wire.fill(kNoErrno);
  lookup.to_wire[0] = 0;  // success stays success
  lookup.from_wire[0] = 0;
  for (const ErrnoMapping& row : table) {
    lookup.to_wire[static_cast<std::size_t>(row.native)] = static_cast<uint8_t>(row.canonical);
    lookup.from_wire[static_cast<std::size_t>(row.canonical)] = static_cast<uint8_t>(row.native);
  }
  return lookup;
}

constexpr ErrnoLookup kLinuxErrnoLookup = build_errno_lookup(kLinuxErrnoTable);
constexpr ErrnoLookup kFreeBsdErrnoLookup = build_errno_lookup(kFreeBsdErrnoTable);
static_assert(kLinuxErrnoLookup.from_wire[static_cast<std::size_t>(Errno::kNoattr)] != kNoErrno);
static_assert(kFreeBsdErrnoLookup.from_wire[static_cast<std::size_t>(Errno::kNoattr)] != kNoErrno);

struct OsTables {
  const ErrnoLookup* errno_lookup;
  ValueTable open_access;
  ValueTable open_flags;
  ValueTable mode_types;
  ValueTable dirent_types;
  ValueTable lock_types;
  ValueTable whence;
  ValueTable rename_flags;
  ValueTable xattr_flags;
  ValueTable access_mask;
  ValueTable fallocate_mode;
  uint32_t open_guest_only;
};

constexpr OsTables kLinuxTables{
    .errno_lookup = &kLinuxErrnoLookup,
    .open_access = kLinuxOpenAccessTable,
    .open_flags = kLinuxOpenFlagTable,
    .mode_types = kLinuxModeTypeTable,
    .dirent_types = kLinuxDirentTypeTable,
    .lock_types = kLinuxLockTypeTable,
    .whence = kLinuxWhenceTable,
    .rename_flags = kLinuxRenameFlagTable,
    .xattr_flags = kLinuxXattrFlagTable,
    .access_mask = kLinuxAccessMaskTable,
    .fallocate_mode = kLinuxFallocateModeTable,
    .open_guest_only = kLinuxOpenGuestOnlyFlags,
};

constexpr OsTables kFreeBsdTables{
    .errno_lookup = &kFreeBsdErrnoLookup,
    .open_access = kFreeBsdOpenAccessTable,
    .open_flags = kFreeBsdOpenFlagTable,
    .mode_types = kFreeBsdModeTypeTable,
    .dirent_types = kFreeBsdDirentTypeTable,
    .lock_types = kFreeBsdLockTypeTable,
    .whence = kFreeBsdWhenceTable,
    .rename_flags = kFreeBsdRenameFlagTable,
    .xattr_flags = kFreeBsdXattrFlagTable,
    .access_mask = kFreeBsdAccessMaskTable,
    .fallocate_mode = kFreeBsdFallocateModeTable,
    .open_guest_only = kFreeBsdOpenGuestOnlyFlags,
};

const OsTables& tables_for(Os os) { return os == Os::kFreeBsd ? kFreeBsdTables : kLinuxTables; }

std::optional<uint32_t> find_native(ValueTable table, uint32_t canonical) {
  for (const ValueMapping& row : table) {
    if (row.canonical == canonical) return row.native;
  }
  return std::nullopt;
}

std::optional<uint32_t> find_canonical(ValueTable table, uint32_t native) {
  for (const ValueMapping& row : table) {
    if (row.native == native) return row.canonical;
  }
  return std::nullopt;
}

// OR of every native value in the table: the native mask a field occupies (e.g. S_IFMT).
uint32_t native_mask(ValueTable table) {
  uint32_t mask = 0;
  for (const ValueMapping& row : table) mask |= row.native;
  return mask;
}

// A canonical bit is set when all of its native bits are present, so Linux O_DSYNC alone
// does not read as O_SYNC (whose native mask contains O_DSYNC's bit). nullopt when a native
// bit is covered by no row.
std::optional<uint32_t> bits_to_wire(ValueTable table, uint32_t native) {
  uint32_t wire = 0;
  uint32_t covered = 0;
  for (const ValueMapping& row : table) {
    if ((native & row.native) == row.native) {
      wire |= row.canonical;
      covered |= row.native;
    }
  }
  if ((native & ~covered) != 0) return std::nullopt;
  return wire;
}

// nullopt when a canonical bit has no native row.
std::optional<int> bits_from_wire(ValueTable table, uint32_t wire) {
  uint32_t native = 0;
  uint32_t expressed = 0;
  for (const ValueMapping& row : table) {
    if ((wire & row.canonical) != 0) {
      native |= row.native;
      expressed |= row.canonical;
    }
  }
  if ((wire & ~expressed) != 0) return std::nullopt;
  return static_cast<int>(native);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

std::optional<uint32_t> errno_to_wire(int native, Os os) {
  if (native < 0 || native >= 256) return std::nullopt;
  const uint8_t wire = tables_for(os).errno_lookup->to_wire[static_cast<std::size_t>(native)];
  if (wire == kNoErrno) return std::nullopt;
  return wire;
}

std::optional<int> errno_from_wire(uint32_t wire, Os os) {
  if (wire >= 256) return std::nullopt;
  const uint8_t native = tables_for(os).errno_lookup->from_wire[wire];
  if (native == kNoErrno) return std::nullopt;
  return native;
}

int no_attribute_errno(Os os) {
  // Present in both tables (checked at compile time above).
  return tables_for(os).errno_lookup->from_wire[static_cast<std::size_t>(Errno::kNoattr)];
}

std::optional<uint32_t> open_flags_to_wire(int native, Os os) {
  const OsTables& tables = tables_for(os);
  const uint32_t bits = static_cast<uint32_t>(native);
  const uint32_t access_mask = native_mask(tables.open_access);
  const std::optional<uint32_t> access = find_canonical(tables.open_access, bits & access_mask);
  if (!access) return std::nullopt;
  const std::optional<uint32_t> flags =
      bits_to_wire(tables.open_flags, bits & ~access_mask & ~tables.open_guest_only);
  if (!flags) return std::nullopt;
  uint32_t wire = *access | *flags;
  if ((wire & kOpenSync) != 0) wire |= kOpenDsync;
  return wire;
}

std::optional<int> open_flags_from_wire(uint32_t wire, Os os) {
  const OsTables& tables = tables_for(os);
  const std::optional<uint32_t> access =
      find_native(tables.open_access, wire & kOpenAccessModeMask);
  if (!access) return std::nullopt;
  // Large-file capability is a property of every fsout file, not a request.
  uint32_t flags = wire & ~kOpenAccessModeMask;
  if (!find_native(tables.open_flags, kOpenLargefile)) flags &= ~kOpenLargefile;
  // Native O_SYNC implies data integrity (on Linux it even contains O_DSYNC's bit).
  if ((flags & kOpenSync) != 0) flags &= ~kOpenDsync;
  const std::optional<int> native = bits_from_wire(tables.open_flags, flags);
  if (!native) return std::nullopt;
  return static_cast<int>(*access) | *native;
}

std::optional<uint32_t> mode_to_wire(uint32_t native, Os os) {
  const ValueTable table = tables_for(os).mode_types;
  const uint32_t type_mask = native_mask(table);
  if ((native & ~(type_mask | kModePermissionMask)) != 0) return std::nullopt;
  const uint32_t native_type = native & type_mask;
  if (native_type == 0) return native & kModePermissionMask;
  const std::optional<uint32_t> type = find_canonical(table, native_type);
  if (!type) return std::nullopt;
  return *type | (native & kModePermissionMask);
}

std::optional<uint32_t> mode_from_wire(uint32_t wire, Os os) {
  if ((wire & ~(kModeTypeMask | kModePermissionMask)) != 0) return std::nullopt;
  const uint32_t wire_type = wire & kModeTypeMask;
  if (wire_type == 0) return wire & kModePermissionMask;
  const std::optional<uint32_t> type = find_native(tables_for(os).mode_types, wire_type);
  if (!type) return std::nullopt;
  return *type | (wire & kModePermissionMask);
}

std::optional<uint8_t> dirent_type_to_wire(unsigned native, Os os) {
  const std::optional<uint32_t> wire = find_canonical(tables_for(os).dirent_types, native);
  if (!wire) return std::nullopt;
  return static_cast<uint8_t>(*wire);
}

std::optional<unsigned> dirent_type_from_wire(uint8_t wire, Os os) {
  const std::optional<uint32_t> native = find_native(tables_for(os).dirent_types, wire);
  if (!native) return std::nullopt;
  return *native;
}
Device device_to_wire(uint64_t native_device, Os os) {
  const uint64_t d = native_device;
  if (os == Os::kFreeBsd) {
    // sys/sys/types.h: major(d) and minor(d) for the 64-bit dev_t of FreeBSD 12 and later.
    return Device{
        static_cast<uint32_t>(((d >> 32) & 0xffffff00) | ((d >> 8) & 0xff)),
        static_cast<uint32_t>(((d >> 24) & 0xff00) | (d & 0xffff00ff)),
    };
  }
  // glibc sys/sysmacros.h: gnu_dev_major and gnu_dev_minor.
  return Device{
      static_cast<uint32_t>(((d >> 8) & 0xfff) | ((d >> 32) & 0xfffff000)),
      static_cast<uint32_t>((d & 0xff) | ((d >> 12) & 0xffffff00)),
  };
}

uint64_t device_from_wire(Device device, Os os) {
  const uint64_t major = device.major;
  const uint64_t minor = device.minor;
  if (os == Os::kFreeBsd) {
    // sys/sys/types.h: makedev(major, minor).
    return ((major & 0xffffff00) << 32) | ((major & 0xff) << 8) | ((minor & 0xff00) << 24) |
           (minor & 0xffff00ff);
  }
  // glibc sys/sysmacros.h: gnu_dev_makedev.
  return ((major & 0x00000fff) << 8) | ((major & 0xfffff000) << 32) | (minor & 0x000000ff) |
         ((minor & 0xffffff00) << 12);
}

std::optional<uint32_t> lock_type_to_wire(int native, Os os) {
  return find_canonical(tables_for(os).lock_types, static_cast<uint32_t>(native));
}

std::optional<int> lock_type_from_wire(uint32_t wire, Os os) {
  const std::optional<uint32_t> native = find_native(tables_for(os).lock_types, wire);
  if (!native) return std::nullopt;
  return static_cast<int>(*native);
}

std::optional<uint32_t> whence_to_wire(int native, Os os) {
  return find_canonical(tables_for(os).whence, static_cast<uint32_t>(native));
}

std::optional<int> whence_from_wire(uint32_t wire, Os os) {
  const std::optional<uint32_t> native = find_native(tables_for(os).whence, wire);
  if (!native) return std::nullopt;
  return static_cast<int>(*native);
}

std::optional<uint32_t> rename_flags_to_wire(int native, Os os) {
  return bits_to_wire(tables_for(os).rename_flags, static_cast<uint32_t>(native));
}

std::optional<int> rename_flags_from_wire(uint32_t wire, Os os) {
  return bits_from_wire(tables_for(os).rename_flags, wire);
}

std::optional<uint32_t> xattr_flags_to_wire(int native, Os os) {
  return bits_to_wire(tables_for(os).xattr_flags, static_cast<uint32_t>(native));
}

std::optional<int> xattr_flags_from_wire(uint32_t wire, Os os) {
  return bits_from_wire(tables_for(os).xattr_flags, wire);
}

namespace {
// Rewrites the prefix of `name` from one side of the table to the other; nullopt when no row
// has it, or when nothing follows the prefix.
std::optional<std::string> map_xattr_namespace(std::string_view name, bool to_wire) {
  for (const XattrNamespaceMapping& row : kFreeBsdXattrNamespaceTable) {
    std::string_view from = to_wire ? row.native : row.wire;
    std::string_view to = to_wire ? row.wire : row.native;
    if (name.size() > from.size() && name.substr(0, from.size()) == from)
      return std::string(to) + std::string(name.substr(from.size()));
  }
  return std::nullopt;
}
}  // namespace

std::optional<std::string> xattr_name_to_wire(std::string_view native, Os os) {
  if (os == Os::kLinux) return std::string(native);
  return map_xattr_namespace(native, true);
}

std::optional<std::string> xattr_name_from_wire(std::string_view wire, Os os) {
  if (os == Os::kLinux) return std::string(wire);
  return map_xattr_namespace(wire, false);
}

bool xattr_names_mapped(Os os) { return os != Os::kLinux; }

std::optional<uint32_t> access_mask_to_wire(int native, Os os) {
  return bits_to_wire(tables_for(os).access_mask, static_cast<uint32_t>(native));
}

std::optional<int> access_mask_from_wire(uint32_t wire, Os os) {
  return bits_from_wire(tables_for(os).access_mask, wire);
}

std::optional<uint32_t> fallocate_mode_to_wire(int native, Os os) {
  return bits_to_wire(tables_for(os).fallocate_mode, static_cast<uint32_t>(native));
}

std::optional<int> fallocate_mode_from_wire(uint32_t wire, Os os) {
  return bits_from_wire(tables_for(os).fallocate_mode, wire);
}

}  // namespace fsout::canonical
