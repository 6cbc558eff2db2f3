#!/usr/bin/env bash
# Installs what fsout needs to build and test on Debian 12, and nothing when
# it is all there already (apt-get update runs only if something is missing).
set -euo pipefail
packages=(g++ cmake ninja-build pkg-config libfuse3-dev fuse3 libcap-ng-dev libseccomp-dev libgtest-dev clang libclang-rt-14-dev qemu-system-x86 busybox-static kmod git
  # the FreeBSD guest test: cross-building with the kit and making its ISO (../shared/freebsd)
  clang-14 lld-14 grub-pc-bin grub-common xorriso mtools
  # operations: logging and the admin JSON, man pages and their test, the dist test (libvirt
  # schema, systemd-analyze), the package (dpkg-shlibdeps, file, lintian)
  libspdlog-dev nlohmann-json3-dev scdoc man-db groff-base bsdextrautils libvirt-clients systemd dash shellcheck dpkg-dev file jq procps lintian)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z "${FSOUT_APT_UPDATED:-}" ]]; then apt-get update -qq; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# FUSE needs its device; in a fresh container the module may need loading.
if [[ ! -e /dev/fuse ]]; then
  modprobe fuse 2>/dev/null || true
fi
[[ -e /dev/fuse ]] || { echo "install-deps: /dev/fuse is missing: FUSE mounts cannot work here" >&2; exit 1; }
