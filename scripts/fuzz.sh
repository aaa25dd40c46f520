#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, nightly, AddressSanitizer) for SECONDS each, starting
# from a scratch copy of the committed seed corpus (fuzz/corpus/<target>).
#   scripts/fuzz.sh [SECONDS]      default 10 s per target
# Prints libFuzzer's execution count per target and "N passed, M failed" (M = targets that
# crashed). Crash inputs are kept in fuzz/artifacts/<target>/.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
work=$(mktemp -d)
passed=0; failed=0; total=0
cargo +nightly fuzz build --fuzz-dir fuzz -O >/dev/null 2>&1 || { cargo +nightly fuzz build --fuzz-dir fuzz -O; echo "0 passed, 1 failed"; exit 1; }
# The targets are whatever fuzz/Cargo.toml declares, so a new target is fuzzed without an edit here.
mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
[ "${#targets[@]}" -gt 0 ] || { echo "no fuzz targets found"; echo "0 passed, 1 failed"; exit 1; }
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  [ -d "fuzz/corpus/$t" ] && cp -r "fuzz/corpus/$t/." "$work/$t/"
  log="$work/$t.log"
  if cargo +nightly fuzz run --fuzz-dir fuzz -O "$t" "$work/$t" -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    echo "fuzz $t: ${runs:-?} executions in ${seconds} s, no crash"
    total=$((total + ${runs:-0}))
    passed=$((passed + 1))
  else
    tail -n 30 "$log"
    echo "fuzz $t: CRASH (see fuzz/artifacts/$t)"
    failed=$((failed + 1))
  fi
done
echo "fuzz total: $total executions"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
