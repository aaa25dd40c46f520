#!/usr/bin/env bash
# Builds the wasm package.
#   scripts/build.sh web       -> pkg/web      (the wasm-pack `web` build)
#   scripts/build.sh package   -> pkg/signal-guest-sdk (the npm package: pkg/web, the entries in
#                                 packaging/, docs, licence; browsers, bundlers and Node)
#   scripts/build.sh interop   -> target/pkg-node (Node, raw engine exported, for interop tests)
#   scripts/build.sh interop-web -> target/pkg-web-interop (the same for the browser benchmark)
# Release builds run binaryen's wasm-opt -Oz (npm binaryen; Debian's is too old).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-web}
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

case "$kind" in
  package) "$0" web && exec node scripts/package.mjs ;;
  web) target=web; out=pkg/web; features=() ;;
  interop) target=nodejs; out=target/pkg-node; features=(--features interop) ;;
  interop-web) target=web; out=target/pkg-web-interop; features=(--features interop) ;;
  *) echo "usage: $0 web|package|interop|interop-web" >&2; exit 2 ;;
esac

# Source paths in the module's panic locations are made relative, so the package neither
# grows with nor reveals the build machine's directories.
remaps=("--remap-path-prefix=$PWD/=")
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do remaps+=("--remap-path-prefix=$dir="); done
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remaps[*]}"

wasm-pack --quiet build --mode no-install --release --target "$target" --out-dir "$out" . "${features[@]}"
wasm="$out/signal_guest_sdk_bg.wasm"
# --converge repeats -Oz until it stops shrinking. wasm-opt inlines every function that has
# one caller, which here builds a few functions of 20–30 KB whose renumbered locals defeat
# gzip; leaving single-caller functions above 20 bytes alone costs 2 KB raw and saves 3.7 KB
# gzipped (docs/performance.md, "Size").
# --low-memory-unused lets wasm-opt fold constant offsets into loads and stores: it holds
# because Rust's linker puts the 1 MiB stack first (data starts at 1 MiB) and the stack grows
# down, so the lowest 1 KiB is reached only by an overflowing stack (about 200 bytes gzip).
# --merge-similar-functions (functions that differ only in constants become one) and --rse
# (redundant local sets) save about 90 bytes gzip; rustc's target_features section is for
# linkers, not engines (about 115).
wasm-opt --merge-similar-functions --rse -Oz --converge --one-caller-inline-max-function-size=20 --low-memory-unused --strip-debug --strip-producers --strip-target-features "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
# The shipped build's import names are wasm-bindgen's long hashed ones; shorten them.
if [ "$kind" = web ]; then node scripts/minify-imports.mjs "$out" >/dev/null; fi
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
echo "built $out: wasm ${raw} bytes, gzip -9 ${gz} bytes"
