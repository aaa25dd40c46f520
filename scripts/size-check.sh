#!/usr/bin/env bash
# Builds the shipped package (pkg/web) and checks its wasm, after wasm-opt and gzip -9,
# against its budget: 100 KiB = 102,400 bytes for the whole module with both dialects and
# post-quantum sessions (Kyber1024, SPQR). It was 90 KiB for the engine and the contract's
# dialect, then 97 KiB with the PeerWave dialect and hedging. docs/performance.md, "Size".
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET=$((100 * 1024))
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
