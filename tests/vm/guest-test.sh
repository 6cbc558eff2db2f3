#!/bin/sh
# Runs inside the guest: mounts the host's export over virtio-serial and
# checks it. Every check prints "FSOUT-VM: PASS name" or "FSOUT-VM: FAIL name";
# the host (run-vm-test.sh) reads them from the console and checks the rest.
M=/mnt/host
PORT=serial:/dev/virtio-ports/fsout
pass() { echo "FSOUT-VM: PASS $1"; }
fail() { echo "FSOUT-VM: FAIL $1 $2"; }
mounted() { grep -q " $M fuse" /proc/mounts; }
# In the foreground (in the background of this shell), so that what it says goes to a log
# the checks can show; mounted once the mount is there.
mount_fsout() {
  fsout-mount -f -o allow_other,default_permissions "$PORT" "$M" 2>>/tmp/mount.log &
  i=0
  while ! mounted && kill -0 $! 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
  mounted
}
# What the guest's side looks like when something hangs: fsout-mount's log, and where each
# thread of fsout-mount and of the programs waits.
show_state() {
  echo "FSOUT-VM: state of the guest:"
  tail -n 30 /tmp/mount.log
  for pid in $(pidof fsout-mount) $(pidof restart-programs-static); do
    for task in /proc/$pid/task/*; do
      echo "task $task $(cat $task/comm) $(cat $task/wchan 2>/dev/null)"
      head -n 12 $task/stack 2>/dev/null
    done
  done
}
wait_unmounted() {
  i=0
  while mounted && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
  ! mounted
}

if mount_fsout && mounted; then pass mount; else fail mount "fsout-mount did not mount"; exit 1; fi
mkdir -p $M/results

# 1. The syscall battery on the mount (the host compares its transcript).
mkdir $M/battery
battery $M/battery >/tmp/transcript.txt 2>/tmp/battery.err && pass battery-ran || fail battery-ran "$(tail -n 2 /tmp/battery.err)"
rmdir $M/battery
cp /tmp/transcript.txt $M/results/transcript.txt

# 1b. The data-integrity exerciser over virtio-serial (seeded; the files it leaves
#     are checksummed here and checked on the host, so the host's files are
#     witnesses too).
mkdir $M/integrity
if fsout-exerciser-static --seed 1301 --ops "${EXERCISER_OPS:-12000}" --require-fallocate --keep \
    $M/integrity >/tmp/exerciser.out 2>/tmp/exerciser.err; then
  (cd $M/integrity && sha256sum exerciser-* >/tmp/integrity-sums.txt) &&
    cp /tmp/integrity-sums.txt $M/results/integrity-sums.txt && pass exerciser
else
  fail exerciser "$(head -n 4 /tmp/exerciser.err | tr '\n' ' ')"
  cat /tmp/exerciser.err
fi
head -n 1 /tmp/exerciser.out

# 2. Files written on the host read back right in the guest.
if (cd $M/fromhost && sha256sum -c SHA256SUMS >/tmp/sums.log 2>&1); then pass host-to-guest
else fail host-to-guest "$(grep -v OK /tmp/sums.log | head -n 3)"; fi

# 3. Files written in the guest (checksummed here, before they cross) are
#    checked on the host.
mkdir -p /tmp/out $M/fromguest
for size in 0 1 4095 4096 65537 1048576 3000001; do
  head -c $size /dev/urandom >/tmp/out/f$size
done
(cd /tmp/out && sha256sum f* >/tmp/guest-sums.txt)
cp /tmp/out/f* $M/fromguest/ && cp /tmp/guest-sums.txt $M/results/guest-sums.txt && pass guest-wrote || fail guest-wrote

# 4. fsout-mount restarted on the same open port: stopped cleanly...
big_sum=$(grep ' big$' $M/fromhost/SHA256SUMS | cut -d' ' -f1)
big_ok() { [ "$(sha256sum <$M/fromhost/big | cut -d' ' -f1)" = "$big_sum" ]; }
kill "$(pidof fsout-mount)"
if wait_unmounted && mount_fsout && big_ok; then pass restart-mount; else fail restart-mount; fi

# ...and killed in the middle of a transfer (leftover bytes on the port).
cat $M/fromhost/big >/dev/null &
reader=$!
sleep 0.3
kill -9 "$(pidof fsout-mount)"
kill -9 $reader 2>/dev/null
wait $reader 2>/dev/null
umount -l $M 2>/dev/null
if mount_fsout && big_ok; then pass crash-mount; else fail crash-mount; fi

# 5. The host kills fsoutd with SIGKILL three times, stops it with SIGTERM and starts an
#    upgraded build, each time starting it again; QEMU reconnects its chardev
#    (reconnect=1) and fsout-mount resumes the session on the same port. The programs
#    (restart-programs: files open for read, write and append, one unlinked while open, an
#    open directory, a POSIX lock and a flock, a create/rename/unlink loop) see no error;
#    the mount never goes away, inode numbers stay.
mkdir -p $M/restart
ino_before=$(stat -c %i $M/restart)
restart-programs-static $M/restart $M/results/host-restarted >/tmp/restart.out 2>&1 &
programs=$!
sleep 2
echo ready >$M/results/host-restart-ready
# They take about 30 s; one that hangs is shown and stopped, so the rest still runs.
(
  sleep 240
  if kill -0 $programs 2>/dev/null; then
    echo "FSOUT-VM: the restart programs hang"
    show_state
    kill -9 $programs
  fi
) &
watchdog=$!
wait $programs
status=$?
kill $watchdog 2>/dev/null
cat /tmp/restart.out
if [ $status = 0 ] && mounted && [ "$(stat -c %i $M/restart)" = "$ino_before" ] &&
  [ -e $M/results/host-restarted ] && echo after >$M/results/after-host-restart; then
  pass host-restart
else
  fail host-restart "status=$status mounted=$(mounted && echo yes) $(head -n 3 /tmp/restart.out | tr '\n' ' ')"
  tail -n 20 /tmp/mount.log
fi
umount $M || umount -l $M
