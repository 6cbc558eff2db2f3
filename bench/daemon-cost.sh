#!/usr/bin/env bash
# Two fsoutd binaries side by side, alternating, ROUNDS rounds: metaops (create/stat/
# rename/unlink of N empty files) and untarring /usr/include/linux through a mount, each
# with build/fsout-mount. For what a change of the daemon costs, e.g. the admin counters:
#   git worktree add /tmp/old 9bba2fe && cmake -S /tmp/old -B /tmp/old/build -G Ninja &&
#   cmake --build /tmp/old/build --target fsoutd
#   bench/daemon-cost.sh /tmp/old/build/fsoutd build/fsoutd 5 5000
# Needs root. Usage: bench/daemon-cost.sh OLD-FSOUTD NEW-FSOUTD [ROUNDS] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1") new=$(realpath "$2")
rounds=${3:-5} count=${4:-5000}
[[ $(id -u) -eq 0 ]] || { echo "bench/daemon-cost.sh: run as root (mounts)" >&2; exit 1; }
work=$(mktemp -d /tmp/fsout-daemoncost-XXXXXX)
pid=
cleanup() {
  grep -o "$work/[^ ]*/mnt" /proc/mounts | xargs -r -n1 umount -l 2>/dev/null || true
  [[ -n $pid ]] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
g++ -std=c++20 -O2 bench/metaops.cpp -o "$work/metaops"
tar -C /usr/include -cf "$work/src.tar" linux
for round in $(seq "$rounds"); do
  for which in old new; do
    daemon=$old
    [[ $which == new ]] && daemon=$new
    d=$work/$which-$round
    mkdir -p "$d/export" "$d/mnt"
    "$daemon" --listen "unix:$d/sock" --state-dir "$d/state" "$d/export" 2>"$d/log" &
    pid=$!
    for _ in $(seq 100); do [[ -S $d/sock ]] && break; sleep 0.05; done
    build/fsout-mount -o allow_other "unix:$d/sock" "$d/mnt"
    mkdir "$d/mnt/meta"
    meta=$("$work/metaops" "$d/mnt/meta" "$count" | tr '\n' ' ')
    start=$(date +%s.%N)
    tar -C "$d/mnt" -xf "$work/src.tar"
    end=$(date +%s.%N)
    echo "$which round $round: $meta untar $(echo "$end - $start" | bc) s"
    umount "$d/mnt"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
  done
done
