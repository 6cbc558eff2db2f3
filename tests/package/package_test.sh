#!/usr/bin/env bash
# The Debian package, as an administrator meets it: built by its one documented command
# (scripts/build-deb.sh), installed with dpkg -i, run from /usr: an export in
# /etc/fsout/exports.d served by the installed fsoutd.service's ExecStart line (systemd need
# not be PID 1 here: the same command line is run), mounted by mount(8) from an /etc/fstab
# line before the daemon is up (mount.fsout waits for it), counted by fsout admin; then
# purged, leaving nothing behind. Changes /etc/fstab for a moment (restored on any exit).
# usage: package_test.sh SOURCE-DIR
set -euo pipefail
source_dir=$(realpath "$1")
[[ $(id -u) -eq 0 ]] || { echo "package_test: needs root (dpkg -i, mount)"; exit 77; }
if dpkg-query -W -f='${Status}' fsout 2>/dev/null | grep -q "install ok installed"; then
  echo "package_test: fsout is installed on this machine already; not touching it" >&2
  exit 1
fi
work=$(mktemp -d /tmp/fsout-package.XXXXXX)
fstab_saved=$work/fstab.saved
cp /etc/fstab "$fstab_saved"
daemon=""
installed=0
failures=0 checks=0
cleanup() {
  mountpoint -q "$work/mnt" 2>/dev/null && umount -l "$work/mnt"
  [[ -n $daemon ]] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  cp "$fstab_saved" /etc/fstab
  ((installed)) && dpkg -P fsout >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
check() {
  local what=$1
  shift
  checks=$((checks + 1))
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; failures=$((failures + 1)); fi
}
equal() { [[ "$1" == "$2" ]] || { echo "   got '$1', expected '$2'" >&2; return 1; }; }
wait_for() {
  local limit=$(($1 * 10))
  shift
  for ((i = 0; i < limit; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# 1. The one command (its build goes to build-deb/ of the source tree).
deb=$(bash "$source_dir/scripts/build-deb.sh" "$work/deb" | tail -n 1)
check "the package is built" test -f "$deb"
depends=$(dpkg-deb -f "$deb" Depends)
for library in fuse3 libfuse3-3 libspdlog libseccomp2 libcap-ng0 libstdc++6; do
  check "it depends on $library" grep -q "$library" <<<"$depends"
done
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/contents"
# Debian's own checker: no error and no warning (its overrides are in the package).
lintian_said=$(
  lintian --fail-on error,warning "$deb" 2>&1 | grep -v 'running with root privileges'
  exit "${PIPESTATUS[0]}"
) || lintian_said+=" (exit status $?)"
check "lintian finds no error and no warning" equal "$lintian_said" ""

# 2. Installed, from /usr.
dpkg -i "$deb" >/dev/null
installed=1
check "fsoutd is /usr/sbin/fsoutd" bash -c "/usr/sbin/fsoutd --version | grep -q '^fsoutd '"
check "fsout-mount is /usr/bin/fsout-mount" bash -c "/usr/bin/fsout-mount --version | grep -q '^fsout-mount '"
check "mount(8) finds mount.fsout in /sbin" test -x /sbin/mount.fsout
check "man fsoutd finds the installed page" bash -c "man -w fsoutd | grep -q /usr/share/man/man8/fsoutd.8"
check "man fsoutd.conf is section 5" bash -c "man -w 5 fsoutd.conf | grep -q man5"
check "man mount.fsout finds fsout-mount's page" bash -c "man mount.fsout | grep -q 'mount.fsout'"
check "the package says what it may be used for" test -s /usr/share/doc/fsout/copyright
check "the configuration is a conffile" bash -c "dpkg-query -W -f='\${Conffiles}' fsout | grep -q /etc/fsout/fsoutd.conf"
units=/usr/lib/systemd/system
mkdir -p "$work/units"
cp "$units/fsoutd.service" "$work/units/"
cp "$units/fsoutd@.service" "$work/units/fsoutd@pkgtest.service"
cp "$units/fsoutd@.socket" "$work/units/fsoutd@pkgtest.socket"
# systemd-analyze prints nothing for good units; any line is a problem it found.
verify=$(cd "$work/units" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
  fsoutd.service fsoutd@pkgtest.service fsoutd@pkgtest.socket 2>&1 || echo "(exit status $?)")
check "systemd-analyze verify passes on the installed units" equal "$verify" ""
# `systemctl enable` as the docs say it (offline, in a root of its own): each unit says
# where it belongs.
mkdir -p "$work/root/usr/lib/systemd/system"
cp "$units"/fsoutd* "$work/root/usr/lib/systemd/system/"
check "systemctl enable takes the units" systemctl --root="$work/root" --quiet enable \
  fsoutd.service fsoutd@pkgtest.service fsoutd@pkgtest.socket
check "fsoutd.service starts with the system" \
  test -L "$work/root/etc/systemd/system/multi-user.target.wants/fsoutd.service"
check "an export's instance starts with the system" \
  test -L "$work/root/etc/systemd/system/multi-user.target.wants/fsoutd@pkgtest.service"
check "an export's socket is there at boot" \
  test -L "$work/root/etc/systemd/system/sockets.target.wants/fsoutd@pkgtest.socket"

# 3. An export in /etc/fsout/exports.d, mounted from /etc/fstab before the daemon is up.
mkdir -p "$work/export" "$work/mnt"
cat >/etc/fsout/exports.d/pkgtest.conf <<CONF
[export pkgtest]
path = $work/export
listen = unix:$work/pkgtest.sock
CONF
echo "unix:$work/pkgtest.sock $work/mnt fsout _netdev,nofail,wait=20,x-systemd.mount-timeout=30,allow_other 0 0" >>/etc/fstab
mount "$work/mnt" 2>"$work/mount.log" &
mounting=$!
sleep 2
exec_start=$(sed -n 's/^ExecStart=//p' "$units/fsoutd.service")
check "the unit runs fsoutd --config /etc/fsout/fsoutd.conf" \
  equal "$exec_start" "/usr/sbin/fsoutd --config /etc/fsout/fsoutd.conf"
# shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
setsid $exec_start </dev/null 2>"$work/fsoutd.log" &
daemon=$!
check "mount(8) waited for the daemon and mounted" wait $mounting
check "the mount is an fsout one" equal "$(findmnt -n -o FSTYPE "$work/mnt")" fuse.fsout
head -c $((3 * 1048576)) /dev/urandom >"$work/data"
cp "$work/data" "$work/mnt/data"
sync "$work/mnt/data"
check "what was written through the mount is on the host" cmp "$work/data" "$work/export/data"
for i in 1 2 3 4 5; do ls "$work/mnt/missing$i" 2>/dev/null && echo "missing$i exists?"; done

# 4. What the daemon counted (admin socket of the installed configuration).
stats=$(/usr/bin/fsout admin unix:/run/fsout/admin.sock stats --json)
field() { jq -r ".exports[] | select(.name == \"pkgtest\") | $1" <<<"$stats"; }
check "fsout admin: 3 MiB written" equal "$(field .totals.bytes_written)" $((3 * 1048576))
check "fsout admin: the 5 missing names failed LOOKUPs" test "$(field .totals.operations.LOOKUP.errors)" -ge 5
check "fsout admin: one session, a Linux guest" equal "$(field '"\(.sessions_now) \(.sessions[0].guest_os)"')" "1 linux"
check "fsout admin: state in /run/fsout/state/pkgtest" test -d /run/fsout/state/pkgtest
check "the daemon logs through its export's process" grep -q "fsoutd\[pkgtest\]: .*session started" "$work/fsoutd.log"

# 5. Unmounted, stopped as systemd stops it (SIGTERM), purged: nothing left.
umount "$work/mnt"
kill "$daemon"
wait "$daemon" || true
daemon=""
cp "$fstab_saved" /etc/fstab
rm /etc/fsout/exports.d/pkgtest.conf
dpkg -P fsout >/dev/null
installed=0
left=()
while read -r path; do
  [[ -z $path || -d $path && ! -L $path && $path != /etc/fsout* && $path != */fsout* ]] && continue
  [[ -e $path || -L $path ]] && left+=("$path")
done <"$work/contents"
check "dpkg -P leaves none of the package's files" equal "${left[*]-}" ""
check "no /etc/fsout, no /run/fsout, no /usr/share/doc/fsout" \
  bash -c "! ls -d /etc/fsout /run/fsout /usr/share/doc/fsout 2>/dev/null"
check "no fsoutd left running" bash -c "! pgrep -x fsoutd"
if ((failures)); then
  echo "--- fsoutd log"
  cat "$work/fsoutd.log" || true
  echo "--- mount log"
  cat "$work/mount.log" || true
fi
echo "package_test: $checks checks, $failures failed"
((failures == 0))
