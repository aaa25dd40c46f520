#!/usr/bin/env bash
# The lint table in Cargo.toml (no unwrap/expect/panic in library code, every public item
# documented, no unreachable `pub`), checked for every build of the crate: native with its
# tests, the shipped wasm, the browser test build and the interop build. Warnings fail.
# Ends with "N passed, M failed" (one per build checked).
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0; failed=0
check() {
  if cargo clippy --quiet "$@" -- -D warnings; then passed=$((passed + 1)); else
    echo "clippy failed: $*"; failed=$((failed + 1)); fi
}
check --all-targets
check --lib --target wasm32-unknown-unknown
check --lib --tests --target wasm32-unknown-unknown --features std
check --lib --target wasm32-unknown-unknown --features interop
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
