#!/usr/bin/env bash
# Builds the Debian package: bash scripts/build-deb.sh [OUTPUT-DIR]
# (a build of its own in build-deb/, installed under /usr; the .deb goes to OUTPUT-DIR,
# default the project's root, and its path is the last line printed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=$(realpath -m "${1:-$root}")
bash scripts/install-deps.sh
cmake -S . -B build-deb -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DFSOUT_TESTS=OFF >/dev/null
cmake --build build-deb -j "$(nproc)"
mkdir -p "$out"
(cd build-deb && cpack -G DEB -B "$out/.cpack" >/dev/null)
deb=$(ls -t "$out"/.cpack/fsout_*.deb | head -n 1)
mv "$deb" "$out/"
rm -rf "$out/.cpack"
echo "$out/$(basename "$deb")"
