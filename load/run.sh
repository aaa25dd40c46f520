#!/usr/bin/env bash
# Load test: the reference relay and 3 reply-mode participant bots sharing one random meeting
# key, all on 127.0.0.1, then the native load generator (load/src/main.rs) with N guests.
# Prints the generator's figures and ends with "1 passed, 0 failed" when all guests got the key.
#
# Env: LOAD_PORT (18900), LOAD_GUESTS (500), LOAD_CONCURRENCY (50), LOAD_TIMEOUT_S (300: the
# relay, bots and generator are killed after this), CARGO_TARGET_DIR (target/load),
# CARGO_BUILD_JOBS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PORT=${LOAD_PORT:-18900}
RELAY="http://127.0.0.1:$PORT"
GUESTS=${LOAD_GUESTS:-500}
CONCURRENCY=${LOAD_CONCURRENCY:-50}
LIMIT=${LOAD_TIMEOUT_S:-300}
# The relay accepts at most 100 one-time prekeys per device; guests past that get bundles
# without one (X3DH without OPK, which the SDK and libsignal both do).
PREKEYS=100
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/load}
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

fail() { echo "load: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

command -v node >/dev/null || fail "node is required"
[ -d node_modules/socket.io ] || fail "node_modules missing (run npm ci)"
if ! pkg-config --exists openssl 2>/dev/null; then
  fail "openssl headers missing (apt-get install -y libssl-dev pkg-config)"
fi

# Build first, so the time limit below covers the run only.
echo "== building load generator (release, $CARGO_BUILD_JOBS job(s))"
build_start=$(date +%s)
cargo build --release --manifest-path load/Cargo.toml || fail "build failed"
echo "== build took $(( $(date +%s) - build_start )) s"
BIN="$CARGO_TARGET_DIR/release/signal-guest-load"

LOGS=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "port $PORT is already in use"
fi

# Everything started here is killed after $LIMIT seconds at the latest.
timeout -s TERM -k 5 "$LIMIT" node www/relay/relay.js --port "$PORT" --host 127.0.0.1 \
  >"$LOGS/relay.log" 2>&1 &
PIDS+=($!)

# Waits until FILE contains PATTERN (or the process died / 30 s passed).
wait_for() {
  local file=$1 pattern=$2 pid=$3 i
  for i in $(seq 1 300); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; return 1; }
    sleep 0.1
  done
  cat "$file" >&2
  return 1
}
wait_for "$LOGS/relay.log" "^http://" "${PIDS[0]}" || fail "relay did not start"
echo "== relay on $RELAY"

KEY=$(node -e "process.stdout.write(require('node:crypto').randomBytes(32).toString('base64'))")
for user in bot1 bot2 bot3; do
  timeout -s TERM -k 5 "$LIMIT" node www/bot/bot.js --relay "$RELAY" --user "$user" --device 1 \
    --mode reply --key "$KEY" --prekeys "$PREKEYS" --quiet >"$LOGS/$user.log" 2>&1 &
  PIDS+=($!)
done
CHECK=""
i=1
for user in bot1 bot2 bot3; do
  wait_for "$LOGS/$user.log" "ready" "${PIDS[$i]}" || fail "$user did not start"
  c=$(sed -n 's/.*meeting key check value: \([0-9a-f]*\).*/\1/p' "$LOGS/$user.log" | head -n1)
  [ -n "$c" ] || fail "$user printed no key check value"
  [ -z "$CHECK" ] || [ "$c" = "$CHECK" ] || fail "bots disagree on the key check value"
  CHECK=$c
  i=$((i + 1))
done
echo "== 3 reply bots ready, key check value $CHECK"

set +e
timeout -s TERM -k 5 "$LIMIT" "$BIN" --relay "$RELAY" --guests "$GUESTS" \
  --concurrency "$CONCURRENCY" --expect-check "$CHECK"
status=$?
set -e
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "load: generator killed after ${LIMIT} s" >&2
  echo "0 passed, 1 failed"
fi
if [ "$status" -ne 0 ]; then
  for f in "$LOGS"/*.log; do echo "--- $(basename "$f") (tail)"; tail -n 20 "$f"; done >&2
fi
rm -rf "$LOGS"
exit "$status"
