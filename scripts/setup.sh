#!/usr/bin/env bash
# Installs everything the build, the tests and the demo need. Idempotent: each step is
# skipped when its tool is already there at the right version.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

WASM_PACK_VERSION=0.15.1
# The CLI must match the wasm-bindgen crate exactly; Cargo.toml pins it with "=".
WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' Cargo.toml)

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# chromium + chromedriver: browser tests; libssl-dev + pkg-config: the native load generator
# (rust_socketio links openssl).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
   || ! pkg-config --exists openssl 2>/dev/null; then
  log "installing Debian chromium, chromium-driver, libssl-dev, pkg-config"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver libssl-dev pkg-config >/dev/null
fi

# Fuzzing needs a nightly toolchain (sanitizers) and cargo-fuzz.
if ! rustup toolchain list | grep -q '^nightly'; then
  log "installing the nightly toolchain (fuzzing only)"
  rustup toolchain install nightly --profile minimal
fi

pids=()
if ! wasm-pack --version 2>/dev/null | grep -q " $WASM_PACK_VERSION"; then
  log "cargo install wasm-pack $WASM_PACK_VERSION"
  cargo install -q wasm-pack --version "$WASM_PACK_VERSION" --locked &
  pids+=($!)
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION"; then
  # No --locked: the CLI's own lockfile pins a crate version the registry no longer has.
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install -q wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" &
  pids+=($!)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "cargo install cargo-fuzz"
  cargo install -q cargo-fuzz --locked &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid"; done

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "ready"
