#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan + UBSan) in build-fuzz/ and runs each for
# a bounded time, starting from its committed seed corpus fuzz/corpus/<target>/ plus the
# saved crashers fuzz/regressions/<target>/ (new inputs go to build-fuzz/corpus/, findings
# to build-fuzz/findings/). Exits non-zero if any target finds something.
#
#   scripts/fuzz.sh                          # every target, 60 s each
#   scripts/fuzz.sh --seconds 600 tokenizer  # one target, 10 minutes
#   scripts/fuzz.sh --list
#
# Targets: model_file tokenizer glue_reader schedule. A finding: fix the code, copy the
# input into fuzz/regressions/<target>/ (the C++ tests replay that folder), re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS=(model_file tokenizer glue_reader schedule)
seconds=60
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --list) printf '%s\n' "${ALL_TARGETS[@]}"; exit 0 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
for target in "${targets[@]}"; do
  [ -f "fuzz/fuzz_${target}.cpp" ] || { echo "fuzz.sh: unknown target $target (--list)" >&2; exit 2; }
done

BUILD="${FCABERT_FUZZ_BUILD_DIR:-build-fuzz}"
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFCABERT_FUZZ=ON -DFCABERT_BUILD_TESTS=OFF >/dev/null
build_targets=()
for target in "${targets[@]}"; do build_targets+=(--target "fuzz_$target"); done
nice -n 10 cmake --build "$BUILD" -j"$(( $(nproc) < 2 ? $(nproc) : 2 ))" "${build_targets[@]}" >/dev/null

# Per target: the longest input tried. Model files need room for a tiny valid model.
max_len() { case "$1" in model_file) echo 16384 ;; glue_reader) echo 8192 ;; *) echo 4096 ;; esac; }

status=0
for target in "${targets[@]}"; do
  work="$BUILD/corpus/$target"
  findings="$BUILD/findings/$target"
  mkdir -p "$work" "$findings" "fuzz/regressions/$target"
  dict=()
  [ -f "fuzz/$target.dict" ] && dict=(-dict="fuzz/$target.dict")
  echo "== fuzz $target for ${seconds} s" >&2
  # -malloc_limit_mb: any single allocation over 256 MB is a finding (a declared size must be
  # refused before it is allocated). -timeout: an input taking over 10 s is a finding (a hang).
  # Leak detection is off: the targets cache their tokenizers on purpose.
  if ! ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    nice -n 15 "$BUILD/fuzz/fuzz_$target" "$work" "fuzz/corpus/$target" "fuzz/regressions/$target" \
      "${dict[@]}" -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
      -malloc_limit_mb=256 -rss_limit_mb=2048 -artifact_prefix="$findings/" -print_final_stats=1 \
      2> "$BUILD/fuzz_$target.log"; then
    echo "== fuzz $target: FINDING (log $BUILD/fuzz_$target.log, input in $findings/)" >&2
    tail -n 40 "$BUILD/fuzz_$target.log" >&2
    status=1
    continue
  fi
  grep -E "^stat::number_of_executed_units|^Done " "$BUILD/fuzz_$target.log" | tr '\n' ' ' >&2
  echo >&2
done
exit $status
