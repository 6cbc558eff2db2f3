#!/usr/bin/env bash
# VM benchmark: in each boot of one Linux guest (QEMU, software emulation),
# the same workload (bench/fsbench.cpp) against guest tmpfs (reference),
# virtio-fs, virtio-9p and fsout over virtio-serial; the order rotates per
# boot; several boots; medians. Needs the build (cmake --build build) and
# root. Usage: bench/vm.sh [BOOTS]   (default 3)
# A second fsout mount, "fsout-alt", runs on its own port and fsoutd with
# the mount options in FSOUT_ALT (default below), to measure them in the
# same boot. FSOUT_BENCH_ONLY=fs1,fs2 runs only those (quick A/B runs).
set -euo pipefail
cd "$(dirname "$0")/.."
boots=${1:-3}
[[ -x build/fsoutd && -x build/fsout-mount ]] || { echo "bench/vm.sh: build first (cmake -S . -B build -G Ninja && cmake --build build)" >&2; exit 1; }
virtiofsd=/usr/lib/qemu/virtiofsd
[[ -x $virtiofsd ]] || { echo "bench/vm.sh: $virtiofsd is missing (qemu-system-x86)" >&2; exit 1; }
mkdir -p build/bench
g++ -std=c++20 -O2 -static bench/fsbench.cpp -o build/bench/fsbench
g++ -std=c++20 -O2 -static tests/mount/battery.cpp -o build/bench/battery-static
kernel=$(tests/vm/prepare-kernel.sh)
tests/vm/build-initramfs.sh "$kernel" build/fsout-mount build/bench/battery-static bench/vm-guest.sh \
  build/bench/initramfs.gz build/bench/fsbench

run=$(mktemp -d /tmp/fsout-bench-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
results=$run/results.txt
: >"$results"
alt=${FSOUT_ALT:-readahead=131072}
orders=("tmpfs,virtiofs,9p,fsout,fsout-alt" "fsout-alt,fsout,tmpfs,virtiofs,9p" "9p,fsout,fsout-alt,tmpfs,virtiofs"
  "virtiofs,9p,fsout-alt,fsout,tmpfs" "fsout,tmpfs,fsout-alt,9p,virtiofs")
only=${FSOUT_BENCH_ONLY:-}
for ((boot = 0; boot < boots; boot++)); do
  order=${orders[boot % 5]}
  if [[ -n $only ]]; then
    order=$(tr ',' '\n' <<<"$order" | grep -Fxf <(tr ',' '\n' <<<"$only") | paste -sd,)
  fi
  mkdir -p "$run/fsout" "$run/fsout-alt" "$run/virtiofs" "$run/9p"
  build/fsoutd --serial-streams --listen "unix:$run/fsout.sock" --state-dir "$run/state" "$run/fsout" 2>"$run/fsoutd.log" &
  pids+=($!)
  build/fsoutd --serial-streams --listen "unix:$run/fsout2.sock" --state-dir "$run/state2" "$run/fsout-alt" 2>"$run/fsoutd2.log" &
  pids+=($!)
  "$virtiofsd" --socket-path="$run/vfs.sock" -o source="$run/virtiofs" -o cache=auto >"$run/virtiofsd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [[ -S $run/fsout.sock && -S $run/fsout2.sock && -S $run/vfs.sock ]] && break; sleep 0.05; done
  echo "boot $((boot + 1))/$boots, order $order" >&2
  qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 -no-reboot -display none -monitor none \
    -object memory-backend-memfd,id=mem,size=1024M,share=on -numa node,memdev=mem \
    -kernel "$kernel/vmlinuz" -initrd build/bench/initramfs.gz \
    -append "console=ttyS0 panic=-1 quiet fsout.script=/bin/guest-test fsout.order=$order fsout.alt=$alt" \
    -serial "file:$run/console.log" \
    -device virtio-serial-pci \
    -chardev "socket,id=fsout,path=$run/fsout.sock,reconnect=1" \
    -device virtserialport,chardev=fsout,name=fsout \
    -chardev "socket,id=fsout2,path=$run/fsout2.sock,reconnect=1" \
    -device virtserialport,chardev=fsout2,name=fsout2 \
    -chardev "socket,id=vfs,path=$run/vfs.sock" -device vhost-user-fs-pci,chardev=vfs,tag=vfs \
    -fsdev "local,id=p9,path=$run/9p,security_model=passthrough" -device virtio-9p-pci,fsdev=p9,mount_tag=p9
  grep "FSOUT-BENCH: note" "$run/console.log" >&2 || true
  grep "FSOUT-BENCH: " "$run/console.log" | grep -v note | tr -d '\r' | sed 's/^.*FSOUT-BENCH: //' >>"$results"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  rm -rf "$run/fsout" "$run/fsout-alt" "$run/virtiofs" "$run/9p" "$run"/*.sock
done

# Medians per (file system, step), one table.
awk '
  { key = $2 SUBSEP $1; values[key] = values[key] " " $3; unit[$2] = $4; steps[$2] = NR; fss[$1] = 1 }
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    split("tmpfs virtiofs 9p fsout fsout-alt", order, " ")
    printf "| step | unit |"; for (i = 1; i <= 5; i++) printf " %s |", order[i]; printf " fsout / virtiofs | alt / fsout |\n"
    printf "| --- | --- |"; for (i = 1; i <= 5; i++) printf " ---: |"; printf " ---: | ---: |\n"
    n = split("write64M+fsync read64M-cold read64M-warm create2000 readdir+lstat read2000 delete2000", s, " ")
    for (k = 1; k <= n; k++) {
      step = s[k]; printf "| %s | %s |", step, unit[step]
      for (i = 1; i <= 5; i++) { m[i] = median(values[step, order[i]]); printf " %s |", m[i] }
      printf " %.2f | %.2f |\n", (m[4] + 0) / ((m[2] + 0) ? m[2] : 1), (m[5] + 0) / ((m[4] + 0) ? m[4] : 1)
    }
  }' "$results"
echo
echo "fsout-alt: -o $alt"
echo "$boots boots; medians; MiB/s: higher is better, s: lower is better. Raw: $(wc -l <"$results") samples." 
