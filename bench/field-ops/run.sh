#!/usr/bin/env bash
# Prints, per engine operation, the field multiplications, squarings and inversions it costs
# on curve25519-dalek's 32-bit backend (the one in the wasm build): where the public-key time
# goes (docs/performance.md, "Performance"). Not a timing; the engine benchmark gives the times.
#   bench/field-ops/run.sh
set -euo pipefail
cd "$(dirname "$0")"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# The dalek the SDK locks, copied with one counter per operation.
version=$(cargo metadata --format-version 1 --manifest-path ../../Cargo.toml --locked |
  node -e 'const m = JSON.parse(require("fs").readFileSync(0)); console.log(m.packages.find((p) => p.name === "curve25519-dalek").version)')
source=$(cargo metadata --format-version 1 --manifest-path ../../Cargo.toml --locked |
  node -e 'const m = JSON.parse(require("fs").readFileSync(0)); console.log(require("path").dirname(m.packages.find((p) => p.name === "curve25519-dalek").manifest_path))')
copy=target/dalek-counted
rm -rf "$copy" && mkdir -p target && cp -r "$source" "$copy"
chmod -R u+w "$copy"
count() { echo "crate::counters::$1.fetch_add(1, core::sync::atomic::Ordering::Relaxed);"; }
perl -0pi -e "s/(fn mul\(self, _rhs: &'b FieldElement2625\) -> FieldElement2625 \{)/\$1 $(count MUL)/" "$copy/src/backend/serial/u32/field.rs"
perl -0pi -e "s/(fn square_inner\(&self\) -> \[u64; 10\] \{)/\$1 $(count SQUARE)/" "$copy/src/backend/serial/u32/field.rs"
perl -0pi -e "s/(pub\(crate\) fn invert\(&self\) -> FieldElement \{)/\$1 $(count INVERT)/" "$copy/src/field.rs"
cat >> "$copy/src/lib.rs" <<'RS'
#[allow(missing_docs)]
pub mod counters {
    use core::sync::atomic::AtomicU64;
    pub static MUL: AtomicU64 = AtomicU64::new(0);
    pub static SQUARE: AtomicU64 = AtomicU64::new(0);
    pub static INVERT: AtomicU64 = AtomicU64::new(0);
}
RS
[ "$(grep -c 'counters::' "$copy/src/backend/serial/u32/field.rs" "$copy/src/field.rs" | awk -F: '{s += $2} END {print s}')" = 3 ] ||
  { echo "dalek $version: the counters did not go in" >&2; exit 1; }

echo "curve25519-dalek $version, 32-bit backend"
RUSTFLAGS='--cfg curve25519_dalek_bits="32" --cfg curve25519_dalek_backend="serial"' \
  cargo run --quiet --release
