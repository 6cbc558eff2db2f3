#!/usr/bin/env bash
# What keeping restart state costs (docs/ARCHITECTURE.md, "Restarts"): fsoutd with its
# state log against fsoutd --state-dir none, side by side, alternating, ROUNDS rounds:
# metaops (create/stat/rename/unlink of N empty files) and untarring /usr/include/linux.
# Needs root and the build. Usage: bench/state-cost.sh [ROUNDS] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5} count=${2:-5000}
[[ $(id -u) -eq 0 ]] || { echo "bench/state-cost.sh: run as root (mounts)" >&2; exit 1; }
work=$(mktemp -d /tmp/fsout-statecost-XXXXXX)
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
  for mode in state none; do
    d=$work/$mode-$round
    mkdir -p "$d/export" "$d/mnt"
    state=(--state-dir "$d/state")
    [[ $mode == none ]] && state=(--state-dir none)
    build/fsoutd --listen "unix:$d/sock" "${state[@]}" "$d/export" 2>"$d/log" &
    pid=$!
    for _ in $(seq 100); do [[ -S $d/sock ]] && break; sleep 0.05; done
    build/fsout-mount -o allow_other "unix:$d/sock" "$d/mnt"
    mkdir "$d/mnt/meta"
    meta=$("$work/metaops" "$d/mnt/meta" "$count" | tr '\n' ' ')
    start=$(date +%s.%N)
    tar -C "$d/mnt" -xf "$work/src.tar"
    end=$(date +%s.%N)
    echo "$mode round $round: $meta untar $(echo "$end - $start" | bc) s"
    umount "$d/mnt"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
  done
done
