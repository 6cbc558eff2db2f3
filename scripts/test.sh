#!/usr/bin/env bash
# Runs every test: unit, confinement, program, mount (real FUSE mounts, needs
# root) and fuzz tests, first in the normal build (build/), then in the
# AddressSanitizer + UndefinedBehaviorSanitizer build (build-asan/). The
# output ends with ctest's summary of the sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "$jobs"
# Includes the Linux and the FreeBSD guest tests (labels vm and freebsd; the FreeBSD one is
# skipped, and says why, without ../shared/freebsd).
ctest --test-dir build --output-on-failure

cmake -S . -B build-asan -G Ninja -DFSOUT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j "$jobs"
# The fuzzer (sanitized anyway), the two VM tests (their guest binaries are
# static or cross-built, which ASan cannot be), the package test (it builds its own release
# binaries) and the docs and dist checks (no C++ of ours runs in them) ran in the first pass. So did the test that
# runs fsoutd out of fds on purpose: the sanitizers need fds of their own (UBSan's check of
# a vtable pointer opens a pipe to probe memory, and reports an invalid object when it
# cannot).
# Leak checking is on by default (LeakSanitizer) for every test program; fsoutd turns it off
# for itself (its sandbox forbids the tracer the leak checker needs; see tools/fsoutd.cpp),
# which an explicit detect_leaks=1 here would override.
ASAN_OPTIONS=abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -LE "fuzz|vm|freebsd|package|docs|dist" \
  -E "AcceptBacksOffWhenFdsRunOutAndRecovers"
