#!/usr/bin/env bash
# The benchmarks in quick mode (QUICK=1: two rounds each): checks that they run to the end, not
# what they measure (timing assertions have no place in tests). The figures come from full runs
# (docs/performance.md, "Performance"). Builds what they load; ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
passed=0
failed=0
run() {
  local log
  log=$(mktemp)
  if QUICK=1 "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    tail -n 12 "$log"
  else
    failed=$((failed + 1))
    echo "failed: $*"
    tail -n 30 "$log"
  fi
  rm -f "$log"
}
for kind in package interop interop-web; do
  scripts/build.sh "$kind" >/dev/null 2>&1 || { echo "build $kind failed"; echo "0 passed, 1 failed"; exit 1; }
done
run node bench/engine.bench.js
run node bench/stall.bench.js
run node bench/time-to-key.js
run node bench/timeline.js
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
