#!/usr/bin/env bash
# The main job: builds the SDK package, starts the reference relay, three participant bots
# (the first silent, so rotation is visible) and the demo prejoin page, and prints its URL.
#   scripts/demo.sh             serve the page at http://127.0.0.1:8080/ (DEMO_PORT to change)
#   scripts/demo.sh --headless  drive headless Chromium through the flow and print the transcript
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo >&2
scripts/build.sh package >&2
exec node www/demo/run.js "$@"
