#!/usr/bin/env bash
# Runs only the PeerWave suite: PeerWave's real server (upstream 8956afd, AGPL-3.0, cloned from
# its git bundle into target/ at test time, never into our sources), a fake LiveKit, participants
# that behave like PeerWave's Flutter participant, and the demo page in headless Chromium with
# the SDK's `peerwave` wire profile. Installs what it needs (the first run builds PeerWave's
# node_modules, about a minute; later runs reuse them). Ends with "N passed, N failed".
#   scripts/peerwave-e2e.sh [test files]   (default: www/peerwave/; the WebKit test:
#   www/e2e-webkit/peerwave.test.js)
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

fail_setup() { echo "$1"; echo "0 passed, 1 failed"; exit 1; }
scripts/setup.sh demo >&2 || fail_setup "setup failed"
scripts/peerwave-setup.sh >&2 || fail_setup "PeerWave set-up failed"
scripts/build.sh package >&2 || fail_setup "package build failed"

log=$(mktemp)
# The spec reporter, so that only the summary below has the "N passed, N failed" form.
[ "$#" -gt 0 ] || set -- www/peerwave/
node --test --test-reporter=spec "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -1)
failed=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -1)
rm -f "$log"
passed=${passed:-0}
failed=${failed:-0}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
