#!/usr/bin/env bash
# fsoutd --config with several exports: SIGHUP adds and removes exports without touching the
# mounted guest of another (same process, same session, a program writing through it the
# whole time sees no error); a changed export restarts and its guest resumes; fsout admin's
# numbers are those of a workload of known size; refusals are logged once per kind; the
# admin socket is root's only.
# usage: reload_admin_test.sh BUILD-DIR
set -euo pipefail
build=$(realpath "$1")
fsoutd=$build/fsoutd fsout=$build/fsout mount_prog=$build/fsout-mount
[[ $(id -u) -eq 0 ]] || { echo "reload_admin_test: needs root (FUSE mounts)"; exit 77; }
work=$(mktemp -d /tmp/fsout-ops.XXXXXX)
supervisor=""
failures=0 checks=0
cleanup() {
  for m in "$work"/mnt_*; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  [[ -n $supervisor ]] && kill "$supervisor" 2>/dev/null && wait "$supervisor" 2>/dev/null
  pkill -f -- "--state-dir $work/[s]tate" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
check() {  # check "what" command...
  local what=$1
  shift
  checks=$((checks + 1))
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}
equal() { [[ "$1" == "$2" ]] || { echo "   got '$1', expected '$2'" >&2; return 1; }; }
admin() { "$fsout" admin "unix:$work/admin.sock" stats --json; }
export_field() { admin | jq -r --arg n "$1" ".exports[] | select(.name == \$n) | $2"; }
wait_for() {  # wait_for SECONDS command...: until the command succeeds
  local limit=$(($1 * 10))
  shift
  for ((i = 0; i < limit; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

mkdir -p "$work"/{a,b,c,etc/exports.d,mnt_a,mnt_b}
echo "from b" >"$work/b/file"
cat >"$work/etc/fsoutd.conf" <<CONF
admin = unix:$work/admin.sock
threads = 2

[export a]
path = $work/a
listen = unix:$work/a.sock
state-dir = $work/state/a
CONF
cat >"$work/etc/exports.d/b.conf" <<CONF
[export b]
path = $work/b
listen = unix:$work/b.sock
read-only = yes
state-dir = $work/state/b
CONF

"$fsoutd" --config "$work/etc/fsoutd.conf" 2>"$work/fsoutd.log" &
supervisor=$!
check "both exports serve" wait_for 10 test -S "$work/a.sock" -a -S "$work/b.sock"
wait_for 10 "$fsout" "unix:$work/b.sock" ls
"$mount_prog" "unix:$work/a.sock" "$work/mnt_a"
"$mount_prog" -o reconnect=2 "unix:$work/b.sock" "$work/mnt_b"
check "b is mounted" equal "$(cat "$work/mnt_b/file")" "from b"

# A program writes through a's mount for the whole reload, one line per 10 ms, on one fd.
(
  exec 3>>"$work/mnt_a/log"
  for ((i = 1; i <= 400; i++)); do echo "$i" >&3 || { echo "write $i failed" >"$work/writer.err"; exit 1; }; sleep 0.01; done
) &
writer=$!
sleep 0.5
pid_a=$(export_field a .pid)
peer_a=$(export_field a '.sessions[0].peer')
check "a's session is the mount's (guest linux, file held open)" \
  equal "$(export_field a '.sessions[0] | "\(.guest_os) \(.handles >= 1) \(.nodes >= 2)"')" "linux true true"

# Refusals: the read-only export refuses two creates; the log says so once.
"$fsout" "unix:$work/b.sock" put /etc/hostname new1 2>/dev/null && echo "put on a read-only export worked?"
"$fsout" "unix:$work/b.sock" put /etc/hostname new2 2>/dev/null || true
check "b counted 2 refused CREATEs" equal "$(export_field b '.totals.operations.CREATE.errors')" 2
check "the log has one line per refused kind and session" \
  equal "$(grep -c 'refused Create: Read-only file system' "$work/fsoutd.log")" 2

# SIGHUP: b removed, c added, a unchanged.
rm "$work/etc/exports.d/b.conf"
cat >"$work/etc/exports.d/c.conf" <<CONF
[export c]
path = $work/c
listen = unix:$work/c.sock
state-dir = $work/state/c
CONF
kill -HUP "$supervisor"
check "c is served after SIGHUP" wait_for 10 "$fsout" "unix:$work/c.sock" ls
check "b is gone after SIGHUP" wait_for 10 bash -c "! $fsout admin unix:$work/admin.sock exports | grep -q '^b '"
check "b's socket is removed" test ! -e "$work/b.sock"
check "a's process is the same" equal "$(export_field a .pid)" "$pid_a"
check "a's session is the same" equal "$(export_field a '.sessions[0].peer')" "$peer_a"
check "a never had another session" equal "$(export_field a .sessions_total)" 1
check "the log says 1 added, 1 removed, 1 unchanged" \
  grep -q "1 added, 1 removed, 0 changed, 1 unchanged" "$work/fsoutd.log"
check "b's mount fails (EIO) once b is withdrawn" bash -c "! cat $work/mnt_b/file 2>/dev/null"
wait "$writer"
check "the writer saw no error" test ! -e "$work/writer.err"
check "every line the writer wrote is there, once, in order" \
  equal "$(seq 1 400 | md5sum)" "$(md5sum <"$work/a/log")"

# A changed export restarts; its guest resumes and carries on.
echo "max-handles = 2000" >>"$work/etc/fsoutd.conf"  # in a's section, the last
kill -HUP "$supervisor"
check "a restarted with the new settings" wait_for 10 bash -c \
  "[[ \$($fsout admin unix:$work/admin.sock stats --json | jq -r '.exports[] | select(.name==\"a\") | .pid') != $pid_a ]]"
echo "after the restart" >>"$work/mnt_a/log"
check "a's guest resumed and wrote through the restart" equal "$(tail -n 1 "$work/a/log")" "after the restart"
check "a's session was resumed, not started again" equal "$(export_field a '.sessions[0].resumed')" 1

# The numbers of a workload of known size (export c: nothing else has used it but one ls).
head -c 1048576 /dev/urandom >"$work/one-mib"
"$fsout" "unix:$work/c.sock" put "$work/one-mib" big
for i in 1 2 3; do "$fsout" "unix:$work/c.sock" cat big >/dev/null; done
for i in 1 2 3 4; do "$fsout" "unix:$work/c.sock" cat "missing$i" >/dev/null 2>&1 || true; done
check "c: bytes written = the file" equal "$(export_field c .totals.bytes_written)" 1048576
check "c: bytes read = three reads of it" equal "$(export_field c .totals.bytes_read)" $((3 * 1048576))
check "c: 4 failed LOOKUPs" equal "$(export_field c .totals.operations.LOOKUP.errors)" 4
check "c: 3 + 4 LOOKUPs (cat, missing; put creates, ls opens the root)" \
  equal "$(export_field c .totals.operations.LOOKUP.count)" 7
check "c: 9 sessions (ls, put, 3 cat, 4 missing), none left" \
  equal "$(export_field c '"\(.sessions_total) \(.sessions_now)"')" "9 0"
check "c: latency percentiles are ordered" equal \
  "$(export_field c '.totals.operations.READ | (.p50_us <= .p90_us and .p90_us <= .p99_us and .p99_us <= .max_us and .max_us > 0)')" true
check "the stats table shows c's reads" bash -c \
  "$fsout admin unix:$work/admin.sock stats | grep -E '^READ +[0-9]+ +0 '"
check "the sessions table shows a's guest" bash -c \
  "$fsout admin unix:$work/admin.sock sessions | grep -E '^a +unix:.* linux '"
check "the admin socket is root's (0600)" equal "$(stat -c %a "$work/admin.sock")" 600
check "another user cannot ask it" bash -c \
  "! setpriv --reuid 65534 --regid 65534 --clear-groups $fsout admin unix:$work/admin.sock stats 2>/dev/null"
check "sessions are logged as they start and end" \
  grep -q "c\]: unix:$work/c.sock#9: disconnected after .* s: " "$work/fsoutd.log"

umount "$work/mnt_a"
umount "$work/mnt_b"
kill "$supervisor"
wait "$supervisor" || true
supervisor=""
check "fsoutd --config stopped every export" bash -c "! pgrep -f -- '--state-dir $work/[s]tate' >/dev/null"
# Socket activation (LISTEN_FDS, as systemd's fsoutd@.socket does it): the socket is there
# before any fsoutd; the first connection starts it, and it serves on that very socket.
activate=$(command -v systemd-socket-activate || true)
if [[ -n $activate ]]; then
  echo "activated" >"$work/c/activated"
  "$activate" -l "$work/act.sock" "$fsoutd" --listen "unix:$work/act.sock" \
    --state-dir "$work/state/act" "$work/c" 2>"$work/act.log" &
  activator=$!
  check "the activation socket is there before fsoutd" wait_for 10 test -S "$work/act.sock"
  check "no fsoutd runs before the first connection" bash -c "! pgrep -f -- '^$fsoutd --listen unix:$work/act.sock'"
  check "the first connection is served" equal "$("$fsout" "unix:$work/act.sock" cat activated)" activated
  check "fsoutd took the socket it was given" grep -q "socket activation: unix:$work/act.sock" "$work/act.log"
  kill "$activator" 2>/dev/null
  pkill -f -- "--state-dir $work/[s]tate/act" || true
  # The same through fsoutd --config: the socket is handed to the export's process.
  cat >"$work/etc/act.conf" <<CONF
[export act2]
path = $work/c
listen = unix:$work/act2.sock
state-dir = $work/state/act2
CONF
  "$activate" -l "$work/act2.sock" "$fsoutd" --config "$work/etc/act.conf" 2>"$work/act2.log" &
  activator=$!
  wait_for 10 test -S "$work/act2.sock"
  check "fsoutd --config hands the socket to its export" \
    equal "$("$fsout" "unix:$work/act2.sock" cat activated)" activated
  check "the export's process took it" grep -q "fsoutd\[act2\]: socket activation: unix:$work/act2.sock" "$work/act2.log"
  kill "$activator" 2>/dev/null
  wait "$activator" 2>/dev/null || true
  wait_for 10 bash -c "! pgrep -f -- '--state-dir $work/[s]tate/act2'"
else
  echo "reload_admin_test: no systemd-socket-activate here (package systemd): activation not checked"
  failures=$((failures + 1))
fi
if ((failures)); then
  echo "--- fsoutd log"
  cat "$work/fsoutd.log"
fi
echo "reload_admin_test: $checks checks, $failures failed"
((failures == 0))
