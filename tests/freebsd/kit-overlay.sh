#!/usr/bin/env bash
# Makes OUT a view of the FreeBSD guest kit KIT in which linking works even when the kit's
# library aliases (libgcc.a -> libcompiler_rt.a, libpthread.a -> libthr.a, ...) are small
# text files naming their target instead of symlinks (a copy that lost its links): every
# entry of KIT is linked into OUT, except cc and c++, which become wrappers that put real
# links to those archives first on the linker's path. The kit itself is not changed.
# Usage: kit-overlay.sh KIT OUT   (prints OUT; OUT/make-iso.sh then uses OUT/cc)
set -euo pipefail
kit=$(cd "$1" && pwd) out=$2
mkdir -p "$out/library-links"
out=$(cd "$out" && pwd)
for archive in "$kit"/sysroot/usr/lib/*.a; do
  if [[ $(stat -c %s "$archive") -lt 64 ]]; then
    target=$(tr -d '\n' <"$archive")
    [[ $target =~ ^lib[A-Za-z0-9_+-]+\.a$ && -f $kit/sysroot/usr/lib/$target ]] &&
      ln -sfn "$kit/sysroot/usr/lib/$target" "$out/library-links/$(basename "$archive")"
  fi
done
for entry in "$kit"/*; do
  name=$(basename "$entry")
  [[ $name == cc || $name == c++ ]] && continue
  ln -sfn "$entry" "$out/$name"
done
for compiler in cc c++; do
  printf '#!/bin/sh\nexec "%s/%s" -L"%s/library-links" "$@"\n' "$kit" "$compiler" "$out" >"$out/$compiler"
  chmod +x "$out/$compiler"
done
echo "$out"
