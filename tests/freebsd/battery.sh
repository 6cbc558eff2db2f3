#!/bin/sh
# A shell-level battery for a FreeBSD guest: the same steps in DIR on the guest's own UFS and
# on the fsout mount print transcripts that must be equal (run-freebsd-test.sh compares
# them). Only the kit's base programs are used; every step prints "name: result", where a
# failure is the program's own message (paths are relative to DIR, so both sides match).
# Usage: battery.sh DIR
cd "$1" || exit 2
step() {  # name, command...
  name=$1
  shift
  if out=$("$@" 2>&1); then
    echo "$name: ok${out:+ $out}" | tr '\n' ' '
  else
    echo "$name: FAILED $out" | tr '\n' ' '
  fi
  echo
}
say() { echo "$1: $2"; }
# Directories' sizes and link counts depend on the file system's layout: left out.
desc() {
  if [ -d "$1" ] && [ ! -L "$1" ]; then stat -f '%HT %Lp' "$@" 2>&1; else stat -f '%HT %Lp size=%z links=%l' "$@" 2>&1; fi
}
owner() { stat -f 'uid=%u gid=%g mode=%Lp' "$@" 2>&1; }
content() { md5 -q "$1" 2>&1; }

# files
step create touch f
say f "$(desc f)"
step write sh -c 'printf hello > f'
say f-content "$(cat f)"
step append sh -c 'printf " world" >> f'
say f-appended "$(cat f) $(desc f)"
step overwrite-middle sh -c 'printf XY | dd of=f bs=1 seek=2 conv=notrunc 2>/dev/null'
say f-middle "$(cat f)"
step truncate-down truncate -s 3 f
say f-truncated "$(cat f) $(desc f)"
step truncate-up truncate -s 10000 f
say f-extended "$(desc f) $(content f)"
step sparse sh -c 'dd if=/dev/zero of=sparse bs=1 count=1 seek=5000000 2>/dev/null'
say sparse "$(desc sparse)"
step big sh -c 'dd if=/dev/zero of=big bs=65536 count=40 2>/dev/null'
say big "$(desc big) $(content big)"
step copy cp big big2
say copy "$(content big2)"
step cat-missing cat missing
step write-into-dir-as-file sh -c 'echo x > /dev/null; : > d-not-there/x'

# directories
step mkdir mkdir d
say d "$(desc d)"
step mkdir-exists mkdir d
step mkdir-p mkdir -p d/e/f
step rmdir-not-empty rmdir d
step rmdir-missing rmdir nothere
step file-in-dir touch d/e/g
say listing "$(ls -a d/e)"
step rm-dir-without-r rm d
step rm-r rm -r d/e
say listing-after "$(ls -a d)"
step dir-as-file sh -c 'cat d'
step notdir touch f/x

# names
long=$(printf 'n%.0s' $(seq 255))
step name-255 touch "$long"
step name-256 touch "${long}x"
step rm-255 rm "$long"
step name-spaces touch "a b  c"
step name-utf8 touch "grüße"
say names "$(ls | sort | tr '\n' ' ')"

# renames and links
step rename mv f g
say rename-old "$(desc f)"
say rename-new "$(desc g)"
step rename-onto touch h
step rename-onto-existing mv g h
say rename-onto-result "$(cat h | md5) $(desc h)"
step rename-dir-into-itself mv d d/sub
step rename-dir-onto-file mv d h
step rename-file-onto-dir mv h d
say rename-file-onto-dir-result "$(ls d)"
step link ln d/h hl
say link "$(desc hl) $(desc d/h)"
step link-dir ln d dl
step link-exists ln d/h hl
step symlink ln -s d/h sl
say symlink "$(stat -f '%HT %Y' sl)"
step readlink-follow cat sl
step symlink-dangling ln -s nowhere dangling
step cat-dangling cat dangling
step symlink-loop ln -s loop loop
step cat-loop cat loop
step unlink-link rm hl
say after-unlink "$(desc d/h)"

# modes and owners
step chmod chmod 640 d/h
say chmod "$(owner d/h)"
step chmod-suid chmod 4755 d/h
say chmod-suid "$(owner d/h)"
step chmod-dir chmod 700 d
say chmod-dir "$(owner d)"
step chown chown 123:456 d/h
say chown "$(owner d/h)"
step chown-user-only chown 77 d/h
say chown-user-only "$(owner d/h)"
step chmod-missing chmod 644 missing
step touch-time touch -t 200001021234.56 d/h
say touch-time "$(stat -f '%Sm' -t '%Y-%m-%d %H:%M:%S' d/h)"

# extended attributes (user namespace)
step setextattr setextattr user name1 value1 d/h
step getextattr getextattr -q user name1 d/h
step setextattr-replace setextattr user name1 value2 d/h
step getextattr-replaced getextattr -q user name1 d/h
step setextattr-second setextattr user name2 "" d/h
step lsextattr sh -c 'lsextattr -q user d/h | tr " " "\n" | sort | tr "\n" " "'
step getextattr-missing getextattr -q user nothere d/h
step rmextattr rmextattr user name1 d/h
step rmextattr-missing rmextattr user name1 d/h
step lsextattr-after lsextattr -q user d/h
step setextattr-dir setextattr user onadir v d
step getextattr-dir getextattr -q user onadir d

# cleanup, through the file system under test
step cleanup rm -rf d g h sl dangling loop sparse big big2 "a b  c" "grüße"
say left "$(ls -a | tr '\n' ' ')"
