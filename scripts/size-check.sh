#!/usr/bin/env bash
# Builds the shipped package and checks the gzipped wasm against the 90 KB budget.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=$((90 * 1024))
pass=0; fail=0
for kind in web interop; do
  line=$(scripts/build.sh "$kind")
  echo "$line"
  gz=$(echo "$line" | sed -n 's/.*gzip -9 \([0-9]*\) bytes.*/\1/p')
  if [ "$gz" -le "$BUDGET" ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "OVER BUDGET: $kind $gz > $BUDGET"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
