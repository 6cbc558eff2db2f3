#!/usr/bin/env bash
# Builds the guest's initramfs: busybox, fsout-mount with the shared
# libraries ldd names, the static test helper, the kernel modules the guest
# needs (dependencies first) and the init script.
# Usage: build-initramfs.sh KERNEL_DIR FSOUT_MOUNT BATTERY GUEST_SCRIPT OUTPUT [EXTRA_BINARY...]
set -euo pipefail
kernel=$1 fsout_mount=$2 battery=$3 guest_script=$4 output=$5
shift 5
extras=("$@")  # more static programs for /bin
here=$(cd "$(dirname "$0")" && pwd)
busybox=/bin/busybox  # from busybox-static: the guest has no libraries for it
[[ -x $busybox ]] && ! ldd "$busybox" >/dev/null 2>&1 ||
  { echo "build-initramfs: a static busybox is missing (apt-get install busybox-static)" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt/host,modules,etc}
cp "$busybox" "$root/bin/busybox"
cp "$fsout_mount" "$root/bin/fsout-mount"
cp "$battery" "$root/bin/battery"
for extra in "${extras[@]}"; do cp "$extra" "$root/bin/"; done
# The dynamic loader and every library fsout-mount needs, at the same paths.
for lib in $(ldd "$fsout_mount" | grep -o '/[^ ]*'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
version=$(ls "$kernel/lib/modules")
modules_dir=$kernel/lib/modules/$version
: >"$root/modules/order"
for module in $("$here/modules-in-order.sh" "$modules_dir" virtio_pci virtio_console fuse 9pnet_virtio 9p virtiofs); do
  cp "$modules_dir/$module" "$root/modules/"
  basename "$module" >>"$root/modules/order"
done
cp "$here/init.sh" "$root/init"
cp "$guest_script" "$root/bin/guest-test"
chmod +x "$root/init" "$root/bin/guest-test"
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$output.tmp"
mv "$output.tmp" "$output"
