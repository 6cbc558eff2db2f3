#!/usr/bin/env bash
# Builds the Debian package: bash scripts/build-deb.sh [OUTPUT-DIR]
# (a build of its own in build-deb/, installed under /usr; the .deb goes to OUTPUT-DIR,
# default the project's root, and its path is the last line printed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(realpath -m "${1:-$root}")
bash scripts/install-deps.sh
# Debian's hardening flags (stack protector, fortified calls, read-only relocations bound
# at start), as dpkg-buildflags gives them to every Debian package.
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cxxflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
cmake -S . -B build-deb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DFSOUT_TESTS=OFF -DCMAKE_CXX_FLAGS="$cxxflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" >/dev/null
cmake --build build-deb -j "$(nproc)"
mkdir -p "$out"
(cd build-deb && cpack -G DEB -B "$out/.cpack" >/dev/null)
deb=$(ls -t "$out"/.cpack/fsout_*.deb | head -n 1)
mv "$deb" "$out/"
rm -rf "$out/.cpack"
echo "$out/$(basename "$deb")"
