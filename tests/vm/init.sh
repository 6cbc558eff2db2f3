#!/bin/busybox sh
# The guest's first process: a minimal Linux with busybox, then the test.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for module in $(cat /modules/order); do
  insmod "/modules/$module" 2>/dev/null || echo "FSOUT-VM: note: insmod $module failed"
done
# Values the host's transcript was made with (see run-vm-test.sh).
for setting in $(cat /proc/cmdline); do
  case $setting in
    fsout.sysctl=*) item=${setting#fsout.sysctl=}; echo "${item#*:}" >"/proc/sys/${item%%:*}" ;;
  esac
done
script=/bin/guest-test
for setting in $(cat /proc/cmdline); do
  case $setting in fsout.script=*) script=${setting#fsout.script=} ;; esac
done
"$script"
echo "FSOUT-VM: DONE"
sync
poweroff -f
