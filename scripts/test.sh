#!/usr/bin/env bash
# Runs the whole test suite (what .ci/run calls), in three stages:
#   1. Release build; the C++ unit tests (ctest) and the Python tests (pytest: tokenizer and
#      logit parity against Hugging Face, converter, CLI, hostile inputs);
#   2. the C++ unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer
#      (Debug build in build-asan/; they also replay the fuzz corpora and regressions);
#   3. a short fuzz pass: every libFuzzer target for 20 s (clang, build-fuzz/; see
#      scripts/fuzz.sh for longer runs).
#
#   scripts/test.sh              # all three stages (what .ci/run calls)
#   scripts/test.sh --fast       # stage 1 only
#   scripts/test.sh --sanitize   # stage 2 only
#   scripts/test.sh --fuzz [S]   # stage 3 only, S seconds per target (default 20)
#
# Build directories can be moved with FCABERT_BUILD_DIR, FCABERT_ASAN_BUILD_DIR and
# FCABERT_FUZZ_BUILD_DIR (defaults build, build-asan, build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${FCABERT_BUILD_DIR:-build}"
ASAN_BUILD_DIR="${FCABERT_ASAN_BUILD_DIR:-build-asan}"
FUZZ_SECONDS=20

stage() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)" >&2; }

release_tests() {
  stage "release build, ctest, pytest"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
  ctest --test-dir "$BUILD_DIR" --output-on-failure
  FCABERT_BIN="$PWD/$BUILD_DIR/fcabert" .venv/bin/python -m pytest -q tests/python
}

sanitizer_tests() {
  stage "ASan + UBSan build, ctest"
  cmake -S . -B "$ASAN_BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug -DFCABERT_SANITIZE=ON >/dev/null
  # Only the unit tests: ctest runs nothing else, and the executables' CLI11-heavy sources
  # would add minutes of sanitizer compiles (the release stage builds and tests them).
  cmake --build "$ASAN_BUILD_DIR" -j"$(nproc)" --target unit_tests
  # oneDNN's JIT and the OpenMP runtime keep their pools until exit: not leaks of ours.
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$ASAN_BUILD_DIR" --output-on-failure
}

fuzz_pass() {
  stage "fuzz pass, $1 s per target"
  FCABERT_FUZZ_BUILD_DIR="${FCABERT_FUZZ_BUILD_DIR:-build-fuzz}" scripts/fuzz.sh --seconds "$1"
}

start=$(date +%s)
case "${1:-}" in
  --fast) release_tests ;;
  --sanitize) sanitizer_tests ;;
  --fuzz) fuzz_pass "${2:-$FUZZ_SECONDS}" ;;
  "")
    release_tests
    sanitizer_tests
    fuzz_pass "$FUZZ_SECONDS"
    ;;
  *) echo "test.sh: unknown option $1 (use --fast, --sanitize or --fuzz [SECONDS])" >&2; exit 2 ;;
esac
stage "tests passed in $(( $(date +%s) - start )) s"
