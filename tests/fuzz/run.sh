#!/usr/bin/env bash
# Run every libFuzzer target of a fuzz build for a while.
#
#     tests/fuzz/run.sh [BUILD_DIR [SECONDS]]     (default: build/fuzz 60)
#
# Each target starts from its committed inputs (tests/fuzz/corpus/<target>
# and regressions/<target>, read only) and keeps what it finds in
# BUILD_DIR/fuzz-work/<target>. A crash is saved as
# BUILD_DIR/fuzz-artifacts/<target>/crash-...: reproduce it with
# `BUILD_DIR/tests/fuzz/fuzz_<target> FILE`, fix it, and commit the file to
# tests/fuzz/regressions/<target>/ so that the replay test keeps it fixed.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build/fuzz}
seconds=${2:-60}
status=0
found=0
for fuzzer in "$build"/tests/fuzz/fuzz_*; do
  [ -x "$fuzzer" ] || continue
  found=$((found + 1))
  target=${fuzzer##*/fuzz_}
  work="$build/fuzz-work/$target"
  artifacts="$build/fuzz-artifacts/$target"
  mkdir -p "$work" "$artifacts"
  inputs=("tests/fuzz/corpus/$target")
  [ -d "tests/fuzz/regressions/$target" ] && inputs+=("tests/fuzz/regressions/$target")
  echo "--- fuzz_$target: $seconds s"
  if ! "$fuzzer" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "$work" "${inputs[@]}" >"$build/fuzz-$target.log" 2>&1; then
    status=1
    echo "FAILED: fuzz_$target (log: $build/fuzz-$target.log)"
    grep -E 'FUZZ_CHECK|ERROR: |SUMMARY|Test unit written' "$build/fuzz-$target.log" | head -n 20
  fi
  grep -E '^stat::number_of_executed_units|^Done' "$build/fuzz-$target.log" | tr '\n' ' '
  echo
done
if [ "$found" -eq 0 ]; then
  echo "no fuzz_* programs in $build/tests/fuzz: build the fuzz preset first" >&2
  exit 2
fi
exit $status
