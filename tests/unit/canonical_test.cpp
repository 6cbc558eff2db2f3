#include "protocol/canonical.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
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

TEST(CanonicalErrno, EveryCanonicalValueRoundTripsOrIsRefused) {
  // The Linux table lists every canonical errno, since the canonical numbering is Linux's.
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (const ErrnoMapping& canonical_row : kLinuxErrnoTable) {
      const uint32_t value = wire(canonical_row.canonical);
      const std::optional<int> native = errno_from_wire(value, os);
      bool in_table = false;
      for (const ErrnoMapping& row : errno_table(os))
        in_table |= row.canonical == canonical_row.canonical;
      if (in_table) {
        ASSERT_TRUE(native.has_value()) << value;
        EXPECT_EQ(errno_to_wire(*native, os), value);
      } else {
        EXPECT_FALSE(native.has_value()) << "canonical " << value << " has no native errno";
      }
    }
  }
}

TEST(CanonicalErrno, NoAttributeIsTheTablesNoattr) {
  EXPECT_EQ(no_attribute_errno(Os::kLinux), 61);    // ENODATA
  EXPECT_EQ(no_attribute_errno(Os::kFreeBsd), 87);  // ENOATTR
  for (Os os : kBothOs) EXPECT_EQ(errno_to_wire(no_attribute_errno(os), os), wire(Errno::kNoattr));
#if defined(__linux__)
  EXPECT_EQ(no_attribute_errno(), ENODATA);
#endif
}

TEST(CanonicalErrno, SuccessStaysZero) {
  for (Os os : kBothOs) {
    EXPECT_EQ(errno_to_wire(0, os), 0u);
    EXPECT_EQ(errno_from_wire(0, os), 0);
  }
}

TEST(CanonicalErrno, UnknownNativeIsRefused) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (int native : {-1, -5, 134, 200, 255, 256, 100000}) {
      EXPECT_EQ(errno_to_wire(native, os), std::nullopt) << native;
    }
  }
  // Numbers Linux leaves unused (41 and 58 are only aliases' old slots).
  EXPECT_EQ(errno_to_wire(41, Os::kLinux), std::nullopt);
  EXPECT_EQ(errno_to_wire(58, Os::kLinux), std::nullopt);
  // FreeBSD-only errors: EPROCLIM 67, EFTYPE 79, EAUTH 80, EDOOFUS 88, ENOTCAPABLE 93,
  // ECAPMODE 94, and 98 (beyond ELAST).
  for (int native : {67, 72, 76, 79, 80, 81, 88, 93, 94, 98}) {
    EXPECT_EQ(errno_to_wire(native, Os::kFreeBsd), std::nullopt) << native;
  }
}

TEST(CanonicalErrno, UnknownWireIsRefused) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (uint32_t value : {41u, 58u, 134u, 255u, 256u, 70000u, 0xffffffffu}) {
      EXPECT_EQ(errno_from_wire(value, os), std::nullopt) << value;
    }
  }
  // Linux-only errors have no FreeBSD number.
  EXPECT_EQ(errno_from_wire(wire(Errno::kNokey), Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(errno_from_wire(wire(Errno::kNomedium), Os::kFreeBsd), std::nullopt);
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
        const std::optional<int> native = open_flags_from_wire(wire_flags, os);
        ASSERT_TRUE(native.has_value()) << "wire 0x" << std::hex << wire_flags;
        ASSERT_EQ(open_flags_to_wire(*native, os), normalized(wire_flags))
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
  // FreeBSD has no O_NOATIME: refused. Every fsout file is large-file capable, so
  // kOpenLargefile asks for nothing there.
  EXPECT_EQ(open_flags_from_wire(kOpenRdonly | kOpenNoatime, bsd), std::nullopt);
  EXPECT_EQ(open_flags_from_wire(kOpenRdonly | kOpenLargefile, bsd), 0);
  // O_SHLOCK 0x10, O_EXLOCK 0x20, O_EXEC 0x40000 are the guest kernel's business: not sent.
  EXPECT_EQ(open_flags_to_wire(0x0010 | 0x0020 | 0x00040000, bsd), kOpenRdonly);
  // O_PATH 0x400000 has no canonical bit: refused.
  EXPECT_EQ(open_flags_to_wire(0x00400000, bsd), std::nullopt);
}

TEST(CanonicalOpenFlags, LinuxSyncContainsDsync) {
  const Os lnx = Os::kLinux;
  EXPECT_EQ(open_flags_to_wire(04010000, lnx), kOpenSync | kOpenDsync);
  EXPECT_EQ(open_flags_to_wire(010000, lnx), kOpenDsync);
  EXPECT_EQ(open_flags_from_wire(kOpenSync, lnx), 04010000);
  EXPECT_EQ(open_flags_from_wire(kOpenSync | kOpenDsync, lnx), 04010000);
  EXPECT_EQ(open_flags_from_wire(kOpenDsync, lnx), 010000);
  // A FreeBSD O_SYNC open reaches a Linux host as O_SYNC.
  EXPECT_EQ(open_flags_from_wire(*open_flags_to_wire(0x0080, Os::kFreeBsd), lnx), 04010000);
}

TEST(CanonicalOpenFlags, UnknownBitsAreRefusedAccessModeThreeOnlyOnLinux) {
  // Access mode 3 (Linux: ioctl only) is carried where it exists and refused elsewhere,
  // never read as another mode.
  EXPECT_EQ(open_flags_to_wire(3, Os::kLinux), kOpenNoAccess);
  EXPECT_EQ(open_flags_from_wire(kOpenNoAccess, Os::kLinux), 3);
  EXPECT_EQ(open_flags_to_wire(3, Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(open_flags_from_wire(kOpenNoAccess, Os::kFreeBsd), std::nullopt);
  for (Os os : kBothOs) {
    // Canonical bits nobody defines yet are refused.
    EXPECT_EQ(open_flags_from_wire(kOpenRdwr | (1u << 30), os), std::nullopt);
  }
  // Linux O_PATH 010000000 and __O_TMPFILE 020000000 have no canonical bit.
  EXPECT_EQ(open_flags_to_wire(010000000 | 02, Os::kLinux), std::nullopt);
  EXPECT_EQ(open_flags_to_wire(020000000 | 02, Os::kLinux), std::nullopt);
  // An exec open (__FMODE_EXEC) and O_ASYNC are the guest kernel's: accepted, not sent.
  EXPECT_EQ(open_flags_to_wire(040 | 020000 | 0100000, Os::kLinux), kOpenLargefile);
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
        EXPECT_EQ(mode_to_wire(*mode_from_wire(canonical_mode, os), os), canonical_mode);
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

TEST(CanonicalMode, UnknownTypeOrBitsAreRefused) {
  // FreeBSD S_IFWHT (0160000) has no canonical type.
  EXPECT_EQ(mode_to_wire(0160000 | 0644, Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(mode_from_wire(0160000 | 0755, Os::kLinux), std::nullopt);
  for (Os os : kBothOs) {
    // No type (a chmod's mode) is expressible; bits above the type are not.
    EXPECT_EQ(mode_to_wire(0644, os), 0644u);
    EXPECT_EQ(mode_from_wire(0644, os), 0644u);
    EXPECT_EQ(mode_to_wire(0200000 | 0644, os), std::nullopt);
    EXPECT_EQ(mode_from_wire(kModeRegular | 0400000, os), std::nullopt);
  }
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
    EXPECT_EQ(dirent_type_to_wire(14, os), std::nullopt);  // DT_WHT
    EXPECT_EQ(dirent_type_to_wire(255, os), std::nullopt);
    EXPECT_EQ(dirent_type_from_wire(3, os), std::nullopt);
    EXPECT_EQ(dirent_type_from_wire(200, os), std::nullopt);
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
    EXPECT_EQ(lock_type_from_wire(3, os), std::nullopt);
    EXPECT_EQ(lock_type_from_wire(0xffffffff, os), std::nullopt);
    EXPECT_EQ(lock_type_to_wire(-1, os), std::nullopt);
  }
  EXPECT_EQ(lock_type_from_wire(kLockRead, Os::kLinux), 0);
  EXPECT_EQ(lock_type_from_wire(kLockWrite, Os::kLinux), 1);
  EXPECT_EQ(lock_type_from_wire(kLockUnlock, Os::kLinux), 2);
  EXPECT_EQ(lock_type_from_wire(kLockRead, Os::kFreeBsd), 1);
  EXPECT_EQ(lock_type_from_wire(kLockUnlock, Os::kFreeBsd), 2);
  EXPECT_EQ(lock_type_from_wire(kLockWrite, Os::kFreeBsd), 3);
  EXPECT_EQ(lock_type_to_wire(3, Os::kLinux), std::nullopt);
  EXPECT_EQ(lock_type_to_wire(0, Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(lock_type_to_wire(4, Os::kFreeBsd), std::nullopt);  // F_UNLCKSYS
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
    EXPECT_EQ(whence_from_wire(5, os), std::nullopt);
    EXPECT_EQ(whence_to_wire(5, os), std::nullopt);
    EXPECT_EQ(whence_to_wire(-1, os), std::nullopt);
  }
  EXPECT_EQ(kWhenceData, 3u);
  EXPECT_EQ(kWhenceHole, 4u);
}

// ---------------------------------------------------------------------------------------------
// Strict bit sets

TEST(CanonicalBitSets, LinuxRoundTripsEveryCombination) {
  const Os lnx = Os::kLinux;
  for (uint32_t flags = 0; flags <= (kRenameNoreplace | kRenameExchange | kRenameWhiteout);
       ++flags) {
    EXPECT_EQ(rename_flags_to_wire(*rename_flags_from_wire(flags, lnx), lnx), flags);
  }
  for (uint32_t flags = 0; flags <= (kXattrCreate | kXattrReplace); ++flags) {
    EXPECT_EQ(xattr_flags_to_wire(*xattr_flags_from_wire(flags, lnx), lnx), flags);
  }
  for (uint32_t mask = 0; mask <= (kAccessRead | kAccessWrite | kAccessExecute); ++mask) {
    EXPECT_EQ(access_mask_to_wire(*access_mask_from_wire(mask, lnx), lnx), mask);
  }
  for (uint32_t mode = 0; mode < 64; ++mode) {
    EXPECT_EQ(fallocate_mode_to_wire(*fallocate_mode_from_wire(mode, lnx), lnx), mode);
  }
  EXPECT_EQ(rename_flags_from_wire(kRenameNoreplace, lnx), 1);
  EXPECT_EQ(rename_flags_from_wire(kRenameExchange, lnx), 2);
  EXPECT_EQ(rename_flags_from_wire(kRenameWhiteout, lnx), 4);
  EXPECT_EQ(xattr_flags_from_wire(kXattrCreate, lnx), 1);
  EXPECT_EQ(xattr_flags_from_wire(kXattrReplace, lnx), 2);
  EXPECT_EQ(access_mask_from_wire(kAccessRead | kAccessWrite, lnx), 6);
  EXPECT_EQ(access_mask_from_wire(kAccessExists, lnx), 0);
  EXPECT_EQ(fallocate_mode_from_wire(kFallocKeepSize | kFallocPunchHole, lnx), 3);
  EXPECT_EQ(fallocate_mode_from_wire(kFallocZeroRange, lnx), 0x10);
  EXPECT_EQ(fallocate_mode_from_wire(kFallocZeroRange | kFallocKeepSize, lnx), 0x11);
}

TEST(CanonicalBitSets, UnexpressibleWireBitsAreRefused) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    EXPECT_EQ(rename_flags_from_wire(1u << 5, os), std::nullopt);
    EXPECT_EQ(xattr_flags_from_wire(1u << 5, os), std::nullopt);
    EXPECT_EQ(access_mask_from_wire(8, os), std::nullopt);
    EXPECT_EQ(fallocate_mode_from_wire(1u << 6, os), std::nullopt);
    // The empty set is always expressible.
    EXPECT_EQ(rename_flags_from_wire(0, os), 0);
    EXPECT_EQ(xattr_flags_from_wire(0, os), 0);
    EXPECT_EQ(fallocate_mode_from_wire(0, os), 0);
  }
  // FreeBSD cannot express these, so a request carrying them must fail rather than, e.g.,
  // overwrite a target that kRenameNoreplace protected.
  EXPECT_EQ(rename_flags_from_wire(kRenameNoreplace, Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(xattr_flags_from_wire(kXattrCreate, Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(fallocate_mode_from_wire(kFallocPunchHole, Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(access_mask_from_wire(kAccessRead | kAccessExecute, Os::kFreeBsd), 0x05);
}

TEST(CanonicalBitSets, UnknownNativeBitsAreRefusedNotDropped) {
  // The defect this guards against: FALLOC_FL_ZERO_RANGE and RENAME_WHITEOUT were dropped, so
  // the host did a plain allocation / a plain rename and the program was told it worked.
  EXPECT_EQ(rename_flags_to_wire(1 | 4, Os::kLinux), kRenameNoreplace | kRenameWhiteout);
  EXPECT_EQ(fallocate_mode_to_wire(0x02 | 0x10, Os::kLinux), kFallocPunchHole | kFallocZeroRange);
  EXPECT_EQ(fallocate_mode_to_wire(0x04, Os::kLinux), std::nullopt);  // NO_HIDE_STALE
  EXPECT_EQ(rename_flags_to_wire(8, Os::kLinux), std::nullopt);
  EXPECT_EQ(rename_flags_to_wire(1, Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(xattr_flags_to_wire(4, Os::kLinux), std::nullopt);
  EXPECT_EQ(access_mask_to_wire(8, Os::kLinux), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Every native bit (all 32) of every bit-set table, and every native value of a range around
// every value table, is either carried and comes back the same, or refused; a canonical bit
// likewise. "Carried" means from_wire(to_wire(x)) == x, so nothing is dropped on the way.

using ToWire = std::optional<uint32_t> (*)(int, Os);
using FromWire = std::optional<int> (*)(uint32_t, Os);

struct BitSetTable {
  const char* name;
  ToWire to_wire;
  FromWire from_wire;
  uint32_t guest_only[2];  // native bits accepted and not sent, per Os (Linux, FreeBSD)
};

const BitSetTable kBitSetTables[] = {
    {"open flags",
     open_flags_to_wire,
     open_flags_from_wire,
     {kLinuxOpenGuestOnlyFlags, kFreeBsdOpenGuestOnlyFlags}},
    {"rename flags", rename_flags_to_wire, rename_flags_from_wire, {0, 0}},
    {"xattr flags", xattr_flags_to_wire, xattr_flags_from_wire, {0, 0}},
    {"access mask", access_mask_to_wire, access_mask_from_wire, {0, 0}},
    {"fallocate mode", fallocate_mode_to_wire, fallocate_mode_from_wire, {0, 0}},
};

TEST(CanonicalXattrNames, LinuxNamesCrossUnchanged) {
  for (const char* name : {"user.a", "trusted.x", "security.selinux", "system.posix_acl_access"}) {
    EXPECT_EQ(xattr_name_to_wire(name, Os::kLinux), name);
    EXPECT_EQ(xattr_name_from_wire(name, Os::kLinux), name);
  }
  EXPECT_FALSE(xattr_names_mapped(Os::kLinux));
}

TEST(CanonicalXattrNames, FreeBsdSystemNamespaceIsTrusted) {
  EXPECT_TRUE(xattr_names_mapped(Os::kFreeBsd));
  EXPECT_EQ(xattr_name_to_wire("user.mime", Os::kFreeBsd), "user.mime");
  EXPECT_EQ(xattr_name_to_wire("system.tag", Os::kFreeBsd), "trusted.tag");
  EXPECT_EQ(xattr_name_from_wire("user.mime", Os::kFreeBsd), "user.mime");
  EXPECT_EQ(xattr_name_from_wire("trusted.tag", Os::kFreeBsd), "system.tag");
  // No FreeBSD form: refused, never passed on under another meaning.
  EXPECT_EQ(xattr_name_from_wire("security.selinux", Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(xattr_name_from_wire("system.posix_acl_access", Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(xattr_name_to_wire("trusted.x", Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(xattr_name_to_wire("security.x", Os::kFreeBsd), std::nullopt);
  EXPECT_EQ(xattr_name_to_wire("user.", Os::kFreeBsd), std::nullopt);  // no name after it
  EXPECT_EQ(xattr_name_to_wire("usera", Os::kFreeBsd), std::nullopt);
  // Every name that crosses comes back as it went.
  for (const char* name : {"user.a", "system.b", "user.system.c", "system.user.d"}) {
    auto wire = xattr_name_to_wire(name, Os::kFreeBsd);
    ASSERT_TRUE(wire) << name;
    EXPECT_EQ(xattr_name_from_wire(*wire, Os::kFreeBsd), name);
  }
}

TEST(CanonicalLossless, EveryNativeBitIsCarriedOrRefused) {
  for (const BitSetTable& table : kBitSetTables) {
    for (Os os : kBothOs) {
      SCOPED_TRACE(std::string(table.name) + ", " + os_name(os));
      const uint32_t guest_only = table.guest_only[os == Os::kFreeBsd ? 1 : 0];
      for (int bit = 0; bit < 32; ++bit) {
        const uint32_t native = 1u << bit;
        const std::optional<uint32_t> wire = table.to_wire(int(native), os);
        if (!wire) continue;  // refused: the caller answers an error and sends nothing
        const std::optional<int> back = table.from_wire(*wire, os);
        ASSERT_TRUE(back.has_value()) << "bit " << bit << " went out but cannot come back";
        if ((native & guest_only) != 0) {
          EXPECT_EQ(*wire, 0u) << "guest-only bit " << bit << " must not be sent";
        } else {
          EXPECT_EQ(uint32_t(*back), native) << "bit " << bit << " changed on the way";
        }
      }
      // And combinations with the access mode kept (open flags' low bits are a value).
      for (int bit = 0; bit < 32; ++bit) {
        const uint32_t native = (1u << bit) | 02;
        const std::optional<uint32_t> wire = table.to_wire(int(native), os);
        if (!wire || (native & guest_only) != 0) continue;
        EXPECT_EQ(uint32_t(*table.from_wire(*wire, os)), native) << "bit " << bit << " | 2";
      }
    }
  }
}

TEST(CanonicalLossless, EveryCanonicalBitIsExpressedOrRefused) {
  for (const BitSetTable& table : kBitSetTables) {
    for (Os os : kBothOs) {
      SCOPED_TRACE(std::string(table.name) + ", " + os_name(os));
      for (int bit = 0; bit < 32; ++bit) {
        const uint32_t wire = 1u << bit;
        const std::optional<int> native = table.from_wire(wire, os);
        if (!native) continue;
        const std::optional<uint32_t> again = table.to_wire(*native, os);
        ASSERT_TRUE(again.has_value()) << "canonical bit " << bit;
        // Linux O_SYNC carries O_DSYNC's bit, so kOpenSync comes back with kOpenDsync.
        const uint32_t expected = wire == kOpenSync && table.to_wire == open_flags_to_wire
                                      ? (kOpenSync | kOpenDsync)
                                      : wire;
        // kOpenLargefile has no native bit on FreeBSD: it asks for nothing there.
        if (table.to_wire == open_flags_to_wire && wire == kOpenLargefile && os == Os::kFreeBsd)
          EXPECT_EQ(*again, 0u);
        else
          EXPECT_EQ(*again, expected) << "canonical bit " << bit;
      }
    }
  }
}

TEST(CanonicalLossless, EveryTableBitIsCarried) {
  // The other direction of the first test: a bit with a row is never refused.
  for (Os os : kBothOs) {
    for (const ValueMapping& row : open_flag_table(os))
      EXPECT_TRUE(open_flags_to_wire(int(row.native), os).has_value()) << row.native;
  }
  for (const ValueMapping& row : kLinuxRenameFlagTable)
    EXPECT_TRUE(rename_flags_to_wire(int(row.native), Os::kLinux).has_value());
  for (const ValueMapping& row : kLinuxXattrFlagTable)
    EXPECT_TRUE(xattr_flags_to_wire(int(row.native), Os::kLinux).has_value());
  for (const ValueMapping& row : kLinuxAccessMaskTable)
    EXPECT_TRUE(access_mask_to_wire(int(row.native), Os::kLinux).has_value());
  for (const ValueMapping& row : kLinuxFallocateModeTable)
    EXPECT_TRUE(fallocate_mode_to_wire(int(row.native), Os::kLinux).has_value());
}

TEST(CanonicalLossless, EveryValueIsCarriedOrRefused) {
  for (Os os : kBothOs) {
    SCOPED_TRACE(os_name(os));
    for (int native = -2; native < 300; ++native) {
      if (auto wire = lock_type_to_wire(native, os)) {
        EXPECT_EQ(lock_type_from_wire(*wire, os), native);
      }
      if (auto wire = whence_to_wire(native, os)) {
        EXPECT_EQ(whence_from_wire(*wire, os), native);
      }
      if (native >= 0) {
        if (auto wire = dirent_type_to_wire(unsigned(native), os)) {
          EXPECT_EQ(dirent_type_from_wire(*wire, os), unsigned(native));
        }
        if (auto wire = errno_to_wire(native, os)) {
          EXPECT_EQ(errno_from_wire(*wire, os), native);
        }
      }
    }
    // Modes: every type slot with some permissions, and every bit above them.
    for (uint32_t type = 0; type <= 017; ++type) {
      for (uint32_t permission : {0u, 0644u, 07777u}) {
        const uint32_t native = (type << 12) | permission;
        if (auto wire = mode_to_wire(native, os)) {
          EXPECT_EQ(mode_from_wire(*wire, os), native);
        }
      }
    }
    for (int bit = 16; bit < 32; ++bit) {
      EXPECT_EQ(mode_to_wire(kModeRegular | (1u << bit), os), std::nullopt) << bit;
      EXPECT_EQ(mode_from_wire(kModeRegular | (1u << bit), os), std::nullopt) << bit;
    }
  }
}

}  // namespace
}  // namespace fsout::canonical
