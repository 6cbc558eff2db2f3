#!/usr/bin/env bash
# Builds the decoder fuzzer with clang's libFuzzer (ASan + UBSan) and runs it
# for a fixed time. Usage: tests/fuzz/run.sh SOURCE_DIR BUILD_DIR [SECONDS]
# Exit 77 (ctest: skipped) when clang's fuzzer runtime is not installed.
set -euo pipefail
src=$1 out=$2 seconds=${3:-30}
cxx=$(command -v clang++ || command -v clang++-14 || true)
if [[ -z "$cxx" ]]; then
  echo "clang++ not found: install clang and libclang-rt-14-dev" >&2
  exit 77
fi
mkdir -p "$out/corpus"
if ! "$cxx" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$src/src" "$src/tests/fuzz/decode_fuzz.cpp" "$src/src/protocol/canonical.cpp" \
    "$src/src/protocol/frame.cpp" "$src/src/protocol/messages.cpp" -o "$out/decode_fuzz" 2>"$out/build.log"; then
  if grep -q "libclang_rt.fuzzer\|cannot find.*fuzzer" "$out/build.log"; then
    echo "libFuzzer runtime missing: install libclang-rt-14-dev" >&2
    exit 77
  fi
  cat "$out/build.log" >&2
  exit 1
fi
exec "$out/decode_fuzz" -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 "$out/corpus"
