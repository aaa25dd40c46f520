#!/usr/bin/env bash
# Builds the shipped package (pkg/web) and checks its wasm, after wasm-opt -Oz and gzip -9,
# against its budget: 90 KiB for the engine and the contract's dialect, plus 6 KiB for the
# second dialect (`wireProfile: "peerwave"`, 5.9 KiB measured when it came) and 1 KiB for
# hedging (1.2 KiB measured): 97 KiB = 99,328 bytes. README, "Size".
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=$((97 * 1024))
line=$(scripts/build.sh web)
echo "$line"
gz=$(echo "$line" | sed -n 's/.*gzip -9 \([0-9]*\) bytes.*/\1/p')
if [ "$gz" -le "$BUDGET" ]; then
  echo "size budget ${BUDGET} bytes: met ($((BUDGET - gz)) bytes to spare)"
  echo "1 passed, 0 failed"
else
  echo "size budget ${BUDGET} bytes: exceeded by $((gz - BUDGET)) bytes"
  echo "0 passed, 1 failed"
  exit 1
fi
