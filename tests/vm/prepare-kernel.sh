#!/usr/bin/env bash
# Fetches a generic Debian guest kernel (linux-image-*-amd64-unsigned: it has
# virtio_console, fuse, virtiofs and 9p as modules) into a cache directory,
# once. Prints the cache directory holding vmlinuz and lib/modules/VERSION.
# Usage: prepare-kernel.sh [CACHE_DIR]   (default: ~/.cache/fsout-vm)
set -euo pipefail
cache=${1:-${FSOUT_VM_CACHE:-$HOME/.cache/fsout-vm}}
mkdir -p "$cache"
if [[ -f $cache/kernel/vmlinuz && -d $cache/kernel/lib/modules ]]; then
  echo "$cache/kernel"
  exit 0
fi
# The kernel the linux-image-amd64 metapackage points at, unsigned flavour.
signed=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
if [[ -z $signed ]]; then
  signed=$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-amd64-unsigned$' | sort -V | tail -n1 | cut -d' ' -f1)
  signed=${signed%-unsigned}
fi
[[ -n $signed ]] || { echo "prepare-kernel: no Debian amd64 kernel package found (apt-get update?)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "${signed}-unsigned" >/dev/null 2>&1) ||
  { echo "prepare-kernel: cannot download ${signed}-unsigned" >&2; exit 1; }
dpkg-deb -x "$work"/*.deb "$work/root"
rm -rf "$cache/kernel.new"
mkdir -p "$cache/kernel.new/lib"
cp "$work"/root/boot/vmlinuz-* "$cache/kernel.new/vmlinuz"
cp -a "$work/root/lib/modules" "$cache/kernel.new/lib/"
version=$(ls "$cache/kernel.new/lib/modules")
# The package ships no modules.dep (made at install time): make it.
depmod -b "$cache/kernel.new" "$version"
rm -rf "$cache/kernel"
mv "$cache/kernel.new" "$cache/kernel"
echo "$cache/kernel"
