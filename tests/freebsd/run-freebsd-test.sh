#!/usr/bin/env bash
# The FreeBSD VM test: cross-builds fsout-mount, fsout and the exerciser with the FreeBSD
# 13.2 guest kit, makes a bootable guest with the kit's make-iso.sh, boots it under QEMU
# (software emulation) with fsoutd serving an export over a virtserialport, and checks what
# the guest reports and wrote:
#   - a shell battery (battery.sh) on the guest's own UFS and on the fsout mount: the two
#     transcripts must be equal;
#   - files both ways by checksum; 64 MiB written and read back (rates printed);
#   - a host change is seen in the guest;
#   - the data-integrity exerciser on the mount;
#   - no "cache incoherent" warning from fusefs on the console.
# Exit 77 (skipped, with the reason) when the kit or its tools are missing.
# Usage: run-freebsd-test.sh SOURCE_DIR FSOUTD WORK_DIR [KIT_DIR]
set -euo pipefail
source_dir=$1 fsoutd=$2 work=$3
kit=${4:-$source_dir/../shared/freebsd}
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIPPED: $*"; exit 77; }
[[ -f $kit/toolchain.cmake && -x $kit/make-iso.sh ]] || skip "no FreeBSD guest kit at $kit"
for tool in clang++-14 ld.lld-14 grub-mkrescue xorriso mformat qemu-system-x86_64; do
  command -v "$tool" >/dev/null || skip "$tool is missing (apt-get install clang-14 lld-14 grub-pc-bin grub-common xorriso mtools qemu-system-x86)"
done
kit=$(cd "$kit" && pwd)
mkdir -p "$work"
work=$(cd "$work" && pwd)

# 1. The guest's programs, cross-built with the project's own CMake and the kit's toolchain.
cmake -S "$source_dir" -B "$work/build-freebsd" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$kit/toolchain.cmake" >"$work/cross-configure.log" 2>&1 ||
  { cat "$work/cross-configure.log"; exit 1; }
cmake --build "$work/build-freebsd" >"$work/cross-build.log" 2>&1 || { cat "$work/cross-build.log"; exit 1; }
if grep -q "warning:" "$work/cross-build.log"; then
  echo "FAIL the cross build has warnings:"; grep "warning:" "$work/cross-build.log"; exit 1
fi
echo "PASS cross-built fsout-mount, fsout and fsout-exerciser for FreeBSD without warnings"

run=$(mktemp -d /tmp/fsout-freebsd-XXXXXX)
export_dir=$run/export
socket=$run/fsout.sock
daemon= qemu=
cleanup() {
  [[ -n $qemu ]] && kill "$qemu" 2>/dev/null
  [[ -n $daemon ]] && kill "$daemon" 2>/dev/null
  wait 2>/dev/null
  cp "$run/console.log" "$work/console.log" 2>/dev/null || true
  cp "$run/fsoutd.log" "$work/fsoutd.log" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT

# 2. The guest: the kit's programs plus ours and the test script.
root=$run/root
mkdir -p "$root/etc" "$root/bin"
cp "$work/build-freebsd/fsout-mount" "$work/build-freebsd/fsout" "$work/build-freebsd/fsout-exerciser" \
  "$work/build-freebsd/fsout-freebsd-syscalls" "$root/bin/"
cp "$here/battery.sh" "$root/bin/battery.sh"
cp "$here/guest-test.sh" "$root/etc/rc.test"
"$here/kit-overlay.sh" "$kit" "$run/kit" >/dev/null
"$run/kit/make-iso.sh" "$root" "$run/guest.iso" kit.exerciser_ops="${FSOUT_FREEBSD_EXERCISER_OPS:-6000}" >"$run/iso.log" 2>&1 ||
  { cat "$run/iso.log"; exit 1; }

# Files the guest must read back right.
mkdir -p "$export_dir/fromhost" "$export_dir/results"
for size in 0 1 4096 20000 65536 1000001; do head -c $size /dev/urandom >"$export_dir/fromhost/f$size"; done
(cd "$export_dir/fromhost" && md5sum f* | awk '{print $1 " " $2}' | sort -k2 >"$export_dir/results/host-sums.txt")
# 64 MiB the guest has never seen, for a cold read.
head -c $((64 << 20)) /dev/urandom >"$export_dir/cold64"
md5sum <"$export_dir/cold64" | cut -d' ' -f1 >"$export_dir/results/cold64.md5"
printf 'before\n' >"$export_dir/coherence"
mkdir "$export_dir/coherence-dir"

truncate -s 160M "$run/disk.img"  # the guest's own UFS disk, for the rates beside fsout's
"$fsoutd" --serial-streams --listen "unix:$socket" --state-dir "$run/state" "$export_dir" 2>>"$run/fsoutd.log" &
daemon=$!
for _ in $(seq 100); do [[ -S $socket ]] && break; sleep 0.05; done
[[ -S $socket ]] || { echo "run-freebsd-test: fsoutd did not start" >&2; exit 1; }

qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -monitor none -no-reboot \
  -serial "file:$run/console.log" -cdrom "$run/guest.iso" \
  -drive "file=$run/disk.img,if=virtio,format=raw" \
  -device virtio-serial-pci \
  -chardev "socket,id=fsout,path=$socket,reconnect=1" \
  -device virtserialport,chardev=fsout,name=fsout &
qemu=$!

# Serve the guest; change a file when it asks (the coherence check).
deadline=$((SECONDS + 1200))
changed=0
while kill -0 "$qemu" 2>/dev/null; do
  if ((SECONDS > deadline)); then echo "run-freebsd-test: the guest did not finish in time" >&2; break; fi
  if ((!changed)) && [[ -e $export_dir/results/coherence-ready ]]; then
    printf 'after\n' >"$export_dir/coherence"
    : >"$export_dir/coherence-new"
    : >"$export_dir/coherence-dir/added"
    changed=1
  fi
  sleep 0.1
done
wait "$qemu" 2>/dev/null || true
qemu=

failures=0
check() {  # name, condition...
  local name=$1
  shift
  if "$@"; then echo "PASS $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}
console=$run/console.log
tr -d '\r' <"$console" >"$console.clean" && mv "$console.clean" "$console"
grep -a "FSOUT-FREEBSD:" "$console" || true
for name in ufs mount mounted-on-return battery-ufs battery-fsout host-to-guest guest-wrote bulk-write bulk-read bulk-cold-read coherence exerciser; do
  check "guest: $name" grep -aq "FSOUT-FREEBSD: PASS $name" "$console"
done
check "guest: no failures" bash -c "! grep -aq 'FSOUT-FREEBSD: FAIL' '$console'"
check "guest: finished" grep -aq "FSOUT-FREEBSD: DONE" "$console"
check "guest-to-host checksums" bash -c "cd '$export_dir/fromguest' && md5sum f* | awk '{print \$1 \" \" \$2}' | sort -k2 | diff - '$export_dir/results/guest-sums.txt'"
check "64 MiB file on the host" bash -c "[[ \$(md5sum <'$export_dir/big64' | cut -d' ' -f1) == \$(cat '$export_dir/results/big64.md5') ]]"
# fusefs's own consistency checks: none may fire.
check "no fusefs 'cache incoherent' warning" bash -c "! grep -aqi 'incoherent\|protocol violation' '$console'"
# The battery on the fsout mount against the same battery on the guest's UFS, with the
# differences that come from a Linux host (host-differences.txt) put in first.
expected=$run/battery-expected.txt
if [[ -s $export_dir/results/battery-ufs.txt ]]; then
  awk -F'|' 'NR == FNR { if ($0 !~ /^#/ && NF >= 2) want[$1] = $2; next }
    { step = $0; sub(/: .*/, "", step); if (step in want) print step ": " want[step]; else print }' \
    "$here/host-differences.txt" "$export_dir/results/battery-ufs.txt" >"$expected"
  grep -v '^#' "$here/host-differences.txt" | while IFS='|' read -r step result why; do
    if grep -q "^$step: " "$export_dir/results/battery-ufs.txt"; then echo "  excused: $step: UFS '$(grep "^$step: " "$export_dir/results/battery-ufs.txt" | sed 's/^[^:]*: //')', fsout '$result' ($why)"; fi
  done
fi
if [[ -s $expected ]] && diff -u "$expected" "$export_dir/results/battery-fsout.txt" >"$run/battery.diff"; then
  echo "PASS battery transcript on fsout equals UFS ($(wc -l <"$expected") lines, $(grep -vc '^#' "$here/host-differences.txt") host differences excused)"
else
  echo "FAIL battery transcripts differ (UFS -, fsout +):"
  head -n 80 "$run/battery.diff"
  failures=$((failures + 1))
fi
grep -a "^bulk\|^ufs disk\|bytes transferred\|exerciser: seed\|coherence: seen" "$console" || true
echo "freebsd vm test: $failures failed check(s)"
exit $((failures > 0))
