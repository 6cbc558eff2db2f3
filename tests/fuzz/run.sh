#!/usr/bin/env bash
# Builds a fuzzer with clang's libFuzzer (ASan + UBSan) and runs it for a fixed time.
# Usage: tests/fuzz/run.sh SOURCE_DIR BUILD_DIR [SECONDS] [decode|session]
#   decode:  every decoder of guest input (frames, requests, replies)
#   session: whole sessions against the passthrough back end (needs root)
# Corpus: BUILD_DIR/<target>-corpus, seeded from tests/fuzz/<target>-regressions (inputs
# that once found a defect; each is run first, so a regression fails at once).
# Exit 77 (ctest: skipped) when clang's fuzzer runtime is not installed.
set -euo pipefail
src=$1 out=$2 seconds=${3:-30} target=${4:-decode}
cxx=$(command -v clang++ || command -v clang++-14 || true)
if [[ -z "$cxx" ]]; then
  echo "clang++ not found: install clang and libclang-rt-14-dev" >&2
  exit 77
fi
protocol=("$src/src/protocol/canonical.cpp" "$src/src/protocol/frame.cpp" "$src/src/protocol/messages.cpp")
case $target in
  decode)
    sources=("$src/tests/fuzz/decode_fuzz.cpp" "${protocol[@]}")
    max_len=4096 ;;
  session)
    if [[ $(id -u) != 0 ]]; then
      echo "the session fuzzer acts as any guest user: run it as root" >&2
      exit 77
    fi
    sources=("$src/tests/fuzz/session_fuzz.cpp" "${protocol[@]}"
      "$src/src/transport/address.cpp" "$src/src/transport/os_linux.cpp" "$src/src/transport/stream.cpp"
      "$src/src/host/change_watcher.cpp" "$src/src/host/confine.cpp" "$src/src/host/identity.cpp"
      "$src/src/host/node_table.cpp" "$src/src/host/passthrough.cpp" "$src/src/host/read_only.cpp"
      "$src/src/host/session.cpp" "$src/src/host/session_state.cpp" "$src/src/host/log.cpp"
      "$src/src/host/stats.cpp")
    # The log (spdlog) as the build links it.
    read -r -a libraries <<<"$(pkg-config --cflags --libs spdlog)"
    max_len=8192 ;;
  *) echo "unknown fuzz target '$target' (decode or session)" >&2; exit 2 ;;
esac
mkdir -p "$out/$target-corpus"
if ! "$cxx" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -pthread -I"$src/src" "${sources[@]}" ${libraries[@]+"${libraries[@]}"} -o "$out/${target}_fuzz" \
    2>"$out/$target-build.log"; then
  if grep -q "libclang_rt.fuzzer\|cannot find.*fuzzer" "$out/$target-build.log"; then
    echo "libFuzzer runtime missing: install libclang-rt-14-dev" >&2
    exit 77
  fi
  cat "$out/$target-build.log" >&2
  exit 1
fi
corpora=("$out/$target-corpus")
[[ -d "$src/tests/fuzz/$target-regressions" ]] && corpora+=("$src/tests/fuzz/$target-regressions")
# Sessions log their protocol faults on stderr by the thousand: keep them out of the summary.
log="$out/$target-fuzz.log"
status=0
"$out/${target}_fuzz" -max_total_time="$seconds" -max_len="$max_len" -timeout=60 -artifact_prefix="$out/$target-" \
  -print_final_stats=1 "${corpora[@]}" >"$log" 2>&1 || status=$?
grep -v '^fsoutd: ' "$log" | tail -n 40
if [[ $status != 0 ]]; then
  echo "fuzzer $target failed (exit $status); whole log: $log" >&2
  grep -A30 'FINDING\|ERROR: \(Address\|Undefined\|libFuzzer\|Leak\)' "$log" | head -80 >&2 || true
fi
exit $status
