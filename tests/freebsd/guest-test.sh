#!/bin/sh
# Runs inside the FreeBSD guest as the kit's /etc/rc.test: mounts the host's export over
# virtio-serial and checks it. Every check prints "FSOUT-FREEBSD: PASS name" or
# "FSOUT-FREEBSD: FAIL name why"; the host (run-freebsd-test.sh) reads them from the console
# and checks the rest.
M=/tmp/mnt
PORT=serial:/dev/ttyV0.1
pass() { echo "FSOUT-FREEBSD: PASS $1"; }
fail() { echo "FSOUT-FREEBSD: FAIL $1 $2"; }
mkdir -p $M /tmp/ufs /tmp/out
# fusefs warns of an incoherent cache once per mount, in the kernel's message buffer: after each
# step, say which step first made it warn (the host fails the test on any warning).
warned=0
check_console() {
  if [ $warned = 0 ] && sysctl -n kern.msgbuf | grep -q "incoherent\|protocol violation"; then
    warned=1
    echo "FSOUT-FREEBSD: FAIL no-incoherence fusefs warned during step $1"
  fi
}

# The guest's own UFS, for the battery's reference transcript.
if mdconfig -a -t swap -s 64m -u 9 && newfs -U /dev/md9 >/dev/null && mount /dev/md9 /tmp/ufs; then
  pass ufs
else fail ufs "no UFS"; fi

if fsout-mount -o allow_other $PORT $M; then pass mount; else fail mount "fsout-mount failed"; echo "FSOUT-FREEBSD: DONE"; exit 1; fi
# fsout-mount returns once the mount is in place (libfuse's mount_fusefs finishes later).
if mount | grep -q " on $M (fusefs"; then pass mounted-on-return; else fail mounted-on-return "$(mount | tail -n 1)"; fi

# 1. The battery on UFS and on the mount.
mkdir /tmp/ufs/battery $M/battery
sh /bin/battery.sh /tmp/ufs/battery >/tmp/battery-ufs.txt 2>&1 && pass battery-ufs || fail battery-ufs
if sh /bin/battery.sh $M/battery >/tmp/battery-fsout.txt 2>&1; then pass battery-fsout
else fail battery-fsout "$(head -n 3 /tmp/battery-fsout.txt | tr '\n' ' ')"; fi
rmdir $M/battery
# The system calls the shell cannot make (locks, extattr_*, open flags), the same way.
mkdir /tmp/ufs/syscalls $M/syscalls
fsout-freebsd-syscalls /tmp/ufs/syscalls >>/tmp/battery-ufs.txt 2>&1 || fail syscalls-ufs
fsout-freebsd-syscalls $M/syscalls >>/tmp/battery-fsout.txt 2>&1 || fail syscalls-fsout
rmdir $M/syscalls
cp /tmp/battery-ufs.txt /tmp/battery-fsout.txt $M/results/
check_console battery

# 2. Files written on the host read back right in the guest.
(cd $M/fromhost && md5 -r f* | sort -k2 >/tmp/sums.txt)
if cmp -s /tmp/sums.txt $M/results/host-sums.txt; then pass host-to-guest
else fail host-to-guest "$(diff /tmp/sums.txt $M/results/host-sums.txt | head -n 4 | tr '\n' ' ')"; fi
check_console host-to-guest

# 3. Files written in the guest (checksummed here, before they cross), checked on the host.
mkdir -p $M/fromguest
for size in 0 1 4095 4096 65537 1048576 3000001; do
  head -c $size /dev/random >/tmp/out/f$size
done

(cd /tmp/out && md5 -r f* | sort -k2 >/tmp/guest-sums.txt)
cp /tmp/out/f* $M/fromguest/ && cp /tmp/guest-sums.txt $M/results/guest-sums.txt && pass guest-wrote || fail guest-wrote
check_console guest-wrote

# 4. Bulk: 64 MiB written through the mount and read back (dd prints the rates).
dd if=/dev/random of=/tmp/big64 bs=1m count=64 2>/dev/null
md5 -q /tmp/big64 >/tmp/big64.md5
echo "bulk write:"; if dd if=/tmp/big64 of=$M/big64 bs=1m 2>&1 | tail -n 1; then pass bulk-write; else fail bulk-write; fi
cp /tmp/big64.md5 $M/results/big64.md5
rm /tmp/big64
echo "bulk read (just written):"; dd if=$M/big64 of=/dev/null bs=1m 2>&1 | tail -n 1
if [ "$(md5 -q $M/big64)" = "$(cat /tmp/big64.md5)" ]; then pass bulk-read; else fail bulk-read "checksum differs"; fi
echo "bulk cold read (written on the host):"; dd if=$M/cold64 of=/dev/null bs=1m 2>&1 | tail -n 1
if [ "$(md5 -q $M/cold64)" = "$(cat $M/results/cold64.md5)" ]; then pass bulk-cold-read; else fail bulk-cold-read "checksum differs"; fi
check_console bulk
# The same 64 MiB on the guest's own UFS on a virtual disk (virtio-blk), for comparison.
if [ -e /dev/vtbd0 ] && newfs -U /dev/vtbd0 >/dev/null 2>&1 && mkdir -p /tmp/disk && mount /dev/vtbd0 /tmp/disk; then
  echo "ufs disk write:"; dd if=$M/cold64 of=/tmp/disk/big64 bs=1m conv=fsync 2>&1 | tail -n 1
  umount /tmp/disk && mount /dev/vtbd0 /tmp/disk
  echo "ufs disk cold read:"; dd if=/tmp/disk/big64 of=/dev/null bs=1m 2>&1 | tail -n 1
  umount /tmp/disk
fi

# 5. A change made on the host is seen here (the host changes the file when asked).
# The host also makes a name the guest has looked up and not found (a cached negative entry)
# and adds a file to a directory the guest has listed (a cached listing).
[ "$(cat $M/coherence)" = before ] || fail coherence "unexpected start: $(cat $M/coherence)"
[ ! -e $M/coherence-new ] || fail coherence "coherence-new exists before the host made it"
[ -z "$(ls $M/coherence-dir)" ] || fail coherence "coherence-dir is not empty at the start"
seen() { [ "$(cat $M/coherence)" = after ] && [ -e $M/coherence-new ] && [ "$(ls $M/coherence-dir)" = added ]; }
: >$M/results/coherence-ready
i=0
while ! seen && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if seen; then echo "coherence: seen after $i polls of 0.1 s"; pass coherence
else fail coherence "after 10 s: $(cat $M/coherence), new: $(ls $M/coherence-new 2>&1), listing: $(ls $M/coherence-dir)"; fi
check_console coherence

# 6. The data-integrity exerciser on the mount.
mkdir $M/integrity
if fsout-exerciser --seed 1401 --ops "${KIT_EXERCISER_OPS:-6000}" $M/integrity >/tmp/exerciser.out 2>/tmp/exerciser.err; then
  pass exerciser
else
  fail exerciser "$(head -n 3 /tmp/exerciser.err | tr '\n' ' ')"
  cat /tmp/exerciser.err
fi
head -n 1 /tmp/exerciser.out
rm -rf $M/integrity
check_console exerciser

umount $M
umount /tmp/ufs
echo "FSOUT-FREEBSD: DONE"
