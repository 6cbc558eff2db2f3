# What `cmake --install` puts where (GNUInstallDirs), and the Debian package (CPack DEB,
# scripts/build-deb.sh). With the prefix /usr: programs in /usr/bin and /usr/sbin,
# mount.fsout beside fsoutd (Debian's /sbin is /usr/sbin, where mount(8) looks), units in
# /usr/lib/systemd/system, the configuration in /etc/fsout, examples in
# /usr/share/doc/fsout/examples. The man pages are installed by docs/man.
include(GNUInstallDirs)

install(TARGETS fsout fsout-mount RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(NOT FSOUT_HOST)
  return()
endif()
install(TARGETS fsoutd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
# mount(8) runs /sbin/mount.TYPE for fstab lines of type fsout.
file(RELATIVE_PATH FSOUT_MOUNT_TARGET ${CMAKE_INSTALL_FULL_SBINDIR}
     ${CMAKE_INSTALL_FULL_BINDIR}/fsout-mount)
install(CODE "
  file(MAKE_DIRECTORY \"\$ENV{DESTDIR}${CMAKE_INSTALL_FULL_SBINDIR}\")
  file(CREATE_LINK \"${FSOUT_MOUNT_TARGET}\"
       \"\$ENV{DESTDIR}${CMAKE_INSTALL_FULL_SBINDIR}/mount.fsout\" SYMBOLIC)")

# The units name the installed programs and configuration.
set(SBINDIR ${CMAKE_INSTALL_FULL_SBINDIR})
set(SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR})
file(READ ${PROJECT_SOURCE_DIR}/dist/systemd/sandboxing.conf FSOUT_UNIT_SANDBOXING)
string(STRIP "${FSOUT_UNIT_SANDBOXING}" FSOUT_UNIT_SANDBOXING)
# lib/systemd/system under the prefix (not LIBDIR: on Debian that is lib/x86_64-linux-gnu).
set(FSOUT_UNIT_DIR lib/systemd/system CACHE STRING "Where systemd units are installed")
foreach(unit fsoutd.service fsoutd@.service fsoutd@.socket)
  configure_file(${PROJECT_SOURCE_DIR}/dist/systemd/${unit} ${CMAKE_BINARY_DIR}/systemd/${unit} @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/systemd/${unit} DESTINATION ${FSOUT_UNIT_DIR})
endforeach()

install(FILES dist/config/fsoutd.conf DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/fsout)
install(DIRECTORY DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/fsout/exports.d)

set(FSOUT_EXAMPLES ${CMAKE_INSTALL_DOCDIR}/examples)
install(DIRECTORY dist/guest dist/libvirt DESTINATION ${FSOUT_EXAMPLES}
        USE_SOURCE_PERMISSIONS)
install(FILES README.md docs/ARCHITECTURE.md docs/PROTOCOL.md docs/operations.md docs/vm.md
              docs/freebsd.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Debian's place for what the package is and may be used for, and its history
# (compressed, as Debian wants it).
install(FILES dist/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
find_program(GZIP gzip REQUIRED)
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/changelog.gz
  COMMAND ${GZIP} -9n -c ${PROJECT_SOURCE_DIR}/dist/debian/changelog > ${CMAKE_BINARY_DIR}/changelog.gz
  DEPENDS ${PROJECT_SOURCE_DIR}/dist/debian/changelog
  VERBATIM)
add_custom_target(changelog ALL DEPENDS ${CMAKE_BINARY_DIR}/changelog.gz)
install(FILES ${CMAKE_BINARY_DIR}/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES dist/debian/lintian-overrides DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides
        RENAME fsout)

# The Debian package: `bash scripts/build-deb.sh`.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME fsout)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
# The project has no list address yet: a placeholder of the reserved example.org domain
# (and dist/debian/changelog's), until there is one.
set(FSOUT_MAINTAINER "fsout developers <fsout-dev@example.org>"
    CACHE STRING "The Debian package's Maintainer field")
set(CPACK_PACKAGE_CONTACT "${FSOUT_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "host directories in virtual machines, over any byte stream")
# The extended description (CPack puts the summary above it); lines under 80 columns.
string(CONCAT CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "fsout mounts a host directory inside a guest (Linux or FreeBSD): every\n"
    "VFS request goes as one RPC over virtio-serial, vsock, a unix socket or\n"
    "TCP to fsoutd on the host, which performs it on the host's file system,\n"
    "confined to its export. Includes fsoutd (host daemon, systemd units),\n"
    "fsout-mount (FUSE mount, mount.fsout) and fsout.")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Libraries from what the programs link (dpkg-shlibdeps); fuse3 for fusermount3 and the
# FUSE device's setup.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libvirt-daemon-system, qemu-system-x86")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/dist/debian/conffiles ${PROJECT_SOURCE_DIR}/dist/debian/postinst
    ${PROJECT_SOURCE_DIR}/dist/debian/prerm ${PROJECT_SOURCE_DIR}/dist/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
