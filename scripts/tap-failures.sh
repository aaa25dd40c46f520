#!/usr/bin/env bash
# Prints each failed node:test subtest in a TAP log with its diagnostics (the YAML block that
# ends in "..."), nested subtests included. scripts/test.sh prints these before a failing
# step's tail, which a long suite's later output can push the failure out of.
# Usage: scripts/tap-failures.sh <log>
set -euo pipefail
awk '
  !on && /^ *not ok [0-9]+ / { on = 1; match($0, /^ */); end = substr($0, 1, RLENGTH) "  ..."; print "-- " $0; next }
  on { print; if ($0 == end) on = 0 }' "$1"
