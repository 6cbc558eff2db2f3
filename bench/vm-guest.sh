#!/bin/sh
# Runs inside the benchmark guest (see bench/vm.sh): mounts every file system
# under test and runs fsbench on each, in the order the host asked for.
order=tmpfs,virtiofs,9p,fsout
alt=readahead=131072
for setting in $(cat /proc/cmdline); do
  case $setting in
    fsout.order=*) order=${setting#fsout.order=} ;;
    fsout.alt=*) alt=${setting#fsout.alt=} ;;
  esac
done
mkdir -p /bench/tmpfs /bench/virtiofs /bench/9p /bench/fsout /bench/fsout-alt
mount -t tmpfs -o size=600m tmpfs /bench/tmpfs
mount -t virtiofs vfs /bench/virtiofs || echo "FSOUT-BENCH: note virtiofs mount failed"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 p9 /bench/9p || echo "FSOUT-BENCH: note 9p mount failed"
fsout-mount serial:/dev/virtio-ports/fsout /bench/fsout || echo "FSOUT-BENCH: note fsout mount failed"
fsout-mount -o "$alt" serial:/dev/virtio-ports/fsout2 /bench/fsout-alt || echo "FSOUT-BENCH: note fsout-alt mount failed"
echo "FSOUT-BENCH: note read_ahead_kb $(for f in /sys/class/bdi/0:*/read_ahead_kb; do echo -n "$f=$(cat $f) "; done)"
for fs in $(echo "$order" | tr ',' ' '); do
  mkdir -p /bench/$fs/work
  fsbench /bench/$fs/work >/tmp/out 2>/tmp/err || echo "FSOUT-BENCH: note $fs failed: $(cat /tmp/err)"
  sed "s/^/FSOUT-BENCH: $fs /" /tmp/out
  rm -rf /bench/$fs/work
done
umount /bench/fsout
umount /bench/fsout-alt
