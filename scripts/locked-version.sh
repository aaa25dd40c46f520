#!/usr/bin/env bash
# Prints the version of a crate as Cargo.lock resolves it (the version the build links).
#   scripts/locked-version.sh wasm-bindgen   ->  0.2.130
set -euo pipefail
cd "$(dirname "$0")/.."
awk -v name="$1" '
  $0 == "[[package]]" { in_pkg = 1; found = 0; next }
  in_pkg && $1 == "name" && $3 == "\"" name "\"" { found = 1; next }
  in_pkg && found && $1 == "version" { gsub(/"/, "", $3); print $3; exit }
' Cargo.lock
