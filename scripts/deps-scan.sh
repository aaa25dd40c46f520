#!/usr/bin/env bash
# Dependency scan: cargo-deny (deny.toml) over the SDK, the load generator and the fuzz
# targets: RustSec advisories from the offline snapshot, licences, sources (crates.io only).
# A fixture with a known advisory must be reported, which proves the database was loaded.
# Ends with "N passed, M failed".
#   scripts/deps-scan.sh
#   ADVISORY_DB_BUNDLE=/path/to/newer.bundle scripts/deps-scan.sh   # another snapshot
set -uo pipefail
cd "$(dirname "$0")/.."
DENY=${CARGO_DENY:-target/tools/cargo-deny/bin/cargo-deny}
BUNDLE=${ADVISORY_DB_BUNDLE:-../shared/advisory-db/advisory-db.bundle}
# Where cargo-deny 0.20 looks for the database of https://github.com/rustsec/advisory-db
# under `db-path` (deny.toml); it runs with --offline, so it never fetches one itself.
DB=target/advisory-dbs/advisory-db-3157b0e258782691

fail() { echo "deps-scan: $*"; echo "0 passed, 1 failed"; exit 1; }
[ -x "$DENY" ] || fail "cargo-deny missing at $DENY (run scripts/setup.sh)"
[ -e "$BUNDLE" ] || fail "no advisory snapshot at $BUNDLE"
rm -rf "$DB"
git clone -q "$BUNDLE" "$DB" 2>/dev/null || fail "could not clone $BUNDLE"
echo "advisory snapshot: $(git -C "$DB" log -1 --format='%h of %cs')"

passed=0; failed=0
log=$(mktemp)
for manifest in Cargo.toml load/Cargo.toml fuzz/Cargo.toml; do
  # cargo-deny reads the whole graph (every target's crates): fetch them from crates.io.
  cargo fetch --quiet --locked --manifest-path "$manifest" || { echo "fetch failed: $manifest"; failed=$((failed + 1)); continue; }
  if "$DENY" --offline --manifest-path "$manifest" --config deny.toml check >"$log" 2>&1; then
    echo "$manifest: advisories, bans, licenses, sources ok"
    passed=$((passed + 1))
  else
    cat "$log"
    echo "$manifest: FAILED"
    failed=$((failed + 1))
  fi
done

fixture=scripts/tests/vulnerable/Cargo.toml
cargo fetch --quiet --locked --manifest-path "$fixture"
"$DENY" --offline --manifest-path "$fixture" --config deny.toml check advisories >"$log" 2>&1
if grep -q "RUSTSEC-2021-0003" "$log"; then
  echo "fixture: the known advisory is reported"
  passed=$((passed + 1))
else
  cat "$log"
  echo "fixture: the known advisory RUSTSEC-2021-0003 was NOT reported (database not loaded?)"
  failed=$((failed + 1))
fi
rm -f "$log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
