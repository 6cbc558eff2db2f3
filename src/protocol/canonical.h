// Canonical (OS-neutral) numbering used on the fsout wire, and the tables that translate it
// to and from the native numbering of Linux and of FreeBSD.
//
// Why: a FreeBSD guest and a Linux host disagree on most constants (EAGAIN is 11 on Linux and
// 35 on FreeBSD, O_CREAT is 0100 and 0x0200, F_WRLCK is 1 and 3). Every number that crosses
// the wire is therefore canonical, and each side converts at its own edge.
//
// Names defined here (namespace fsout::canonical):
//   Os, kNativeOs, native_os(), os_name()
//   Errno (one enumerator per Linux errno name: kPerm, kNoent, ..., plus the aliases
//     kWouldblock, kDeadlock, kNotsup, kNoattr), kErrnoUnknown
//   Open flags: kOpenRdonly, kOpenWronly, kOpenRdwr, kOpenAccessModeMask, kOpenCreat,
//     kOpenExcl, kOpenNoctty, kOpenTrunc, kOpenAppend, kOpenNonblock, kOpenDsync, kOpenSync,
//     kOpenDirectory, kOpenNofollow, kOpenCloexec, kOpenDirect, kOpenNoatime, kOpenLargefile
//   File mode: kModeTypeMask, kModeFifo, kModeCharDevice, kModeDirectory, kModeBlockDevice,
//     kModeRegular, kModeSymlink, kModeSocket, kModePermissionMask
//   Directory entry type: kDirentUnknown, kDirentFifo, kDirentCharDevice, kDirentDirectory,
//     kDirentBlockDevice, kDirentRegular, kDirentSymlink, kDirentSocket
//   Device
//   Lock type: kLockRead, kLockWrite, kLockUnlock
//   lseek whence: kWhenceSet, kWhenceCur, kWhenceEnd, kWhenceData, kWhenceHole
//   Rename flags: kRenameNoreplace, kRenameExchange, kRenameWhiteout
//   Extended attribute set flags: kXattrCreate, kXattrReplace
//   Access mask: kAccessExists, kAccessExecute, kAccessWrite, kAccessRead
//   fallocate mode: kFallocKeepSize, kFallocPunchHole, kFallocZeroRange, kFallocCollapseRange,
//     kFallocInsertRange, kFallocUnshareRange
//   Table rows: ErrnoMapping, ValueMapping
//   Tables: kLinux<Kind>Table and kFreeBsd<Kind>Table for Kind = Errno, OpenAccess, OpenFlag,
//     ModeType, DirentType, LockType, Whence, RenameFlag, XattrFlag, AccessMask, FallocateMode;
//     kLinuxOpenGuestOnlyFlags, kFreeBsdOpenGuestOnlyFlags
//   Functions: errno_to_wire/from_wire, open_flags_to_wire/from_wire, mode_to_wire/from_wire,
//     dirent_type_to_wire/from_wire, device_to_wire/from_wire, lock_type_to_wire/from_wire,
//     whence_to_wire/from_wire, rename_flags_to_wire/from_wire,
//     xattr_flags_to_wire/from_wire, access_mask_to_wire/from_wire,
//     fallocate_mode_to_wire/from_wire, no_attribute_errno
//
// Every translation is lossless or refused: each function returns std::optional, and
// std::nullopt means "this value cannot cross" (a native value or bit without a canonical
// row, or a canonical one the OS cannot express). The caller must answer that itself with the
// errno the situation calls for (EINVAL, EOPNOTSUPP, EIO, ...) and send nothing; no function
// here drops a bit or substitutes a value on its own. [[nodiscard]] keeps a result from being
// ignored.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fsout::canonical {

enum class Os { kLinux, kFreeBsd };

// Decided with #if outside any function so that the choice is a plain constant.
#if defined(__FreeBSD__)
inline constexpr Os kNativeOs = Os::kFreeBsd;
#else
inline constexpr Os kNativeOs = Os::kLinux;
#endif

constexpr Os native_os() { return kNativeOs; }

// The name a guest gives the host in HELLO ("linux", "freebsd").
constexpr const char* os_name(Os os) { return os == Os::kFreeBsd ? "freebsd" : "linux"; }

// ---------------------------------------------------------------------------------------------
// errno
//
// The canonical errno numbering is the Linux asm-generic numbering
// (include/uapi/asm-generic/errno-base.h and errno.h), copied in full so that a Linux guest
// talking to a Linux host loses nothing. Enumerator names are the errno name without the
// leading "E", e.g. ENOENT -> kNoent, E2BIG -> k2big. 0 means success on the wire.
enum class Errno : uint32_t {
  kPerm = 1,              // EPERM
  kNoent = 2,             // ENOENT
  kSrch = 3,              // ESRCH
  kIntr = 4,              // EINTR
  kIo = 5,                // EIO
  kNxio = 6,              // ENXIO
  k2big = 7,              // E2BIG
  kNoexec = 8,            // ENOEXEC
  kBadf = 9,              // EBADF
  kChild = 10,            // ECHILD
  kAgain = 11,            // EAGAIN
  kNomem = 12,            // ENOMEM
  kAcces = 13,            // EACCES
  kFault = 14,            // EFAULT
  kNotblk = 15,           // ENOTBLK
  kBusy = 16,             // EBUSY
  kExist = 17,            // EEXIST
  kXdev = 18,             // EXDEV
  kNodev = 19,            // ENODEV
  kNotdir = 20,           // ENOTDIR
  kIsdir = 21,            // EISDIR
  kInval = 22,            // EINVAL
  kNfile = 23,            // ENFILE
  kMfile = 24,            // EMFILE
  kNotty = 25,            // ENOTTY
  kTxtbsy = 26,           // ETXTBSY
  kFbig = 27,             // EFBIG
  kNospc = 28,            // ENOSPC
  kSpipe = 29,            // ESPIPE
  kRofs = 30,             // EROFS
  kMlink = 31,            // EMLINK
  kPipe = 32,             // EPIPE
  kDom = 33,              // EDOM
  kRange = 34,            // ERANGE
  kDeadlk = 35,           // EDEADLK
  kNametoolong = 36,      // ENAMETOOLONG
  kNolck = 37,            // ENOLCK
  kNosys = 38,            // ENOSYS
  kNotempty = 39,         // ENOTEMPTY
  kLoop = 40,             // ELOOP
  kNomsg = 42,            // ENOMSG
  kIdrm = 43,             // EIDRM
  kChrng = 44,            // ECHRNG
  kL2nsync = 45,          // EL2NSYNC
  kL3hlt = 46,            // EL3HLT
  kL3rst = 47,            // EL3RST
  kLnrng = 48,            // ELNRNG
  kUnatch = 49,           // EUNATCH
  kNocsi = 50,            // ENOCSI
  kL2hlt = 51,            // EL2HLT
  kBade = 52,             // EBADE
  kBadr = 53,             // EBADR
  kXfull = 54,            // EXFULL
  kNoano = 55,            // ENOANO
  kBadrqc = 56,           // EBADRQC
  kBadslt = 57,           // EBADSLT
  kBfont = 59,            // EBFONT
  kNostr = 60,            // ENOSTR
  kNodata = 61,           // ENODATA
  kTime = 62,             // ETIME
  kNosr = 63,             // ENOSR
  kNonet = 64,            // ENONET
  kNopkg = 65,            // ENOPKG
  kRemote = 66,           // EREMOTE
  kNolink = 67,           // ENOLINK
  kAdv = 68,              // EADV
  kSrmnt = 69,            // ESRMNT
  kComm = 70,             // ECOMM
  kProto = 71,            // EPROTO
  kMultihop = 72,         // EMULTIHOP
  kDotdot = 73,           // EDOTDOT
  kBadmsg = 74,           // EBADMSG
  kOverflow = 75,         // EOVERFLOW
  kNotuniq = 76,          // ENOTUNIQ
  kBadfd = 77,            // EBADFD
  kRemchg = 78,           // EREMCHG
  kLibacc = 79,           // ELIBACC
  kLibbad = 80,           // ELIBBAD
  kLibscn = 81,           // ELIBSCN
  kLibmax = 82,           // ELIBMAX
  kLibexec = 83,          // ELIBEXEC
  kIlseq = 84,            // EILSEQ
  kRestart = 85,          // ERESTART
  kStrpipe = 86,          // ESTRPIPE
  kUsers = 87,            // EUSERS
  kNotsock = 88,          // ENOTSOCK
  kDestaddrreq = 89,      // EDESTADDRREQ
  kMsgsize = 90,          // EMSGSIZE
  kPrototype = 91,        // EPROTOTYPE
  kNoprotoopt = 92,       // ENOPROTOOPT
  kProtonosupport = 93,   // EPROTONOSUPPORT
  kSocktnosupport = 94,   // ESOCKTNOSUPPORT
  kOpnotsupp = 95,        // EOPNOTSUPP
  kPfnosupport = 96,      // EPFNOSUPPORT
  kAfnosupport = 97,      // EAFNOSUPPORT
  kAddrinuse = 98,        // EADDRINUSE
  kAddrnotavail = 99,     // EADDRNOTAVAIL
  kNetdown = 100,         // ENETDOWN
  kNetunreach = 101,      // ENETUNREACH
  kNetreset = 102,        // ENETRESET
  kConnaborted = 103,     // ECONNABORTED
  kConnreset = 104,       // ECONNRESET
  kNobufs = 105,          // ENOBUFS
  kIsconn = 106,          // EISCONN
  kNotconn = 107,         // ENOTCONN
  kShutdown = 108,        // ESHUTDOWN
  kToomanyrefs = 109,     // ETOOMANYREFS
  kTimedout = 110,        // ETIMEDOUT
  kConnrefused = 111,     // ECONNREFUSED
  kHostdown = 112,        // EHOSTDOWN
  kHostunreach = 113,     // EHOSTUNREACH
  kAlready = 114,         // EALREADY
  kInprogress = 115,      // EINPROGRESS
  kStale = 116,           // ESTALE
  kUclean = 117,          // EUCLEAN
  kNotnam = 118,          // ENOTNAM
  kNavail = 119,          // ENAVAIL
  kIsnam = 120,           // EISNAM
  kRemoteio = 121,        // EREMOTEIO
  kDquot = 122,           // EDQUOT
  kNomedium = 123,        // ENOMEDIUM
  kMediumtype = 124,      // EMEDIUMTYPE
  kCanceled = 125,        // ECANCELED
  kNokey = 126,           // ENOKEY
  kKeyexpired = 127,      // EKEYEXPIRED
  kKeyrevoked = 128,      // EKEYREVOKED
  kKeyrejected = 129,     // EKEYREJECTED
  kOwnerdead = 130,       // EOWNERDEAD
  kNotrecoverable = 131,  // ENOTRECOVERABLE
  kRfkill = 132,          // ERFKILL
  kHwpoison = 133,        // EHWPOISON
  // Aliases: these errno names share a number on Linux, so they share a canonical value.
  kWouldblock = kAgain,  // EWOULDBLOCK
  kDeadlock = kDeadlk,   // EDEADLOCK
  kNotsup = kOpnotsupp,  // ENOTSUP (FreeBSD also gives it the EOPNOTSUPP number)
  kNoattr = kNodata,     // FreeBSD ENOATTR; Linux reports a missing xattr as ENODATA
};

struct ErrnoMapping {
  Errno canonical;
  int native;
};

// Linux: include/uapi/asm-generic/errno-base.h and include/uapi/asm-generic/errno.h.
// Identical to the canonical numbering by definition.
inline constexpr auto kLinuxErrnoTable = std::to_array<ErrnoMapping>({
    {Errno::kPerm, 1},
    {Errno::kNoent, 2},
    {Errno::kSrch, 3},
    {Errno::kIntr, 4},
    {Errno::kIo, 5},
    {Errno::kNxio, 6},
    {Errno::k2big, 7},
    {Errno::kNoexec, 8},
    {Errno::kBadf, 9},
    {Errno::kChild, 10},
    {Errno::kAgain, 11},
    {Errno::kNomem, 12},
    {Errno::kAcces, 13},
    {Errno::kFault, 14},
    {Errno::kNotblk, 15},
    {Errno::kBusy, 16},
    {Errno::kExist, 17},
    {Errno::kXdev, 18},
    {Errno::kNodev, 19},
    {Errno::kNotdir, 20},
    {Errno::kIsdir, 21},
    {Errno::kInval, 22},
    {Errno::kNfile, 23},
    {Errno::kMfile, 24},
    {Errno::kNotty, 25},
    {Errno::kTxtbsy, 26},
    {Errno::kFbig, 27},
    {Errno::kNospc, 28},
    {Errno::kSpipe, 29},
    {Errno::kRofs, 30},
    {Errno::kMlink, 31},
    {Errno::kPipe, 32},
    {Errno::kDom, 33},
    {Errno::kRange, 34},
    {Errno::kDeadlk, 35},
    {Errno::kNametoolong, 36},
    {Errno::kNolck, 37},
    {Errno::kNosys, 38},
    {Errno::kNotempty, 39},
    {Errno::kLoop, 40},
    {Errno::kNomsg, 42},
    {Errno::kIdrm, 43},
    {Errno::kChrng, 44},
    {Errno::kL2nsync, 45},
    {Errno::kL3hlt, 46},
    {Errno::kL3rst, 47},
    {Errno::kLnrng, 48},
    {Errno::kUnatch, 49},
    {Errno::kNocsi, 50},
    {Errno::kL2hlt, 51},
    {Errno::kBade, 52},
    {Errno::kBadr, 53},
    {Errno::kXfull, 54},
    {Errno::kNoano, 55},
    {Errno::kBadrqc, 56},
    {Errno::kBadslt, 57},
    {Errno::kBfont, 59},
    {Errno::kNostr, 60},
    {Errno::kNodata, 61},
    {Errno::kTime, 62},
    {Errno::kNosr, 63},
    {Errno::kNonet, 64},
    {Errno::kNopkg, 65},
    {Errno::kRemote, 66},
    {Errno::kNolink, 67},
    {Errno::kAdv, 68},
    {Errno::kSrmnt, 69},
    {Errno::kComm, 70},
    {Errno::kProto, 71},
    {Errno::kMultihop, 72},
    {Errno::kDotdot, 73},
    {Errno::kBadmsg, 74},
    {Errno::kOverflow, 75},
    {Errno::kNotuniq, 76},
    {Errno::kBadfd, 77},
    {Errno::kRemchg, 78},
    {Errno::kLibacc, 79},
    {Errno::kLibbad, 80},
    {Errno::kLibscn, 81},
    {Errno::kLibmax, 82},
    {Errno::kLibexec, 83},
    {Errno::kIlseq, 84},
    {Errno::kRestart, 85},
    {Errno::kStrpipe, 86},
    {Errno::kUsers, 87},
    {Errno::kNotsock, 88},
    {Errno::kDestaddrreq, 89},
    {Errno::kMsgsize, 90},
    {Errno::kPrototype, 91},
    {Errno::kNoprotoopt, 92},
    {Errno::kProtonosupport, 93},
    {Errno::kSocktnosupport, 94},
    {Errno::kOpnotsupp, 95},
    {Errno::kPfnosupport, 96},
    {Errno::kAfnosupport, 97},
    {Errno::kAddrinuse, 98},
    {Errno::kAddrnotavail, 99},
    {Errno::kNetdown, 100},
    {Errno::kNetunreach, 101},
    {Errno::kNetreset, 102},
    {Errno::kConnaborted, 103},
    {Errno::kConnreset, 104},
    {Errno::kNobufs, 105},
    {Errno::kIsconn, 106},
    {Errno::kNotconn, 107},
    {Errno::kShutdown, 108},
    {Errno::kToomanyrefs, 109},
    {Errno::kTimedout, 110},
    {Errno::kConnrefused, 111},
    {Errno::kHostdown, 112},
    {Errno::kHostunreach, 113},
    {Errno::kAlready, 114},
    {Errno::kInprogress, 115},
    {Errno::kStale, 116},
    {Errno::kUclean, 117},
    {Errno::kNotnam, 118},
    {Errno::kNavail, 119},
    {Errno::kIsnam, 120},
    {Errno::kRemoteio, 121},
    {Errno::kDquot, 122},
    {Errno::kNomedium, 123},
    {Errno::kMediumtype, 124},
    {Errno::kCanceled, 125},
    {Errno::kNokey, 126},
    {Errno::kKeyexpired, 127},
    {Errno::kKeyrevoked, 128},
    {Errno::kKeyrejected, 129},
    {Errno::kOwnerdead, 130},
    {Errno::kNotrecoverable, 131},
    {Errno::kRfkill, 132},
    {Errno::kHwpoison, 133},
});

// FreeBSD: sys/sys/errno.h. Canonical values with no FreeBSD counterpart are absent and become
// EIO on a FreeBSD machine; FreeBSD-only errors (EFTYPE, EAUTH, ENOTCAPABLE, ...) become EIO
// on the wire.
inline constexpr auto kFreeBsdErrnoTable = std::to_array<ErrnoMapping>({
    {Errno::kPerm, 1},
    {Errno::kNoent, 2},
    {Errno::kSrch, 3},
    {Errno::kIntr, 4},
    {Errno::kIo, 5},
    {Errno::kNxio, 6},
    {Errno::k2big, 7},
    {Errno::kNoexec, 8},
    {Errno::kBadf, 9},
    {Errno::kChild, 10},
    {Errno::kDeadlk, 11},
    {Errno::kNomem, 12},
    {Errno::kAcces, 13},
    {Errno::kFault, 14},
    {Errno::kNotblk, 15},
    {Errno::kBusy, 16},
    {Errno::kExist, 17},
    {Errno::kXdev, 18},
    {Errno::kNodev, 19},
    {Errno::kNotdir, 20},
    {Errno::kIsdir, 21},
    {Errno::kInval, 22},
    {Errno::kNfile, 23},
    {Errno::kMfile, 24},
    {Errno::kNotty, 25},
    {Errno::kTxtbsy, 26},
    {Errno::kFbig, 27},
    {Errno::kNospc, 28},
    {Errno::kSpipe, 29},
    {Errno::kRofs, 30},
    {Errno::kMlink, 31},
    {Errno::kPipe, 32},
    {Errno::kDom, 33},
    {Errno::kRange, 34},
    {Errno::kAgain, 35},
    {Errno::kInprogress, 36},
    {Errno::kAlready, 37},
    {Errno::kNotsock, 38},
    {Errno::kDestaddrreq, 39},
    {Errno::kMsgsize, 40},
    {Errno::kPrototype, 41},
    {Errno::kNoprotoopt, 42},
    {Errno::kProtonosupport, 43},
    {Errno::kSocktnosupport, 44},
    {Errno::kOpnotsupp, 45},  // ENOTSUP is the same number
    {Errno::kPfnosupport, 46},
    {Errno::kAfnosupport, 47},
    {Errno::kAddrinuse, 48},
    {Errno::kAddrnotavail, 49},
    {Errno::kNetdown, 50},
    {Errno::kNetunreach, 51},
    {Errno::kNetreset, 52},
    {Errno::kConnaborted, 53},
    {Errno::kConnreset, 54},
    {Errno::kNobufs, 55},
    {Errno::kIsconn, 56},
    {Errno::kNotconn, 57},
    {Errno::kShutdown, 58},
    {Errno::kToomanyrefs, 59},
    {Errno::kTimedout, 60},
    {Errno::kConnrefused, 61},
    {Errno::kLoop, 62},
    {Errno::kNametoolong, 63},
    {Errno::kHostdown, 64},
    {Errno::kHostunreach, 65},
    {Errno::kNotempty, 66},
    {Errno::kUsers, 68},
    {Errno::kDquot, 69},
    {Errno::kStale, 70},
    {Errno::kRemote, 71},
    {Errno::kNolck, 77},
    {Errno::kNosys, 78},
    {Errno::kIdrm, 82},
    {Errno::kNomsg, 83},
    {Errno::kOverflow, 84},
    {Errno::kCanceled, 85},
    {Errno::kIlseq, 86},
    {Errno::kNodata, 87},  // ENOATTR: FreeBSD has no ENODATA
    {Errno::kBadmsg, 89},
    {Errno::kMultihop, 90},
    {Errno::kNolink, 91},
    {Errno::kProto, 92},
    {Errno::kNotrecoverable, 95},
    {Errno::kOwnerdead, 96},
    {Errno::kUclean, 97},  // EINTEGRITY: FreeBSD's "file system corrupt", Linux's EFSCORRUPTED
});

// nullopt for a native errno without a canonical equivalent (or a wire value without a native
// one): the caller decides what it becomes (the session and the client use EIO, the generic
// failure every program handles). 0 (success) maps to 0.
[[nodiscard]] std::optional<uint32_t> errno_to_wire(int native, Os os = native_os());
[[nodiscard]] std::optional<int> errno_from_wire(uint32_t wire, Os os = native_os());

// The errno that says "no such extended attribute" on this OS: ENODATA on Linux, ENOATTR on
// FreeBSD; both are canonical kNoattr. Looked up in the table, never written as a literal.
int no_attribute_errno(Os os = native_os());

// ---------------------------------------------------------------------------------------------
// All remaining tables map a canonical value (or bit) to a native value (or bit mask).
struct ValueMapping {
  uint32_t canonical;
  uint32_t native;
};

// ---------------------------------------------------------------------------------------------
// Open flags. Canonical layout (own numbering): the access mode is a value in the low 2 bits,
// every other flag is one bit.
constexpr uint32_t kOpenRdonly = 0;
constexpr uint32_t kOpenWronly = 1;
constexpr uint32_t kOpenRdwr = 2;
// Linux's access mode 3: neither read nor write (ioctl only), yet it needs read and write
// permission. FreeBSD has no such mode.
constexpr uint32_t kOpenNoAccess = 3;
constexpr uint32_t kOpenAccessModeMask = 3;
constexpr uint32_t kOpenCreat = 1u << 2;
constexpr uint32_t kOpenExcl = 1u << 3;
constexpr uint32_t kOpenNoctty = 1u << 4;
constexpr uint32_t kOpenTrunc = 1u << 5;
constexpr uint32_t kOpenAppend = 1u << 6;
constexpr uint32_t kOpenNonblock = 1u << 7;
constexpr uint32_t kOpenDsync = 1u << 8;
// Full file integrity; implies kOpenDsync. open_flags_to_wire always sets both, because on
// Linux O_SYNC contains the O_DSYNC bit and the two sides must agree on one encoding.
constexpr uint32_t kOpenSync = 1u << 9;
constexpr uint32_t kOpenDirectory = 1u << 10;
constexpr uint32_t kOpenNofollow = 1u << 11;
constexpr uint32_t kOpenCloexec = 1u << 12;
constexpr uint32_t kOpenDirect = 1u << 13;
constexpr uint32_t kOpenNoatime = 1u << 14;
constexpr uint32_t kOpenLargefile = 1u << 15;  // carried for completeness; receivers ignore it

// Linux: include/uapi/asm-generic/fcntl.h (x86-64, arm64, riscv64 and the other architectures
// that use the generic values; the static checks in canonical.cpp catch any other).
inline constexpr auto kLinuxOpenAccessTable = std::to_array<ValueMapping>({
    {kOpenRdonly, 00},
    {kOpenWronly, 01},
    {kOpenRdwr, 02},
    {kOpenNoAccess, 03},
});
inline constexpr auto kLinuxOpenFlagTable = std::to_array<ValueMapping>({
    {kOpenCreat, 0100},
    {kOpenExcl, 0200},
    {kOpenNoctty, 0400},
    {kOpenTrunc, 01000},
    {kOpenAppend, 02000},
    {kOpenNonblock, 04000},
    {kOpenDsync, 010000},
    {kOpenDirect, 040000},
    {kOpenLargefile, 0100000},
    {kOpenDirectory, 0200000},
    {kOpenNofollow, 0400000},
    {kOpenNoatime, 01000000},
    {kOpenCloexec, 02000000},
    {kOpenSync, 04010000},  // __O_SYNC | O_DSYNC
});

// FreeBSD: sys/sys/fcntl.h. FreeBSD has no O_NOATIME and no O_LARGEFILE.
inline constexpr auto kFreeBsdOpenAccessTable = std::to_array<ValueMapping>({
    {kOpenRdonly, 0x0000},
    {kOpenWronly, 0x0001},
    {kOpenRdwr, 0x0002},
});
inline constexpr auto kFreeBsdOpenFlagTable = std::to_array<ValueMapping>({
    {kOpenNonblock, 0x0004},
    {kOpenAppend, 0x0008},
    {kOpenSync, 0x0080},
    {kOpenNofollow, 0x0100},
    {kOpenCreat, 0x0200},
    {kOpenTrunc, 0x0400},
    {kOpenExcl, 0x0800},
    {kOpenNoctty, 0x8000},
    {kOpenDirect, 0x00010000},
    {kOpenDirectory, 0x00020000},
    {kOpenCloexec, 0x00100000},
    {kOpenDsync, 0x01000000},
});

// Native open flags that only the guest's own kernel acts on and that mean nothing to the
// host's open: accepted and not sent. Linux: FASYNC (signal-driven I/O is delivered by the
// guest kernel), __FMODE_EXEC (the kernel's mark on an exec open), __FMODE_NONOTIFY
// (fanotify's own opens). FreeBSD: O_SHLOCK/O_EXLOCK (taken by the guest kernel through
// VOP_ADVLOCK), O_ASYNC, O_EXEC (the guest kernel checked execute permission), O_TTY_INIT,
// O_VERIFY.
inline constexpr uint32_t kLinuxOpenGuestOnlyFlags = 020000 | 040 | 0x4000000;
inline constexpr uint32_t kFreeBsdOpenGuestOnlyFlags =
    0x0010 | 0x0020 | 0x0040 | 0x00040000 | 0x00080000 | 0x00200000;

// nullopt for a native flag that is neither in the table nor guest-only (e.g. Linux O_PATH or
// O_TMPFILE, which fsout does not carry) and for an access mode without a row; the guest
// answers EINVAL.
[[nodiscard]] std::optional<uint32_t> open_flags_to_wire(int native, Os os = native_os());
// nullopt for a canonical bit the OS cannot express (e.g. kOpenNoatime on FreeBSD) and for
// kOpenNoAccess where there is no such mode (FreeBSD); the host answers EINVAL. kOpenLargefile is
// accepted everywhere (every fsout file is large-file capable) and becomes O_LARGEFILE where that
// exists.
[[nodiscard]] std::optional<int> open_flags_from_wire(uint32_t wire, Os os = native_os());

// ---------------------------------------------------------------------------------------------
// File mode: the traditional octal layout (type in 0170000, permissions in 07777).
constexpr uint32_t kModeTypeMask = 0170000;
constexpr uint32_t kModeFifo = 0010000;
constexpr uint32_t kModeCharDevice = 0020000;
constexpr uint32_t kModeDirectory = 0040000;
constexpr uint32_t kModeBlockDevice = 0060000;
constexpr uint32_t kModeRegular = 0100000;
constexpr uint32_t kModeSymlink = 0120000;
constexpr uint32_t kModeSocket = 0140000;
constexpr uint32_t kModePermissionMask = 07777;  // set-user-ID, set-group-ID, sticky, rwxrwxrwx

// Linux: include/uapi/linux/stat.h.
inline constexpr auto kLinuxModeTypeTable = std::to_array<ValueMapping>({
    {kModeFifo, 0010000},
    {kModeCharDevice, 0020000},
    {kModeDirectory, 0040000},
    {kModeBlockDevice, 0060000},
    {kModeRegular, 0100000},
    {kModeSymlink, 0120000},
    {kModeSocket, 0140000},
});
// FreeBSD: sys/sys/stat.h. S_IFWHT (whiteout, 0160000) has no canonical type.
inline constexpr auto kFreeBsdModeTypeTable = std::to_array<ValueMapping>({
    {kModeFifo, 0010000},
    {kModeCharDevice, 0020000},
    {kModeDirectory, 0040000},
    {kModeBlockDevice, 0060000},
    {kModeRegular, 0100000},
    {kModeSymlink, 0120000},
    {kModeSocket, 0140000},
});

// Permission bits pass through; type 0 (no type bits, as in a chmod mode) stays 0. nullopt
// for an unknown file type (FreeBSD S_IFWHT) and for bits outside type and permissions.
[[nodiscard]] std::optional<uint32_t> mode_to_wire(uint32_t native, Os os = native_os());
[[nodiscard]] std::optional<uint32_t> mode_from_wire(uint32_t wire, Os os = native_os());

// ---------------------------------------------------------------------------------------------
// Directory entry type (d_type).
constexpr uint8_t kDirentUnknown = 0;
constexpr uint8_t kDirentFifo = 1;
constexpr uint8_t kDirentCharDevice = 2;
constexpr uint8_t kDirentDirectory = 4;
constexpr uint8_t kDirentBlockDevice = 6;
constexpr uint8_t kDirentRegular = 8;
constexpr uint8_t kDirentSymlink = 10;
constexpr uint8_t kDirentSocket = 12;

// Linux: include/linux/fs_types.h (DT_*) and glibc dirent.h.
inline constexpr auto kLinuxDirentTypeTable = std::to_array<ValueMapping>({
    {kDirentUnknown, 0},
    {kDirentFifo, 1},
    {kDirentCharDevice, 2},
    {kDirentDirectory, 4},
    {kDirentBlockDevice, 6},
    {kDirentRegular, 8},
    {kDirentSymlink, 10},
    {kDirentSocket, 12},
});
// FreeBSD: sys/sys/dirent.h. DT_WHT (14) has no canonical type.
inline constexpr auto kFreeBsdDirentTypeTable = std::to_array<ValueMapping>({
    {kDirentUnknown, 0},
    {kDirentFifo, 1},
    {kDirentCharDevice, 2},
    {kDirentDirectory, 4},
    {kDirentBlockDevice, 6},
    {kDirentRegular, 8},
    {kDirentSymlink, 10},
    {kDirentSocket, 12},
});

// nullopt for a type without a row (FreeBSD DT_WHT); callers that list a directory may choose
// kDirentUnknown / DT_UNKNOWN instead, which readers handle by calling stat.
[[nodiscard]] std::optional<uint8_t> dirent_type_to_wire(unsigned native, Os os = native_os());
[[nodiscard]] std::optional<unsigned> dirent_type_from_wire(uint8_t wire, Os os = native_os());

// ---------------------------------------------------------------------------------------------
// Device numbers: canonical is (major, minor) as two 32-bit values.
struct Device {
  uint32_t major;
  uint32_t minor;
};

// Linux: glibc's encoding (gnu_dev_major/gnu_dev_minor/gnu_dev_makedev in sys/sysmacros.h).
// FreeBSD 12 and later: the 64-bit dev_t encoding from sys/sys/types.h. Both carry a full
// 32-bit major and minor, so these two are total and lossless (unit-tested both ways).
Device device_to_wire(uint64_t native_device, Os os = native_os());
uint64_t device_from_wire(Device device, Os os = native_os());

// ---------------------------------------------------------------------------------------------
// Record lock type (struct flock l_type).
constexpr uint32_t kLockRead = 0;
constexpr uint32_t kLockWrite = 1;
constexpr uint32_t kLockUnlock = 2;

// Linux: include/uapi/asm-generic/fcntl.h.
inline constexpr auto kLinuxLockTypeTable = std::to_array<ValueMapping>({
    {kLockRead, 0},
    {kLockWrite, 1},
    {kLockUnlock, 2},
});
// FreeBSD: sys/sys/fcntl.h.
inline constexpr auto kFreeBsdLockTypeTable = std::to_array<ValueMapping>({
    {kLockRead, 1},
    {kLockUnlock, 2},
    {kLockWrite, 3},
});

[[nodiscard]] std::optional<uint32_t> lock_type_to_wire(int native, Os os = native_os());
[[nodiscard]] std::optional<int> lock_type_from_wire(uint32_t wire, Os os = native_os());

// ---------------------------------------------------------------------------------------------
// lseek whence.
constexpr uint32_t kWhenceSet = 0;
constexpr uint32_t kWhenceCur = 1;
constexpr uint32_t kWhenceEnd = 2;
constexpr uint32_t kWhenceData = 3;
constexpr uint32_t kWhenceHole = 4;

// Linux: include/uapi/linux/fs.h.
inline constexpr auto kLinuxWhenceTable = std::to_array<ValueMapping>({
    {kWhenceSet, 0},
    {kWhenceCur, 1},
    {kWhenceEnd, 2},
    {kWhenceData, 3},
    {kWhenceHole, 4},
});
// FreeBSD: sys/sys/unistd.h.
inline constexpr auto kFreeBsdWhenceTable = std::to_array<ValueMapping>({
    {kWhenceSet, 0},
    {kWhenceCur, 1},
    {kWhenceEnd, 2},
    {kWhenceData, 3},
    {kWhenceHole, 4},
});

[[nodiscard]] std::optional<uint32_t> whence_to_wire(int native, Os os = native_os());
[[nodiscard]] std::optional<int> whence_from_wire(uint32_t wire, Os os = native_os());

// ---------------------------------------------------------------------------------------------
// Bit sets below: to_wire returns nullopt when a native bit has no canonical bit, from_wire
// when a canonical bit has no native one. Dropping a bit would change the request's meaning
// (without kRenameNoreplace a safe rename destroys a file; without kFallocZeroRange an
// allocation leaves old bytes where the program asked for zeros).

// Rename flags.
constexpr uint32_t kRenameNoreplace = 1;
constexpr uint32_t kRenameExchange = 2;
constexpr uint32_t kRenameWhiteout = 4;  // leave a 0/0 character device behind (overlayfs)

// Linux: include/uapi/linux/fs.h.
inline constexpr auto kLinuxRenameFlagTable = std::to_array<ValueMapping>({
    {kRenameNoreplace, 1},
    {kRenameExchange, 2},
    {kRenameWhiteout, 4},
});
// FreeBSD: rename(2)/renameat(2) in the headers this table was checked against (FreeBSD 14)
// take no flags.
inline constexpr std::array<ValueMapping, 0> kFreeBsdRenameFlagTable{};

[[nodiscard]] std::optional<uint32_t> rename_flags_to_wire(int native, Os os = native_os());
[[nodiscard]] std::optional<int> rename_flags_from_wire(uint32_t wire, Os os = native_os());

// Extended attribute set flags.
constexpr uint32_t kXattrCreate = 1;
constexpr uint32_t kXattrReplace = 2;

// Linux: include/uapi/linux/xattr.h.
inline constexpr auto kLinuxXattrFlagTable = std::to_array<ValueMapping>({
    {kXattrCreate, 1},
    {kXattrReplace, 2},
});
// FreeBSD: extattr_set_*(2) (sys/sys/extattr.h) always creates or replaces and takes no flags.
inline constexpr std::array<ValueMapping, 0> kFreeBsdXattrFlagTable{};

[[nodiscard]] std::optional<uint32_t> xattr_flags_to_wire(int native, Os os = native_os());
[[nodiscard]] std::optional<int> xattr_flags_from_wire(uint32_t wire, Os os = native_os());

// Extended attribute names. The wire's are Linux's "namespace.name" strings (user., trusted.,
// security., system.). FreeBSD numbers its namespaces and its fusefs sends "user." and
// "system." names; FreeBSD's system namespace is root's own, as Linux's trusted. is, so:
//   FreeBSD user.X   <-> wire user.X
//   FreeBSD system.X <-> wire trusted.X
// A wire name with no FreeBSD form (security.*, Linux's system.posix_acl_*) has none: it is
// left out of a FreeBSD guest's listings. Linux names cross unchanged.
struct XattrNamespaceMapping {
  std::string_view native;  // prefix, with the dot
  std::string_view wire;
};
inline constexpr auto kFreeBsdXattrNamespaceTable = std::to_array<XattrNamespaceMapping>({
    {"user.", "user."},
    {"system.", "trusted."},
});

[[nodiscard]] std::optional<std::string> xattr_name_to_wire(std::string_view native,
                                                            Os os = native_os());
[[nodiscard]] std::optional<std::string> xattr_name_from_wire(std::string_view wire,
                                                              Os os = native_os());
// Whether names change between this OS and the wire (a listing must then be rewritten).
[[nodiscard]] bool xattr_names_mapped(Os os = native_os());

// Access mask (access(2)); kAccessExists (F_OK) is the empty mask.
constexpr uint32_t kAccessExists = 0;
constexpr uint32_t kAccessExecute = 1;
constexpr uint32_t kAccessWrite = 2;
constexpr uint32_t kAccessRead = 4;

// Linux: glibc posix/unistd.h (the kernel uses the same numbers in fs/open.c).
inline constexpr auto kLinuxAccessMaskTable = std::to_array<ValueMapping>({
    {kAccessExecute, 1},
    {kAccessWrite, 2},
    {kAccessRead, 4},
});
// FreeBSD: sys/sys/unistd.h.
inline constexpr auto kFreeBsdAccessMaskTable = std::to_array<ValueMapping>({
    {kAccessExecute, 0x01},
    {kAccessWrite, 0x02},
    {kAccessRead, 0x04},
});

[[nodiscard]] std::optional<uint32_t> access_mask_to_wire(int native, Os os = native_os());
[[nodiscard]] std::optional<int> access_mask_from_wire(uint32_t wire, Os os = native_os());

// fallocate mode bits.
constexpr uint32_t kFallocKeepSize = 1;
constexpr uint32_t kFallocPunchHole = 2;
constexpr uint32_t kFallocZeroRange = 4;
constexpr uint32_t kFallocCollapseRange = 8;
constexpr uint32_t kFallocInsertRange = 16;
constexpr uint32_t kFallocUnshareRange = 32;

// Linux: include/uapi/linux/falloc.h. FALLOC_FL_NO_HIDE_STALE (0x04) has no row: no Linux
// file system accepts it, so a guest asking for it gets EOPNOTSUPP, as locally. Linux's own
// rules on combinations (PUNCH_HOLE needs KEEP_SIZE, ...) are the host kernel's to apply.
inline constexpr auto kLinuxFallocateModeTable = std::to_array<ValueMapping>({
    {kFallocKeepSize, 0x01},
    {kFallocPunchHole, 0x02},
    {kFallocZeroRange, 0x10},
    {kFallocCollapseRange, 0x08},
    {kFallocInsertRange, 0x20},
    {kFallocUnshareRange, 0x40},
});
// FreeBSD: posix_fallocate(2) has no mode and hole punching is fspacectl(2), so there is no
// native mode bit to map; mode 0 (plain allocation) is still expressible.
inline constexpr std::array<ValueMapping, 0> kFreeBsdFallocateModeTable{};

[[nodiscard]] std::optional<uint32_t> fallocate_mode_to_wire(int native, Os os = native_os());
[[nodiscard]] std::optional<int> fallocate_mode_from_wire(uint32_t wire, Os os = native_os());

}  // namespace fsout::canonical
