#!/usr/bin/env bash
# Builds the shipped package (pkg/web) and prints its wasm size after wasm-opt -Oz, raw and
# gzip -9. Fails above the regression guard. The product target is 90 KB gzipped; see the
# README ("Size") for where the build stands against it.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=$((90 * 1024))
GUARD=$((110 * 1024))
line=$(scripts/build.sh web)
echo "$line"
gz=$(echo "$line" | sed -n 's/.*gzip -9 \([0-9]*\) bytes.*/\1/p')
echo "target ${TARGET} bytes: $([ "$gz" -le "$TARGET" ] && echo met || echo "not met (+$((gz - TARGET)) bytes)")"
if [ "$gz" -le "$GUARD" ]; then echo "1 passed, 0 failed"; else echo "size guard exceeded: $gz > $GUARD"; echo "0 passed, 1 failed"; exit 1; fi
