#!/usr/bin/env bash
# The browser suite (tests/browser.rs) in headless Chromium and headless Firefox ESR, against
# the relay + bots fixture. Prints each browser's "test result" line.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
log=$(mktemp)
node www/fixture/browser-fixture.js >"$log" 2>&1 &
fixture=$!
trap 'kill $fixture 2>/dev/null || true; wait $fixture 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "fixture ready" "$log" && break
  kill -0 $fixture 2>/dev/null || { cat "$log"; echo "fixture died"; exit 1; }
  sleep 0.1
done
grep -q "fixture ready" "$log" || { cat "$log"; echo "fixture did not start"; exit 1; }
status=0
for browser in chrome firefox; do
  echo "== $browser"
  wasm-pack test --headless "--$browser" --mode no-install . --test browser --features std || status=1
done
exit $status
