#!/usr/bin/env bash
# Checks the files under dist/libvirt and dist/guest (ctest -L dist):
#  (a) every libvirt domain XML against libvirt's schema (virt-xml-validate);
#  (b) the guest's systemd units (systemd-analyze verify), and every mount line of
#      dist/guest/fstab.example through systemd's own fstab generator, then verified;
#  (c) the libvirt hook with a stub systemctl and a temporary configuration directory;
#  (d) the FreeBSD rc.d script: sh -n, and its start/stop/status run against a stub
#      rc.subr and stub FreeBSD commands;
#  (e) shellcheck on the shell scripts, when it is installed.
# Usage: dist_test.sh SOURCE_DIR. Needs: libvirt-clients (virt-xml-validate), systemd
# (systemd-analyze, systemd-fstab-generator), dash; shellcheck optional.
set -euo pipefail

src=$(cd "${1:?usage: dist_test.sh SOURCE_DIR}" && pwd)
work=$(mktemp -d /tmp/fsout-dist-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

failures=0
checks=0
pass() { checks=$((checks + 1)); printf 'ok    %s\n' "$*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); printf 'FAIL  %s\n' "$*"; }
note() { printf 'note  %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "dist_test.sh: $1 is missing (Debian package $2)" >&2; exit 1; }
}
need virt-xml-validate libvirt-clients
need systemd-analyze systemd
need dash dash

# ---------------------------------------------------------------- (a) libvirt XML
xmls=("$src"/dist/libvirt/*.xml)
[[ -e ${xmls[0]} ]] || { fail "no dist/libvirt/*.xml"; xmls=(); }
for xml in "${xmls[@]}"; do
  name=${xml#"$src"/}
  if out=$(virt-xml-validate "$xml" domain 2>&1); then
    pass "$name: $out"
  else
    fail "$name: virt-xml-validate: $out"
  fi
  # The port name must be the one the guests look for (docs/vm.md: /dev/virtio-ports/fsout,
  # FreeBSD /dev/vtcon/fsout), and QEMU must be the client of fsoutd's socket.
  if grep -q "<target type='virtio' name='fsout'/>" "$xml" &&
     grep -q "<source mode='connect' path='/run/fsout/[A-Za-z0-9_.-]*\.sock'>" "$xml" &&
     grep -q "<reconnect enabled='yes' timeout='1'/>" "$xml"; then
    pass "$name: channel 'fsout' connects to /run/fsout/*.sock with reconnect"
  else
    fail "$name: no virtio channel named 'fsout' connecting to /run/fsout/NAME.sock with reconnect"
  fi
done

# ---------------------------------------------------------------- (b) systemd units
units=$work/units
mkdir -p "$units"
cp "$src/dist/guest/mnt-host.mount" "$src/dist/guest/mnt-host.automount" "$units/"
# verify checks the unit's name against Where=, its settings and its dependencies. On
# systemd 252 it does not look for the mount helper (/sbin/mount.fsout), so this needs no
# installed fsout. A setting systemd cannot parse is only a warning ("ignoring") with exit
# status 0, so any output counts as a failure.
if out=$(cd "$units" && systemd-analyze verify --man=no ./mnt-host.mount ./mnt-host.automount 2>&1) &&
   [[ -z $out ]]; then
  pass "dist/guest/mnt-host.mount, mnt-host.automount: systemd-analyze verify"
else
  fail "dist/guest/mnt-host.mount, mnt-host.automount: systemd-analyze verify: $out"
fi
expect_line() { # FILE LINE DESCRIPTION
  if grep -qxF -- "$2" "$1"; then pass "$3"; else fail "$3: no line '$2' in ${1#"$src"/}"; fi
}
mount_unit=$src/dist/guest/mnt-host.mount
expect_line "$mount_unit" 'What=serial:/dev/virtio-ports/fsout' "mnt-host.mount: What= is the port udev names"
expect_line "$mount_unit" 'Type=fsout' "mnt-host.mount: Type=fsout (mount.fsout)"
device=$(systemd-escape --path --suffix=device /dev/virtio-ports/fsout)
expect_line "$mount_unit" "After=$device" "mnt-host.mount: ordered after $device"
expect_line "$mount_unit" "Wants=$device" "mnt-host.mount: wants $device"
if grep -qF 'ATTR{name}=="fsout", TAG+="systemd"' "$src/dist/guest/99-fsout.rules"; then
  pass "99-fsout.rules tags the port 'fsout' for systemd (so $device exists)"
else
  fail "99-fsout.rules does not tag the port 'fsout' for systemd"
fi

# fstab.example: every mount line (the active one and the commented alternatives) on its
# own through systemd-fstab-generator, as systemd would read it at boot.
generator=""
for g in /usr/lib/systemd/system-generators/systemd-fstab-generator \
         /lib/systemd/system-generators/systemd-fstab-generator; do
  [[ -x $g ]] && { generator=$g; break; }
done
if [[ -z $generator ]]; then
  fail "systemd-fstab-generator not found (package systemd)"
else
  n=0
  while IFS= read -r line; do
    n=$((n + 1))
    entry=${line#\#}
    tab=$work/fstab.$n out=$work/gen.$n
    printf '%s\n' "$entry" >"$tab"
    mkdir -p "$out"
    what=${entry%%[[:space:]]*}
    if ! err=$(SYSTEMD_FSTAB=$tab SYSTEMD_LOG_LEVEL=warning "$generator" "$out" "$out" "$out" 2>&1) ||
       [[ -n $err ]]; then
      fail "fstab.example line '$what': systemd-fstab-generator: $err"
      continue
    fi
    if [[ ! -f $out/mnt-host.mount ]]; then
      fail "fstab.example line '$what': the generator made no mnt-host.mount ($err)"
      continue
    fi
    # _netdev + nofail: wanted (not required) by remote-fs.target, not part of local-fs.
    case "$entry" in
    *x-systemd.automount*) wanted=$out/remote-fs.target.wants/mnt-host.automount ;;
    *) wanted=$out/remote-fs.target.wants/mnt-host.mount ;;
    esac
    if [[ -L $wanted && ! -e $out/remote-fs.target.requires/mnt-host.mount &&
          ! -e $out/local-fs.target.requires/mnt-host.mount ]]; then
      pass "fstab.example line '$what': remote-fs.target wants $(basename "$wanted"), nothing requires it"
    else
      fail "fstab.example line '$what': expected only remote-fs.target.wants/$(basename "$wanted"): $(cd "$out" && find . -name 'mnt-host.*' | tr '\n' ' ')"
    fi
    if grep -qx 'TimeoutSec=1min 30s' "$out/mnt-host.mount"; then
      pass "fstab.example line '$what': x-systemd.mount-timeout=90 became TimeoutSec=1min 30s"
    else
      fail "fstab.example line '$what': mount timeout: $(grep '^TimeoutSec' "$out/mnt-host.mount" || echo none)"
    fi
    verify_units=(./mnt-host.mount)
    [[ -f $out/mnt-host.automount ]] && verify_units+=(./mnt-host.automount)
    if vout=$(cd "$out" && systemd-analyze verify --man=no "${verify_units[@]}" 2>&1) && [[ -z $vout ]]; then
      pass "fstab.example line '$what': generated ${verify_units[*]#./} verify"
    else
      fail "fstab.example line '$what': generated units: systemd-analyze verify: $vout"
    fi
  done < <(grep -E '^#?(serial|vsock|tcp|unix):[^[:space:]]+[[:space:]]+/mnt/host[[:space:]]+fsout[[:space:]]' \
             "$src/dist/guest/fstab.example")
  if ((n >= 3)); then
    pass "fstab.example: $n mount lines checked (serial, vsock, tcp)"
  else
    fail "fstab.example: only $n mount lines of type fsout on /mnt/host found"
  fi
fi

# ---------------------------------------------------------------- (c) the libvirt hook
hook=$src/dist/libvirt/hooks/qemu
bin=$work/bin
mkdir -p "$bin"
# A stub systemctl: records its arguments; FAKE_SYSTEMCTL_FAIL=1 makes start fail,
# FAKE_IS_ENABLED=1 makes is-enabled answer yes. It writes to stdout too, as systemctl
# may: the hook must keep that off its own stdout.
cat >"$bin/systemctl" <<'EOF'
#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_SYSTEMCTL_LOG"
echo "systemctl stub: $*"
case "$1" in
is-enabled) [ "${FAKE_IS_ENABLED:-0}" = 1 ] && exit 0; exit 1 ;;
start) [ "${FAKE_SYSTEMCTL_FAIL:-0}" = 1 ] && exit 1; exit 0 ;;
esac
exit 0
EOF
chmod +x "$bin/systemctl"
conf=$work/etc-fsout
mkdir -p "$conf/exports.d"
cat >"$conf/fsoutd.conf" <<'EOF'
# fsoutd.conf for the hook test
[export vm1]
path = /srv/vm1
listen = unix:/run/fsout/vm1.sock

  [export   vm-10 ]  
path = /srv/vm10

[ export vm4]
path = /srv/not-a-section-for-fsoutd

[export vmx1]
path = /srv/vmx1
EOF
printf '# vm2\n[export vm2]\npath = /srv/vm2\n' >"$conf/exports.d/vm2.conf"
printf '[export vm3]\npath = /srv/vm3\n' >"$conf/exports.d/more.conf"
: >"$conf/exports.d/vm5.conf"   # a file without a section defines no export
printf '[export vm6]\npath = /srv/vm6\n' >"$conf/exports.d/vm6.conf.disabled"
domain_xml="<domain type='kvm'><name>x</name></domain>"

# run_hook EXPECTED_STATUS EXPECTED_CALLS DESCRIPTION -- ARGS... (env via FAKE_*/FSOUT_*)
run_hook() {
  local want_status=$1 want_calls=$2 what=$3
  shift 4
  : >"$work/calls"
  local status=0 stdout
  stdout=$(printf '%s' "$domain_xml" |
    PATH="$bin:$PATH" FAKE_SYSTEMCTL_LOG=$work/calls FSOUT_CONF_DIR=${FSOUT_CONF_DIR:-$conf} \
      "$hook" "$@" 2>"$work/stderr") || status=$?
  local calls
  calls=$(paste -sd '|' "$work/calls")
  if [[ $status == "$want_status" && $calls == "$want_calls" && -z $stdout ]]; then
    pass "hook $*: $what"
  else
    fail "hook $*: $what: status $status (want $want_status), systemctl calls '$calls' (want '$want_calls'), stdout '$stdout', stderr: $(cat "$work/stderr")"
  fi
}
run_hook 0 'start fsoutd@vm1.socket' "[export vm1] in fsoutd.conf: socket started" -- vm1 prepare begin -
run_hook 0 'is-enabled --quiet fsoutd@vm1.socket|stop fsoutd@vm1.socket fsoutd@vm1.service' \
  "release: socket and service stopped" -- vm1 release end shutdown
FAKE_IS_ENABLED=1 run_hook 0 'is-enabled --quiet fsoutd@vm1.socket' \
  "release of an enabled socket: left running" -- vm1 release end destroyed
run_hook 0 'start --no-block fsoutd@vm1.socket' "libvirtd restart: started without waiting" -- vm1 reconnect begin -
run_hook 0 '' "other operations: nothing" -- vm1 started begin -
run_hook 0 '' "other operations: nothing" -- vm1 stopped end -
run_hook 0 '' "migrate (XML filter): nothing, no output" -- vm1 migrate begin -
run_hook 0 'start fsoutd@vm2.socket' "[export vm2] in exports.d/vm2.conf: socket started" -- vm2 prepare begin -
run_hook 0 'start fsoutd@vm3.socket' '[export vm3] in exports.d/more.conf: socket started' -- vm3 prepare begin -
run_hook 0 'start fsoutd@vm-10.socket' "'  [export   vm-10 ]  ' (blanks): socket started" -- vm-10 prepare begin -
run_hook 0 '' "'[ export vm4]' is no section for fsoutd: nothing" -- vm4 prepare begin -
run_hook 0 '' "an exports.d/vm5.conf without a section: nothing" -- vm5 prepare begin -
run_hook 0 '' "exports.d/*.conf.disabled is not read: nothing" -- vm6 prepare begin -
run_hook 0 '' "a name with ':' (no export name): nothing" -- vm:1 prepare begin -
run_hook 0 '' "unrelated domain: nothing" -- web prepare begin -
run_hook 0 '' "unrelated domain: nothing" -- web release end shutdown
run_hook 0 '' "vm is a prefix of vm1/vm-10, not an export" -- vm prepare begin -
run_hook 0 '' "vm.1: '.' is no pattern (vmx1 exists)" -- vm.1 prepare begin -
run_hook 0 '' "a name with a space: nothing" -- "my vm" prepare begin -
run_hook 0 '' "a name with a slash: nothing" -- "../vm1" prepare begin -
run_hook 0 '' "no arguments: nothing" --
FSOUT_CONF_DIR=$work/nonexistent run_hook 0 '' "no configuration directory: nothing" -- vm1 prepare begin -
FAKE_SYSTEMCTL_FAIL=1 run_hook 1 'start fsoutd@vm1.socket' \
  "the socket does not start: the domain's start fails" -- vm1 prepare begin -
FAKE_SYSTEMCTL_FAIL=1 FSOUT_HOOK_STRICT=0 run_hook 0 'start fsoutd@vm1.socket' \
  "FSOUT_HOOK_STRICT=0: only a warning" -- vm1 prepare begin -
FAKE_SYSTEMCTL_FAIL=1 run_hook 0 '' "a failing systemctl never touches other domains" -- web prepare begin -
if [[ $(stat -c %a "$hook") == *[1357] ]]; then
  pass "dist/libvirt/hooks/qemu is executable"
else
  fail "dist/libvirt/hooks/qemu is not executable (mode $(stat -c %a "$hook"))"
fi

# ---------------------------------------------------------------- (d) FreeBSD rc.d
rcd=$src/dist/guest/freebsd/rc.d/fsout
for shell in dash "bash --posix"; do
  if out=$($shell -n "$rcd" 2>&1); then pass "rc.d/fsout: $shell -n"; else fail "rc.d/fsout: $shell -n: $out"; fi
done
for header in '# PROVIDE: fsout' '# REQUIRE: FILESYSTEMS kld NETWORKING' '# KEYWORD: shutdown nojail'; do
  expect_line "$rcd" "$header" "rc.d/fsout: rcorder header '$header'"
done
# Run it with dash against a stub rc.subr (the parts of FreeBSD's rc.subr it uses) and stub
# kldstat/kldload/mount/umount/fsout-mount. Only the path of rc.subr is changed in the copy.
fb=$work/freebsd
mkdir -p "$fb/bin" "$fb/etc"
cat >"$fb/rc.subr" <<'EOF'
warn() { echo "$0: WARNING: $*" >&2; }
err() { _c=$1; shift; echo "$0: ERROR: $*" >&2; exit "$_c"; }
load_rc_config() { . "$FB/etc/rc.conf"; }
checkyesno() { eval "_v=\${$1}"; case $_v in [Yy][Ee][Ss]) return 0 ;; *) return 1 ;; esac; }
reverse_list() { _r=; for _f; do _r="$_f $_r"; done; echo $_r; }
run_rc_command() {
  checkyesno "$rcvar" || { echo "not enabled"; return 0; }
  case "$1" in
  start) $start_cmd ;; stop) $stop_cmd ;;
  status) case " $extra_commands " in *" status "*) $status_cmd ;; *) return 1 ;; esac ;;
  *) return 1 ;;
  esac
}
EOF
for cmd in kldstat kldload umount fsout-mount; do
  printf '#!/bin/sh\necho "%s $*" >>"$FB/calls"\n' "$cmd" >"$fb/bin/$cmd"
done
echo 'exit "${FB_KLDSTAT:-0}"' >>"$fb/bin/kldstat"
cat >>"$fb/bin/fsout-mount" <<'EOF'
for last; do :; done
echo "fsout-mount $last fusefs.fsout rw 0 0" >>"$FB/mounted"
EOF
cat >>"$fb/bin/umount" <<'EOF'
grep -v " $1 " "$FB/mounted" >"$FB/mounted.new" || :; mv "$FB/mounted.new" "$FB/mounted"
EOF
printf '#!/bin/sh\n[ "$1" = -p ] && cat "$FB/mounted"\n' >"$fb/bin/mount"
chmod +x "$fb/bin/"*
sed "s|^\. /etc/rc.subr\$|. \"\$FB/rc.subr\"|" "$rcd" >"$fb/fsout"
grep -q '^\. "$FB/rc.subr"$' "$fb/fsout" || fail "rc.d/fsout does not source /etc/rc.subr on a line of its own"
cat >"$fb/etc/rc.conf" <<EOF
fsout_enable="YES"
fsout_mounts="host data"
fsout_program="$fb/bin/fsout-mount"
fsout_host_source="serial:/dev/vtcon/fsout"
fsout_host_mountpoint="$fb/mnt/host"
fsout_data_source="tcp:192.168.122.1:7000"
fsout_data_mountpoint="$fb/mnt/data"
fsout_data_options="ro,wait=5"
EOF
rc() { : >"$fb/calls"; FB=$fb PATH="$fb/bin:$PATH" dash "$fb/fsout" "$@" >"$fb/out" 2>&1; }
expect_calls() { # DESCRIPTION EXPECTED
  local calls
  calls=$(paste -sd '|' "$fb/calls")
  if [[ $calls == "$2" ]]; then pass "rc.d/fsout $1"; else fail "rc.d/fsout $1: calls '$calls', want '$2'; output: $(cat "$fb/out")"; fi
}
: >"$fb/mounted"
FB_KLDSTAT=1 rc start || fail "rc.d/fsout start: exit status $?: $(cat "$fb/out")"
expect_calls "start: loads fusefs, mounts each with its options" \
  "kldstat -q -m fusefs|kldload fusefs|fsout-mount -o allow_other,wait=60 serial:/dev/vtcon/fsout $fb/mnt/host|fsout-mount -o ro,wait=5 tcp:192.168.122.1:7000 $fb/mnt/data"
[[ -d $fb/mnt/host && -d $fb/mnt/data ]] && pass "rc.d/fsout start: mount points made" ||
  fail "rc.d/fsout start: mount points not made"
rc start || fail "rc.d/fsout start again: exit status $?: $(cat "$fb/out")"
expect_calls "start again: fusefs there, nothing mounted twice" "kldstat -q -m fusefs"
if rc status && grep -q "host: serial:/dev/vtcon/fsout mounted on $fb/mnt/host" "$fb/out"; then
  pass "rc.d/fsout status: both mounted"
else
  fail "rc.d/fsout status: $(cat "$fb/out")"
fi
rc stop || fail "rc.d/fsout stop: exit status $?: $(cat "$fb/out")"
expect_calls "stop: unmounts, newest first" "umount $fb/mnt/data|umount $fb/mnt/host"
if rc status; then fail "rc.d/fsout status after stop: exit 0: $(cat "$fb/out")"; else pass "rc.d/fsout status after stop: not mounted, exit 1"; fi
echo 'fsout_enable="NO"' >>"$fb/etc/rc.conf"
rc start && grep -q "not enabled" "$fb/out" && [[ ! -s $fb/calls ]] &&
  pass "rc.d/fsout start with fsout_enable=NO: nothing" || fail "rc.d/fsout start with fsout_enable=NO: $(cat "$fb/out")"

# ---------------------------------------------------------------- (e) shellcheck
if command -v shellcheck >/dev/null 2>&1; then
  # SC1091: /etc/rc.subr is not here; SC3043: 'local', which FreeBSD's sh has.
  for script in "$hook" "$rcd"; do
    if out=$(shellcheck -s sh -e SC1091,SC3043 "$script" 2>&1); then
      pass "shellcheck ${script#"$src"/}"
    else
      fail "shellcheck ${script#"$src"/}: $out"
    fi
  done
else
  note "shellcheck not installed: the scripts were not linted (Debian package shellcheck)"
fi

echo "dist_test.sh: $checks checks, $failures failed"
((failures == 0))
