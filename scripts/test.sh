#!/usr/bin/env bash
# Runs every test suite: set-up checks, the lint table, the dependency scan, native Rust
# (engine, exchange, battery, wiping, short code), the interop matrix against the npm peers
# (through the wasm build), relay/bot tests, the browser suite in Chromium, Firefox and WebKit,
# the package and its size, the SDK in Node against a stub server, the Vite example, the
# end-to-end and fault tests of the demo page in Chromium, Firefox and WebKit, the same page
# against PeerWave's real server (the `peerwave` wire profile; Chromium and WebKit), the
# benchmarks in quick mode, a short fuzz pass and the 600-guest load run (one-time prekeys run out). Does its own set-up.
# Each browser engine has steps of its own, so each prints its own count.
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
echo "== set-up: ${SECONDS} s"
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

logs=$(mktemp -d)
passed=0
failed=0
problems=()

# Adds the counts a runner printed to the totals. A step that fails without reporting
# a failed test (build error, crash) still counts as one failure.
tally() {
  local name=$1 rc=$2 log=$3 p f
  read -r p f < <(awk '
    /test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
    /^# pass [0-9]+$/ { p += $3 }
    /^# fail [0-9]+$/ { f += $3 }
    /^[0-9]+ passed, [0-9]+ failed/ { p += $1; f += $3 }
    END { print p + 0, f + 0 }' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p))
  failed=$((failed + f))
  [ "$f" -eq 0 ] || problems+=("$name (exit $rc)")
  printf '== %s: %d passed, %d failed\n' "$name" "$p" "$f"
}

step() {
  local name=$1; shift
  local log="$logs/${name// /_}.log"
  echo "== $name: $*"
  local started=$SECONDS
  "$@" >"$log" 2>&1
  local rc=$?
  if [ "$rc" -ne 0 ] || [ -n "${VERBOSE:-}" ]; then scripts/tap-failures.sh "$log"; tail -n 60 "$log"; fi
  tally "$name" "$rc" "$log"
  echo "   ($((SECONDS - started)) s)"
}

step "set-up scripts" node --test scripts/tests/
step "lint table (clippy)" scripts/lint.sh
step "dependency scan (cargo-deny, RustSec snapshot)" scripts/deps-scan.sh
step "rust native" cargo test --quiet
step "build interop wasm" scripts/build.sh interop
step "interop matrix" node --test interop/
step "relay and bot" node --test www/relay/ www/bot/
step "browser (headless chromium and firefox)" scripts/browser-tests.sh
step "browser (WebKit)" scripts/browser-tests.sh webkit
step "package build and size" scripts/size-check.sh
step "npm package (browser and node entries, docs)" scripts/package-tests.sh
step "sdk in node (stub server, misuse, traps)" node --test www/sdk/
step "example app (Vite 7, TypeScript strict, headless chromium)" node --test examples/vite-prejoin/
step "end to end (demo page, headless chromium)" node --test www/e2e/
step "end to end (demo page, headless firefox)" node --test www/e2e-firefox/
step "end to end (demo page, WebKit)" node --test www/e2e-webkit/webkit.test.js
step "PeerWave's real server (harness, end to end in headless chromium)" scripts/peerwave-e2e.sh
step "PeerWave's real server (end to end in WebKit)" scripts/peerwave-e2e.sh www/e2e-webkit/peerwave.test.js
step "benchmarks (quick mode: they run to the end)" scripts/bench-quick.sh
step "fuzz (5 s per target)" scripts/fuzz.sh 5
step "load (600 guests, 50 one-time prekeys per bot)" env CARGO_BUILD_JOBS=2 load/run.sh --guests 600 --concurrency 100 --prekeys 50

echo
if [ "${#problems[@]}" -gt 0 ]; then printf 'failing: %s\n' "${problems[@]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
