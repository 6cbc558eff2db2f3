#!/usr/bin/env bash
# Installs the dependencies, builds fsout, and serves a demo directory
# mounted through fsout:
#   /tmp/fsout-demo/export   the host directory fsoutd serves
#   /tmp/fsout-demo/mnt      the fsout mount of it (what a guest would see)
# Stop it with: bash scripts/quickstart.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
demo=/tmp/fsout-demo
socket=$demo/fsoutd.sock

stop() {
  if mountpoint -q "$demo/mnt" 2>/dev/null; then
    fusermount3 -u "$demo/mnt" 2>/dev/null || umount -l "$demo/mnt"
  fi
  if [[ -f $demo/fsoutd.pid ]]; then
    kill "$(cat "$demo/fsoutd.pid")" 2>/dev/null || true
    rm -f "$demo/fsoutd.pid"
  fi
}

if [[ ${1:-} == stop ]]; then
  stop
  echo "fsout demo stopped (the files stay in $demo/export)"
  exit 0
fi

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build

stop
mkdir -p "$demo/export" "$demo/mnt"
[[ -e $demo/export/hello.txt ]] || echo "Hello from the host: this file lives in $demo/export." >"$demo/export/hello.txt"
mkdir -p "$demo/export/docs"
cp README.md docs/*.md "$demo/export/docs/"

# In its own session, detached from this terminal: it keeps serving after
# the script (and the shell) ends.
setsid build/fsoutd --listen "unix:$socket" "$demo/export" </dev/null >"$demo/fsoutd.log" 2>&1 &
echo $! >"$demo/fsoutd.pid"
for _ in $(seq 50); do [[ -S $socket ]] && break; sleep 0.1; done
build/fsout-mount "unix:$socket" "$demo/mnt"

echo
echo "fsoutd serves $demo/export on unix:$socket (log: $demo/fsoutd.log)"
echo "mounted on $demo/mnt:"
ls -l "$demo/mnt"
echo
echo "try:  cat $demo/mnt/hello.txt;  build/fsout unix:$socket ls docs"
echo "stop: bash scripts/quickstart.sh stop"
