#include "protocol/canonical.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <vector>

#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#endif

namespace fsout::canonical {
namespace {

constexpr Os kBothOs[] = {Os::kLinux, Os::kFreeBsd};

const char* os_name(Os os) { return os == Os::kFreeBsd ? "FreeBSD" : "Linux"; }

std::span<const ErrnoMapping> errno_table(Os os) {
  if (os == Os::kFreeBsd) return kFreeBsdErrnoTable;
  return kLinuxErrnoTable;
}

std::span<const ValueMapping> open_flag_table(Os os) {
  if (os == Os::kFreeBsd) return kFreeBsdOpenFlagTable;
  return kLinuxOpenFlagTable;
}

std::span<const ValueMapping> open_access_table(Os os) {
  if (os == Os::kFreeBsd) return kFreeBsdOpenAccessTable;
  return kLinuxOpenAccessTable;
}

std::span<const ValueMapping> mode_type_table(Os os) {
  if (os == Os::kFreeBsd) return kFreeBsdModeTypeTable;
  return kLinuxModeTypeTable;
}

std::span<const ValueMapping> dirent_type_table(Os os) {
  if (os == Os::kFreeBsd) return kFreeBsdDirentTypeTable;
  return kLinuxDirentTypeTable;
}

std::span<const ValueMapping> lock_type_table(Os os) {
  if (os == Os::kFreeBsd) return kFreeBsdLockTypeTable;
  return kLinuxLockTypeTable;
}

std::span<const ValueMapping> whence_table(Os os) {
  if (os == Os::kFreeBsd) return kFreeBsdWhenceTable;
  return kLinuxWhenceTable;
}

uint32_t wire(Errno e) { return static_cast<uint32_t>(e); }

// ---------------------------------------------------------------------------------------------
// errno

TEST(CanonicalErrno, EveryTableRowTranslatesBothWays) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const ErrnoMapping& row : errno_table(os)) {
      EXPECT_EQ(errno_to_wire(row.native, os), wire(row.canonical)) << "native " << row.native;
      EXPECT_EQ(errno_from_wire(wire(row.canonical), os), row.native)
          << "canonical " << wire(row.canonical);
    }
  }
}

TEST(CanonicalErrno, EveryCanonicalValueRoundTripsOrBecomesEio) {
  // The Linux table lists every canonical errno, since the canonical numbering is Linux's.
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const ErrnoMapping& canonical_row : kLinuxErrnoTable) {
      const uint32_t value = wire(canonical_row.canonical);
      const int native = errno_from_wire(value, os);
      bool in_table = false;
      for (const ErrnoMapping& row : errno_table(os))
        in_table |= row.canonical == canonical_row.canonical;
      if (in_table) {
        EXPECT_EQ(errno_to_wire(native, os), value);
      } else {
        EXPECT_EQ(native, 5) << "canonical " << value << " has no native errno, expected EIO";
      }
    }
  }
}

TEST(CanonicalErrno, SuccessStaysZero) {
  for (Os os : kBothOs) {
    EXPECT_EQ(errno_to_wire(0, os), 0u);
    EXPECT_EQ(errno_from_wire(0, os), 0);
  }
}

TEST(CanonicalErrno, UnknownNativeBecomesEioOnTheWire) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (int native : {-1, -5, 134, 200, 255, 256, 100000}) {
      EXPECT_EQ(errno_to_wire(native, os), kErrnoUnknown) << native;
    }
  }
  // Numbers Linux leaves unused (41 and 58 are only aliases' old slots).
  EXPECT_EQ(errno_to_wire(41, Os::kLinux), kErrnoUnknown);
  EXPECT_EQ(errno_to_wire(58, Os::kLinux), kErrnoUnknown);
  // FreeBSD-only errors: EPROCLIM 67, EFTYPE 79, EAUTH 80, EDOOFUS 88, ENOTCAPABLE 93,
  // ECAPMODE 94, and 98 (beyond ELAST).
  for (int native : {67, 72, 76, 79, 80, 81, 88, 93, 94, 98}) {
    EXPECT_EQ(errno_to_wire(native, Os::kFreeBsd), kErrnoUnknown) << native;
  }
  EXPECT_EQ(kErrnoUnknown, wire(Errno::kIo));
}

TEST(CanonicalErrno, UnknownWireBecomesNativeEio) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (uint32_t value : {41u, 58u, 134u, 255u, 256u, 70000u, 0xffffffffu}) {
      EXPECT_EQ(errno_from_wire(value, os), 5) << value;
    }
  }
  // Linux-only errors have no FreeBSD number.
  EXPECT_EQ(errno_from_wire(wire(Errno::kNokey), Os::kFreeBsd), 5);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNomedium), Os::kFreeBsd), 5);
}

TEST(CanonicalErrno, CanonicalNumbersAreLinuxAsmGeneric) {
  EXPECT_EQ(wire(Errno::kPerm), 1u);
  EXPECT_EQ(wire(Errno::kNoent), 2u);
  EXPECT_EQ(wire(Errno::kAgain), 11u);
  EXPECT_EQ(wire(Errno::kWouldblock), 11u);
  EXPECT_EQ(wire(Errno::kDeadlk), 35u);
  EXPECT_EQ(wire(Errno::kDeadlock), 35u);
  EXPECT_EQ(wire(Errno::kNametoolong), 36u);
  EXPECT_EQ(wire(Errno::kNotempty), 39u);
  EXPECT_EQ(wire(Errno::kLoop), 40u);
  EXPECT_EQ(wire(Errno::kNodata), 61u);
  EXPECT_EQ(wire(Errno::kNoattr), 61u);
  EXPECT_EQ(wire(Errno::kOpnotsupp), 95u);
  EXPECT_EQ(wire(Errno::kNotsup), 95u);
  EXPECT_EQ(wire(Errno::kStale), 116u);
  EXPECT_EQ(wire(Errno::kDquot), 122u);
  EXPECT_EQ(wire(Errno::kHwpoison), 133u);
}

TEST(CanonicalErrno, FreeBsdNumbersFromSysErrnoH) {
  const Os bsd = Os::kFreeBsd;
  EXPECT_EQ(errno_from_wire(wire(Errno::kAgain), bsd), 35);
  EXPECT_EQ(errno_from_wire(wire(Errno::kDeadlk), bsd), 11);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNotempty), bsd), 66);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNoattr), bsd), 87);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNodata), bsd), 87);
  EXPECT_EQ(errno_from_wire(wire(Errno::kOpnotsupp), bsd), 45);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNotsup), bsd), 45);
  EXPECT_EQ(errno_from_wire(wire(Errno::kDquot), bsd), 69);
  EXPECT_EQ(errno_from_wire(wire(Errno::kLoop), bsd), 62);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNametoolong), bsd), 63);
  EXPECT_EQ(errno_from_wire(wire(Errno::kStale), bsd), 70);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNolck), bsd), 77);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNosys), bsd), 78);
  EXPECT_EQ(errno_from_wire(wire(Errno::kOverflow), bsd), 84);
  EXPECT_EQ(errno_from_wire(wire(Errno::kCanceled), bsd), 85);
  EXPECT_EQ(errno_from_wire(wire(Errno::kIlseq), bsd), 86);
  EXPECT_EQ(errno_from_wire(wire(Errno::kBadmsg), bsd), 89);
  EXPECT_EQ(errno_from_wire(wire(Errno::kProto), bsd), 92);
  EXPECT_EQ(errno_from_wire(wire(Errno::kTimedout), bsd), 60);
  EXPECT_EQ(errno_from_wire(wire(Errno::kConnrefused), bsd), 61);
  EXPECT_EQ(errno_to_wire(35, bsd), wire(Errno::kAgain));
  EXPECT_EQ(errno_to_wire(87, bsd), wire(Errno::kNodata));
  EXPECT_EQ(errno_to_wire(97, bsd), wire(Errno::kUclean));  // EINTEGRITY
}

#if defined(__linux__)
TEST(CanonicalErrno, DefaultsToTheNativeOs) {
  EXPECT_EQ(native_os(), Os::kLinux);
  EXPECT_EQ(errno_to_wire(ENOENT), wire(Errno::kNoent));
  EXPECT_EQ(errno_from_wire(wire(Errno::kNotempty)), ENOTEMPTY);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNoattr)), ENODATA);
}
#endif

// ---------------------------------------------------------------------------------------------
// Open flags

// Encoders always set kOpenDsync next to kOpenSync (see canonical.h).
uint32_t normalized(uint32_t wire_flags) {
  return (wire_flags & kOpenSync) != 0 ? wire_flags | kOpenDsync : wire_flags;
}

TEST(CanonicalOpenFlags, EveryTableRowTranslatesBothWays) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const ValueMapping& row : open_access_table(os)) {
      EXPECT_EQ(open_flags_to_wire(static_cast<int>(row.native), os), row.canonical);
      EXPECT_EQ(open_flags_from_wire(row.canonical, os), static_cast<int>(row.native));
    }
    for (const ValueMapping& row : open_flag_table(os)) {
      EXPECT_EQ(open_flags_to_wire(static_cast<int>(row.native), os), normalized(row.canonical))
          << "native " << row.native;
      EXPECT_EQ(open_flags_from_wire(row.canonical, os), static_cast<int>(row.native))
          << "canonical " << row.canonical;
    }
  }
}

TEST(CanonicalOpenFlags, EveryCombinationRoundTrips) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    std::vector<uint32_t> bits;
    for (const ValueMapping& row : open_flag_table(os)) bits.push_back(row.canonical);
    const uint32_t combinations = 1u << bits.size();
    for (uint32_t access : {kOpenRdonly, kOpenWronly, kOpenRdwr}) {
      for (uint32_t combination = 0; combination < combinations; ++combination) {
        uint32_t wire_flags = access;
        for (std::size_t i = 0; i < bits.size(); ++i) {
          if ((combination >> i) & 1) wire_flags |= bits[i];
        }
        const int native = open_flags_from_wire(wire_flags, os);
        ASSERT_EQ(open_flags_to_wire(native, os), normalized(wire_flags))
            << "wire 0x" << std::hex << wire_flags;
      }
    }
  }
}

TEST(CanonicalOpenFlags, FreeBsdNumbersFromSysFcntlH) {
  const Os bsd = Os::kFreeBsd;
  EXPECT_EQ(open_flags_from_wire(kOpenCreat, bsd), 0x0200);
  EXPECT_EQ(open_flags_from_wire(kOpenExcl, bsd), 0x0800);
  EXPECT_EQ(open_flags_from_wire(kOpenTrunc, bsd), 0x0400);
  EXPECT_EQ(open_flags_from_wire(kOpenAppend, bsd), 0x0008);
  EXPECT_EQ(open_flags_from_wire(kOpenNonblock, bsd), 0x0004);
  EXPECT_EQ(open_flags_from_wire(kOpenDirectory, bsd), 0x00020000);
  EXPECT_EQ(open_flags_from_wire(kOpenNofollow, bsd), 0x0100);
  EXPECT_EQ(open_flags_from_wire(kOpenCloexec, bsd), 0x00100000);
  EXPECT_EQ(open_flags_from_wire(kOpenDirect, bsd), 0x00010000);
  EXPECT_EQ(open_flags_from_wire(kOpenSync, bsd), 0x0080);
  EXPECT_EQ(open_flags_from_wire(kOpenDsync, bsd), 0x01000000);
  EXPECT_EQ(open_flags_from_wire(kOpenNoctty, bsd), 0x8000);
  EXPECT_EQ(open_flags_from_wire(kOpenRdwr | kOpenCreat | kOpenExcl, bsd),
            0x0002 | 0x0200 | 0x0800);
  EXPECT_EQ(open_flags_to_wire(0x0001 | 0x0200 | 0x0400, bsd),
            kOpenWronly | kOpenCreat | kOpenTrunc);
  // FreeBSD has no O_NOATIME or O_LARGEFILE: dropped.
  EXPECT_EQ(open_flags_from_wire(kOpenRdonly | kOpenNoatime | kOpenLargefile, bsd), 0);
  // O_SHLOCK 0x10, O_EXLOCK 0x20, O_EXEC 0x40000, O_PATH 0x400000 have no canonical bit.
  EXPECT_EQ(open_flags_to_wire(0x0010 | 0x0020 | 0x00040000 | 0x00400000, bsd), kOpenRdonly);
}

TEST(CanonicalOpenFlags, LinuxSyncContainsDsync) {
  const Os lnx = Os::kLinux;
  EXPECT_EQ(open_flags_to_wire(04010000, lnx), kOpenSync | kOpenDsync);
  EXPECT_EQ(open_flags_to_wire(010000, lnx), kOpenDsync);
  EXPECT_EQ(open_flags_from_wire(kOpenSync, lnx), 04010000);
  EXPECT_EQ(open_flags_from_wire(kOpenSync | kOpenDsync, lnx), 04010000);
  EXPECT_EQ(open_flags_from_wire(kOpenDsync, lnx), 010000);
  // A FreeBSD O_SYNC open reaches a Linux host as O_SYNC.
  EXPECT_EQ(open_flags_from_wire(open_flags_to_wire(0x0080, Os::kFreeBsd), lnx), 04010000);
}

TEST(CanonicalOpenFlags, UnknownBitsAndAccessModeThree) {
  for (Os os : kBothOs) {
    // Access mode 3 is not a canonical mode; it becomes read-only, never write.
    EXPECT_EQ(open_flags_to_wire(3, os) & kOpenAccessModeMask, kOpenRdonly);
    EXPECT_EQ(open_flags_from_wire(3, os) & 3, 0);
    // Canonical bits nobody defines yet are dropped.
    EXPECT_EQ(open_flags_from_wire(kOpenRdwr | (1u << 30), os), 2);
  }
  // Linux O_PATH 010000000 and __O_TMPFILE 020000000 have no canonical bit.
  EXPECT_EQ(open_flags_to_wire(010000000 | 020000000 | 02, Os::kLinux), kOpenRdwr);
}

#if defined(__linux__)
TEST(CanonicalOpenFlags, MatchesLinuxHeaders) {
  EXPECT_EQ(open_flags_to_wire(O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC),
            kOpenWronly | kOpenCreat | kOpenExcl | kOpenCloexec);
  EXPECT_EQ(open_flags_from_wire(kOpenRdonly | kOpenDirectory | kOpenNofollow),
            O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  EXPECT_EQ(open_flags_from_wire(kOpenRdwr | kOpenAppend | kOpenNonblock | kOpenNoatime),
            O_RDWR | O_APPEND | O_NONBLOCK | O_NOATIME);
}
#endif

// ---------------------------------------------------------------------------------------------
// File mode

TEST(CanonicalMode, EveryTypeWithPermissionBitsRoundTrips) {
  const uint32_t permissions[] = {0, 0644, 0755, 0600, 04755, 02750, 01777, 07777};
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const ValueMapping& row : mode_type_table(os)) {
      for (uint32_t permission : permissions) {
        const uint32_t canonical_mode = row.canonical | permission;
        const uint32_t native_mode = row.native | permission;
        EXPECT_EQ(mode_from_wire(canonical_mode, os), native_mode);
        EXPECT_EQ(mode_to_wire(native_mode, os), canonical_mode);
        EXPECT_EQ(mode_to_wire(mode_from_wire(canonical_mode, os), os), canonical_mode);
      }
    }
  }
}

TEST(CanonicalMode, CanonicalLayout) {
  EXPECT_EQ(kModeTypeMask, 0170000u);
  EXPECT_EQ(kModeRegular, 0100000u);
  EXPECT_EQ(kModeDirectory, 0040000u);
  EXPECT_EQ(kModeSymlink, 0120000u);
  EXPECT_EQ(kModeCharDevice, 0020000u);
  EXPECT_EQ(kModeBlockDevice, 0060000u);
  EXPECT_EQ(kModeFifo, 0010000u);
  EXPECT_EQ(kModeSocket, 0140000u);
  EXPECT_EQ(kModePermissionMask, 07777u);
}

TEST(CanonicalMode, UnknownTypeLosesOnlyTheType) {
  // FreeBSD S_IFWHT (0160000) has no canonical type.
  EXPECT_EQ(mode_to_wire(0160000 | 0644, Os::kFreeBsd), 0644u);
  EXPECT_EQ(mode_from_wire(0160000 | 0755, Os::kLinux), 0755u);
}

#if defined(__linux__)
TEST(CanonicalMode, MatchesLinuxHeaders) {
  EXPECT_EQ(mode_from_wire(kModeDirectory | 0755), static_cast<uint32_t>(S_IFDIR | 0755));
  EXPECT_EQ(mode_to_wire(S_IFLNK | 0777), kModeSymlink | 0777);
}
#endif

// ---------------------------------------------------------------------------------------------
// Directory entry type

TEST(CanonicalDirentType, EveryTypeRoundTrips) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const ValueMapping& row : dirent_type_table(os)) {
      EXPECT_EQ(dirent_type_from_wire(static_cast<uint8_t>(row.canonical), os), row.native);
      EXPECT_EQ(dirent_type_to_wire(row.native, os), row.canonical);
    }
    EXPECT_EQ(dirent_type_to_wire(14, os), kDirentUnknown);  // DT_WHT
    EXPECT_EQ(dirent_type_to_wire(255, os), kDirentUnknown);
    EXPECT_EQ(dirent_type_from_wire(3, os), 0u);
    EXPECT_EQ(dirent_type_from_wire(200, os), 0u);
  }
#if defined(__linux__)
  EXPECT_EQ(dirent_type_to_wire(DT_DIR), kDirentDirectory);
  EXPECT_EQ(dirent_type_from_wire(kDirentSymlink), static_cast<unsigned>(DT_LNK));
#endif
}

// ---------------------------------------------------------------------------------------------
// Devices

const Device kDevices[] = {
    {0, 0},
    {8, 1},
    {259, 65537},
    {4095, 1048575},
    {4096, 1048576},
    {255, 255},
    {256, 256},
    {0x12345678, 0x9abcdef0},
    {0xffffffff, 0},
    {0, 0xffffffff},
    {0xffffffff, 0xffffffff},
};

TEST(CanonicalDevice, RoundTripsOnBothEncodings) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const Device& device : kDevices) {
      const Device back = device_to_wire(device_from_wire(device, os), os);
      EXPECT_EQ(back.major, device.major) << device.major << ":" << device.minor;
      EXPECT_EQ(back.minor, device.minor) << device.major << ":" << device.minor;
    }
    // Both encodings use all 64 bits, so any native value round-trips too.
    for (uint64_t native : {0ull, 0x0123456789abcdefull, 0xfedcba9876543210ull, ~0ull}) {
      EXPECT_EQ(device_from_wire(device_to_wire(native, os), os), native);
    }
  }
}

TEST(CanonicalDevice, KnownEncodings) {
  // glibc gnu_dev_makedev(259, 65537).
  EXPECT_EQ(device_from_wire({259, 65537}, Os::kLinux), 0x10010301ull);
  EXPECT_EQ(device_from_wire({8, 1}, Os::kLinux), 0x801ull);
  // FreeBSD makedev(0x12345678, 0x9abcdef0) from sys/sys/types.h.
  EXPECT_EQ(device_from_wire({0x12345678, 0x9abcdef0}, Os::kFreeBsd), 0x123456de9abc78f0ull);
  const Device freebsd = device_to_wire(0x123456de9abc78f0ull, Os::kFreeBsd);
  EXPECT_EQ(freebsd.major, 0x12345678u);
  EXPECT_EQ(freebsd.minor, 0x9abcdef0u);
}

#if defined(__linux__)
TEST(CanonicalDevice, MatchesGlibcMacros) {
  for (const Device& device : kDevices) {
    const dev_t native = makedev(device.major, device.minor);
    EXPECT_EQ(device_from_wire(device), static_cast<uint64_t>(native));
    const Device back = device_to_wire(native);
    EXPECT_EQ(back.major, major(native));
    EXPECT_EQ(back.minor, minor(native));
  }
}
#endif

// ---------------------------------------------------------------------------------------------
// Lock types and whence

TEST(CanonicalLockType, TranslatesBothOs) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const ValueMapping& row : lock_type_table(os)) {
      EXPECT_EQ(lock_type_to_wire(static_cast<int>(row.native), os), row.canonical);
      EXPECT_EQ(lock_type_from_wire(row.canonical, os), static_cast<int>(row.native));
    }
    EXPECT_EQ(lock_type_from_wire(3, os), -1);
    EXPECT_EQ(lock_type_from_wire(kLockUnknown, os), -1);
    EXPECT_EQ(lock_type_to_wire(-1, os), kLockUnknown);
  }
  EXPECT_EQ(lock_type_from_wire(kLockRead, Os::kLinux), 0);
  EXPECT_EQ(lock_type_from_wire(kLockWrite, Os::kLinux), 1);
  EXPECT_EQ(lock_type_from_wire(kLockUnlock, Os::kLinux), 2);
  EXPECT_EQ(lock_type_from_wire(kLockRead, Os::kFreeBsd), 1);
  EXPECT_EQ(lock_type_from_wire(kLockUnlock, Os::kFreeBsd), 2);
  EXPECT_EQ(lock_type_from_wire(kLockWrite, Os::kFreeBsd), 3);
  EXPECT_EQ(lock_type_to_wire(3, Os::kLinux), kLockUnknown);
  EXPECT_EQ(lock_type_to_wire(0, Os::kFreeBsd), kLockUnknown);
  EXPECT_EQ(lock_type_to_wire(4, Os::kFreeBsd), kLockUnknown);  // F_UNLCKSYS
#if defined(__linux__)
  EXPECT_EQ(lock_type_to_wire(F_WRLCK), kLockWrite);
  EXPECT_EQ(lock_type_from_wire(kLockUnlock), F_UNLCK);
#endif
}

TEST(CanonicalWhence, TranslatesBothOs) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const ValueMapping& row : whence_table(os)) {
      EXPECT_EQ(whence_to_wire(static_cast<int>(row.native), os), row.canonical);
      EXPECT_EQ(whence_from_wire(row.canonical, os), static_cast<int>(row.native));
    }
    EXPECT_EQ(whence_from_wire(5, os), -1);
    EXPECT_EQ(whence_to_wire(5, os), kWhenceUnknown);
    EXPECT_EQ(whence_to_wire(-1, os), kWhenceUnknown);
  }
  EXPECT_EQ(kWhenceData, 3u);
  EXPECT_EQ(kWhenceHole, 4u);
}

// ---------------------------------------------------------------------------------------------
// Strict bit sets

TEST(CanonicalBitSets, LinuxRoundTripsEveryCombination) {
  const Os lnx = Os::kLinux;
  for (uint32_t flags = 0; flags <= (kRenameNoreplace | kRenameExchange); ++flags) {
    EXPECT_EQ(rename_flags_to_wire(rename_flags_from_wire(flags, lnx), lnx), flags);
  }
  for (uint32_t flags = 0; flags <= (kXattrCreate | kXattrReplace); ++flags) {
    EXPECT_EQ(xattr_flags_to_wire(xattr_flags_from_wire(flags, lnx), lnx), flags);
  }
  for (uint32_t mask = 0; mask <= (kAccessRead | kAccessWrite | kAccessExecute); ++mask) {
    EXPECT_EQ(access_mask_to_wire(access_mask_from_wire(mask, lnx), lnx), mask);
  }
  for (uint32_t mode = 0; mode <= (kFallocKeepSize | kFallocPunchHole); ++mode) {
    EXPECT_EQ(fallocate_mode_to_wire(fallocate_mode_from_wire(mode, lnx), lnx), mode);
  }
  EXPECT_EQ(rename_flags_from_wire(kRenameNoreplace, lnx), 1);
  EXPECT_EQ(rename_flags_from_wire(kRenameExchange, lnx), 2);
  EXPECT_EQ(xattr_flags_from_wire(kXattrCreate, lnx), 1);
  EXPECT_EQ(xattr_flags_from_wire(kXattrReplace, lnx), 2);
  EXPECT_EQ(access_mask_from_wire(kAccessRead | kAccessWrite, lnx), 6);
  EXPECT_EQ(access_mask_from_wire(kAccessExists, lnx), 0);
  EXPECT_EQ(fallocate_mode_from_wire(kFallocKeepSize | kFallocPunchHole, lnx), 3);
}

TEST(CanonicalBitSets, UnexpressibleWireBitsAreRejected) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    EXPECT_EQ(rename_flags_from_wire(1u << 5, os), -1);
    EXPECT_EQ(xattr_flags_from_wire(1u << 5, os), -1);
    EXPECT_EQ(access_mask_from_wire(8, os), -1);
    EXPECT_EQ(fallocate_mode_from_wire(1u << 5, os), -1);
    // The empty set is always expressible.
    EXPECT_EQ(rename_flags_from_wire(0, os), 0);
    EXPECT_EQ(xattr_flags_from_wire(0, os), 0);
    EXPECT_EQ(fallocate_mode_from_wire(0, os), 0);
  }
  // FreeBSD cannot express these, so a request carrying them must fail rather than, e.g.,
  // overwrite a target that kRenameNoreplace protected.
  EXPECT_EQ(rename_flags_from_wire(kRenameNoreplace, Os::kFreeBsd), -1);
  EXPECT_EQ(xattr_flags_from_wire(kXattrCreate, Os::kFreeBsd), -1);
  EXPECT_EQ(fallocate_mode_from_wire(kFallocPunchHole, Os::kFreeBsd), -1);
  EXPECT_EQ(access_mask_from_wire(kAccessRead | kAccessExecute, Os::kFreeBsd), 0x05);
}

TEST(CanonicalBitSets, UnknownNativeBitsAreDropped) {
  EXPECT_EQ(rename_flags_to_wire(1 | 4, Os::kLinux), kRenameNoreplace);  // RENAME_WHITEOUT
  EXPECT_EQ(fallocate_mode_to_wire(0x02 | 0x10, Os::kLinux), kFallocPunchHole);
  EXPECT_EQ(rename_flags_to_wire(1, Os::kFreeBsd), 0u);
}

}  // namespace
}  // namespace fsout::canonical
