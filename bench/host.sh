#!/usr/bin/env bash
# Host benchmark: the same workloads on
#   native      a plain directory (the limit)
#   fuse-floor  libfuse's passthrough_ll example (FUSE without an RPC hop)
#   sshfs       sshfs -o passive joined by pipes to OpenSSH's sftp-server
#   fsout       fsoutd + fsout-mount over unix:, default cache mode (coherent)
#   fsout-auto  the same with -o cache=auto (1 s timeouts, no notifications)
# in turn, several rounds; prints medians and the ratio to native.
# Needs root and the build (cmake --build build). Usage: bench/host.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
[[ $(id -u) -eq 0 ]] || { echo "bench/host.sh: run as root (mounts, drop_caches)" >&2; exit 1; }
missing=()
for package in sshfs openssh-sftp-server fio git; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[[ -x build/fsoutd && -x build/fsout-mount ]] || { cmake -S . -B build -G Ninja >/dev/null && cmake --build build; }
mkdir -p build/bench
examples=/usr/share/doc/libfuse3-dev/examples
gcc -O2 -Wall "$examples/passthrough_ll.c" -I"$examples" $(pkg-config --cflags --libs fuse3) -o build/bench/passthrough_ll
g++ -std=c++20 -O2 bench/metaops.cpp -o build/bench/metaops

work=$(mktemp -d /tmp/fsout-hostbench-XXXXXX)
results=$work/results.txt
: >"$results"
pids=()
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The source tree: up to ~50 MB of /usr/include (a few thousand files).
(cd /usr/include && find . -type f -size -2M -printf '%s\t%p\n' | sort -t$'\t' -k2 |
  awk -F'\t' '{ total += $1; if (total <= 50000000) print $2 }') >"$work/files.txt"
tar -cf "$work/tree.tar" -C /usr/include -T "$work/files.txt"
tree_bytes=$(stat -c %s "$work/tree.tar")
tree_files=$(wc -l <"$work/files.txt")

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc -l; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
cpu_seconds() {  # user+system seconds of the given pids (and nothing when none)
  local total=0 pid fields
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    fields=$(sed 's/.*) //' "/proc/$pid/stat")
    total=$((total + $(echo "$fields" | awk '{ print $12 + $13 }')))
  done
  echo "scale=2; $total / $(getconf CLK_TCK)" | bc -l
}
wait_mounted() { for _ in $(seq 200); do mountpoint -q "$1" && return 0; sleep 0.05; done; echo "not mounted: $1" >&2; return 1; }

# mount_fs KIND INDEX: mounts instance INDEX of KIND, sets MNT and FS_PIDS.
mount_fs() {
  local kind=$1 index=$2 source=$work/$1-source
  mkdir -p "$source"
  MNT=$work/$kind-mnt$index
  mkdir -p "$MNT"
  FS_PIDS=()
  case $kind in
    native) MNT=$source ;;
    fuse-floor)
      build/bench/passthrough_ll -f -o source="$source" "$MNT" 2>>"$work/floor.log" &
      FS_PIDS=($!) ;;
    sshfs)
      rm -f "$work/to-server$index" "$work/to-client$index"
      mkfifo "$work/to-server$index" "$work/to-client$index"
      /usr/lib/openssh/sftp-server <"$work/to-server$index" >"$work/to-client$index" &
      FS_PIDS=($!)
      # Open order matters with fifos: write end of to-server first, as
      # sftp-server opens its read end first.
      sshfs -f -o passive localhost:"$source" "$MNT" >"$work/to-server$index" <"$work/to-client$index" 2>>"$work/sshfs.log" &
      FS_PIDS+=($!) ;;
    fsout | fsout-auto)
      local options=()
      [[ $kind == fsout-auto ]] && options=(-o cache=auto)
      if [[ ! -S $work/fsout.sock ]]; then
        build/fsoutd --listen "unix:$work/fsout.sock" --state-dir "$work/state" "$source" 2>>"$work/fsoutd.log" &
        FSOUTD_PID=$!
        pids+=($FSOUTD_PID)
        for _ in $(seq 100); do [[ -S $work/fsout.sock ]] && break; sleep 0.05; done
      fi
      build/fsout-mount -f "${options[@]}" "unix:$work/fsout.sock" "$MNT" 2>>"$work/fsout-mount.log" &
      FS_PIDS=($! "$FSOUTD_PID") ;;
  esac
  pids+=("${FS_PIDS[@]}")
  if [[ $kind != native ]]; then
    mounts+=("$MNT")
    wait_mounted "$MNT"
  fi
}
unmount_all() {
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  mounts=()
  pids=()
  rm -f "$work/fsout.sock"
}

record() { echo "$1 $2 $3 $4" >>"$results"; }  # fs step value unit
timed() {  # fs step command...: records seconds and the file system's CPU seconds
  local fs=$1 step=$2
  shift 2
  local cpu_before start
  cpu_before=$(cpu_seconds "${FS_PIDS[@]}")
  start=$(now)
  # grep finds nothing on purpose (exit 1); other failures show in the log
  "$@" >/dev/null 2>>"$work/steps.log" || [[ $step == grep-r ]] || echo "$fs $step failed" >&2
  record "$fs" "$step" "$(elapsed "$start")" s
  record "$fs" "cpu:$step" "$(echo "$(cpu_seconds "${FS_PIDS[@]}") - $cpu_before" | bc -l)" s
}

run_round() {
  local fs=$1 dir
  mount_fs "$fs" 0
  dir=$MNT
  mkdir -p "$dir/src"
  drop_caches
  timed "$fs" untar tar -xf "$work/tree.tar" -C "$dir/src"
  drop_caches
  timed "$fs" find-stat find "$dir/src" -printf '%s %m\n'
  timed "$fs" find-stat-warm find "$dir/src" -printf '%s %m\n'  # again: what caches keep
  timed "$fs" grep-r grep -r -c fsout_never_matches "$dir/src"
  timed "$fs" git-add bash -c "cd '$dir/src' && git init -q && git add -A"
  timed "$fs" git-status git -C "$dir/src" status --porcelain
  timed "$fs" rm-rf rm -rf "$dir/src"

  local start
  start=$(now)
  dd if=/dev/zero of="$dir/big" bs=1M count=512 conv=fsync status=none
  record "$fs" seq-write "$(echo "512 / $(elapsed "$start")" | bc -l)" MiB/s
  drop_caches
  start=$(now)
  dd if="$dir/big" of=/dev/null bs=1M status=none
  record "$fs" seq-read "$(echo "512 / $(elapsed "$start")" | bc -l)" MiB/s
  rm -f "$dir/big"

  local rw engine jobs iops
  mkdir -p "$dir/fio"
  for rw in randread randwrite; do
    for engine in psync libaio; do
      for jobs in 1 4; do
        iops=$(fio --name=b --directory="$dir/fio" --rw=$rw --bs=4k --size=64m --runtime=3 --time_based \
          --ioengine=$engine --iodepth=8 --numjobs=$jobs --group_reporting --minimal 2>/dev/null |
          awk -F';' '$1 == "3" { print $8 + $49 }' | tail -n 1)
        record "$fs" "fio-$rw-$engine-j$jobs" "${iops:-0}" IOPS
      done
    done
  done
  rm -rf "$dir/fio"

  mkdir -p "$dir/meta"
  build/bench/metaops "$dir/meta" 10000 | while read -r op value unit; do record "$fs" "meta-$op" "$value" "$unit"; done
  rm -rf "$dir/meta"
  unmount_all

  # Sessions: one, then 8 at once (8 mounts of the same export), each
  # unpacking the tree into its own subtree and removing it.
  local i start8
  mount_fs "$fs" 0
  start=$(now)
  mkdir -p "$MNT/s0" && tar -xf "$work/tree.tar" -C "$MNT/s0" && rm -rf "$MNT/s0"
  record "$fs" sessions-1 "$(echo "$tree_bytes / 1048576 / $(elapsed "$start")" | bc -l)" MiB/s
  local dirs=("$MNT")
  for i in 1 2 3 4 5 6 7; do mount_fs "$fs" "$i"; dirs+=("$MNT"); done
  start8=$(now)
  local errors=0 job_pids=()
  for i in 0 1 2 3 4 5 6 7; do
    (mkdir -p "${dirs[i]}/s$i" && tar -xf "$work/tree.tar" -C "${dirs[i]}/s$i" && rm -rf "${dirs[i]}/s$i") 2>>"$work/steps.log" &
    job_pids+=($!)
  done
  for pid in "${job_pids[@]}"; do wait "$pid" || errors=$((errors + 1)); done
  record "$fs" sessions-8 "$(echo "8 * $tree_bytes / 1048576 / $(elapsed "$start8")" | bc -l)" MiB/s
  record "$fs" sessions-8-errors "$errors" count
  unmount_all
  rm -rf "$work/$fs-source"
}

command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null; }
for ((round = 1; round <= rounds; round++)); do
  # Rotate the order each round so no file system always goes first.
  order=(native fuse-floor sshfs fsout fsout-auto)
  shift_by=$(((round - 1) % 5))
  order=("${order[@]:shift_by}" "${order[@]:0:shift_by}")
  for fs in "${order[@]}"; do
    echo "round $round/$rounds: $fs" >&2
    run_round "$fs"
  done
done

echo "Tree: $tree_files files, $((tree_bytes / 1048576)) MiB; $rounds rounds; medians; (ratio to native)."
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), $(df -T /tmp | awk 'NR == 2 { print $2 }') under /tmp."
echo
awk '
  { key = $1 SUBSEP $2; values[key] = values[key] " " $3; unit[$2] = $4; if (!($2 in seen)) { seen[$2] = 1; steps[++n] = $2 } }
  function median(list,   k, a, i, j, t) {
    k = split(list, a, " ")
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  function show(v, u) { return u == "s" ? sprintf("%.3f", v) : sprintf("%.0f", v) }
  END {
    split("native fuse-floor sshfs fsout fsout-auto", fs, " ")
    print "| step | unit | native | fuse-floor | sshfs | fsout | fsout-auto |"
    print "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    for (s = 1; s <= n; s++) {
      step = steps[s]; line = "| " step " | " unit[step] " |"
      base = median(values["native", step])
      for (f = 1; f <= 5; f++) {
        v = median(values[fs[f], step])
        ratio = (base + 0 != 0 && step !~ /^cpu:/ && step !~ /errors/) ? sprintf(" (%.2f)", v / base) : ""
        line = line " " show(v, unit[step]) ratio " |"
      }
      print line
    }
  }' "$results"
