#!/usr/bin/env bash
# Runs the whole test suite: builds (Release), then the C++ unit tests (ctest) and the
# Python tests (pytest: tokenizer and logit parity against Hugging Face, converter, CLI).
#
#   scripts/test.sh              # everything (what .ci/run calls)
#   scripts/test.sh --sanitize   # the C++ unit tests under AddressSanitizer + UBSan, in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--sanitize" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFCABERT_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$(nproc)"
  # oneDNN's JIT and the OpenMP runtime keep their pools until exit: not leaks of ours.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure
  exit 0
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure
FCABERT_BIN="$PWD/build/fcabert" .venv/bin/python -m pytest -q tests/python
