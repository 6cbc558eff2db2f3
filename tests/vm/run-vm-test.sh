#!/usr/bin/env bash
# The VM test: boots a Linux guest under QEMU (software emulation) with a
# virtio-serial port whose host end is fsoutd's socket, and checks what the
# guest reports and what it wrote. Usage:
#   run-vm-test.sh FSOUTD FSOUT_MOUNT BATTERY_STATIC BATTERY WORK_DIR EXERCISER_STATIC \
#     RESTART_PROGRAMS_STATIC FSOUTD_UPGRADE
set -euo pipefail
fsoutd=$1 fsout_mount=$2 battery_static=$3 battery=$4 work=$5 exerciser_static=$6
restart_programs=$7 fsoutd_upgrade=$8
here=$(cd "$(dirname "$0")" && pwd)
command -v qemu-system-x86_64 >/dev/null || { echo "run-vm-test: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 1; }

kernel=$("$here/prepare-kernel.sh")
mkdir -p "$work"
"$here/build-initramfs.sh" "$kernel" "$fsout_mount" "$battery_static" "$here/guest-test.sh" "$work/initramfs.gz" "$exerciser_static" "$restart_programs"

run=$(mktemp -d /tmp/fsout-vm-XXXXXX)
export_dir=$run/export
socket=$run/fsout.sock
daemon=
qemu=
cleanup() {
  [[ -n $qemu ]] && kill "$qemu" 2>/dev/null
  [[ -n $daemon ]] && kill "$daemon" 2>/dev/null
  wait 2>/dev/null
  cp "$run/console.log" "$work/console.log" 2>/dev/null || true
  cp "$run/fsoutd.log" "$work/fsoutd.log" 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT

# Files the guest must read back right.
mkdir -p "$export_dir/fromhost"
for size in 0 1 4096 65536 1000001; do head -c $size /dev/urandom >"$export_dir/fromhost/f$size"; done
head -c $((6 * 1024 * 1024 + 123)) /dev/urandom >"$export_dir/fromhost/big"
(cd "$export_dir/fromhost" && sha256sum f* big >SHA256SUMS)

start_daemon() {  # [BINARY]
  # FSOUT_VM_LOG_LEVEL=debug: a line per refused request too.
  "${1:-$fsoutd}" --serial-streams --log-level "${FSOUT_VM_LOG_LEVEL:-info}" --listen "unix:$socket" \
    --state-dir "$run/state" "$export_dir" 2>>"$run/fsoutd.log" &
  daemon=$!
  for _ in $(seq 100); do [[ -S $socket ]] && return; sleep 0.05; done
  echo "run-vm-test: fsoutd did not start" >&2
  exit 1
}
start_daemon

# The guest gets the host's settings that change syscall results, so that
# its transcript can be compared with one made here.
sysctls="fs.protected_hardlinks fs.protected_symlinks fs.protected_regular fs.protected_fifos"
cmdline="console=ttyS0 panic=-1 quiet"
for name in $sysctls; do
  value=$(sysctl -n "$name" 2>/dev/null || cat "/proc/sys/${name//.//}")
  cmdline+=" fsout.sysctl=${name//.//}:$value"
done

qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 -no-reboot -display none -monitor none \
  -kernel "$kernel/vmlinuz" -initrd "$work/initramfs.gz" -append "$cmdline" \
  -serial "file:$run/console.log" \
  -device virtio-serial-pci \
  -chardev "socket,id=fsout,path=$socket,reconnect=1" \
  -device virtserialport,chardev=fsout,name=fsout &
qemu=$!

# Serve the guest; restart fsoutd when the guest asks for it.
deadline=$((SECONDS + 900))
restarted=0
while kill -0 "$qemu" 2>/dev/null; do
  if ((SECONDS > deadline)); then
    echo "run-vm-test: the guest did not finish in time; the end of its console:" >&2
    tail -n 60 "$run/console.log" >&2
    for task in /proc/"$daemon"/task/*; do
      echo "fsoutd thread $(cat "$task/comm") waits in $(cat "$task/wchan")" >&2
    done 2>/dev/null
    kill "$qemu"
    break
  fi
  if ((!restarted)) && [[ -e $export_dir/results/host-restart-ready ]]; then
    # Three crashes, a graceful restart and an upgrade, while the guest's programs run
    # (guest-test.sh, step 5); after each, a host process must not get the guest's flock.
    for how in KILL KILL KILL TERM upgrade; do
      sleep 3
      kill -"${how/upgrade/TERM}" "$daemon"
      wait "$daemon" 2>/dev/null || true
      sleep 1
      if [[ $how == upgrade ]]; then start_daemon "$fsoutd_upgrade"; else start_daemon; fi
      sleep 2
      if flock -n "$export_dir/restart/flock.lock" true; then echo "after $how" >>"$run/locks-lost"; fi
    done
    sleep 2
    touch "$export_dir/results/host-restarted"
    restarted=1
  fi
  sleep 0.2
done
wait "$qemu" 2>/dev/null || true
qemu=

failures=0
check() {  # name, condition...
  local name=$1
  shift
  if "$@"; then echo "PASS $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}
grep "FSOUT-VM:" "$run/console.log" || true
for name in mount battery-ran exerciser host-to-guest guest-wrote restart-mount crash-mount host-restart; do
  check "guest: $name" grep -q "FSOUT-VM: PASS $name" "$run/console.log"
done
check "guest: no failures" bash -c "! grep -q 'FSOUT-VM: FAIL' '$run/console.log'"
check "guest: finished" grep -q "FSOUT-VM: DONE" "$run/console.log"
check "guest-to-host checksums" bash -c "cd '$export_dir/fromguest' && sha256sum --quiet -c '$export_dir/results/guest-sums.txt'"
check "exerciser's files on the host" bash -c "cd '$export_dir/integrity' && sha256sum --quiet -c '$export_dir/results/integrity-sums.txt'"
check "guest wrote after the host restart" test -e "$export_dir/results/after-host-restart"
check "no host process got the guest's flock after a restart" test ! -e "$run/locks-lost"
check "the guest's session was resumed 5 times" test "$(grep -c 'session resumed' "$run/fsoutd.log")" -ge 5
# The guest's battery transcript against this host's plain directory.
native=$(mktemp -d /tmp/fsout-vm-native-XXXXXX)
"$battery" "$native" >"$run/native.txt" 2>/dev/null || true
rm -rf "$native"
if [[ -s $export_dir/results/transcript.txt ]] && diff -u "$run/native.txt" "$export_dir/results/transcript.txt" >"$run/transcript.diff"; then
  echo "PASS battery transcript matches a plain directory ($(wc -l <"$run/native.txt") lines)"
else
  echo "FAIL battery transcript differs:"
  head -n 60 "$run/transcript.diff"
  failures=$((failures + 1))
fi
if ((failures > 0)); then
  echo "the end of fsoutd's log:"
  tail -n 40 "$run/fsoutd.log"
fi
echo "vm test: $failures failed check(s)"
exit $((failures > 0))
