#!/usr/bin/env bash
# The main job: builds the SDK package, starts the reference relay, three participant bots
# (the first silent, so rotation is visible) and the demo prejoin page, and prints its URL.
#   scripts/demo.sh             serve the page at http://127.0.0.1:8080/ (DEMO_PORT to change)
#   scripts/demo.sh --headless  drive headless Chromium through the flow and print the transcript
#   scripts/demo.sh --peerwave  the same page against PeerWave's real server (its own code, cloned
#                               from its bundle into target/), in the `peerwave` wire profile
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo >&2
for arg in "$@"; do [ "$arg" = --peerwave ] && scripts/peerwave-setup.sh >&2; done
scripts/build.sh package >&2
exec node www/demo/run.js "$@"
