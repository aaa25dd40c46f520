#!/usr/bin/env bash
# Load test: the reference relay and 3 reply-mode participant bots sharing one random meeting
# key, all on 127.0.0.1 (official libsignal 0.103.0, 0.72.1 and the TypeScript port), then the
# native load generator (load/src/main.rs) with N guests.
# Prints the generator's figures and its summary line ("load: <ok>/<guests> keys, p50 …, p99 …,
# … guests/s, busiest device …% of first requests, … sessions without a one-time prekey, … lost")
# and "1 passed, 0 failed" when every guest got the key, nothing was lost, no device
# was asked first by more than 40 % of the guests, and (when the guests outnumber the bots'
# one-time prekeys) some sessions started without one; then the CPU seconds each process used
# ("cpu: relay … s, current-1 … s, …, generator … s"); last, how many of the guests' short-code
# reveals (sent after the key, as the SDK does) matched at the participant that answered, with a
# second "1 passed, 0 failed" when all of them did.
#
# Usage: load/run.sh [--guests 500] [--concurrency 50] [--prekeys 100]
#   --prekeys   one-time prekeys each bot uploads at start (≤ 100, as the relay takes per upload);
#               bots top up 100 more when fewer than 20 are left, at most once every 30 s, so a
#               burst larger than the stock runs on bundles without one (docs/contract.md §3)
# Env: the same as LOAD_GUESTS, LOAD_CONCURRENCY, LOAD_PREKEYS; LOAD_PORT (18900),
# LOAD_TIMEOUT_S (300: the relay, bots and generator are killed after this),
# LOAD_DEVICE_RATE_LIMIT (the relay's per-device keybundle limit, max/windowMs; its default
# without), LOAD_BOTS (the bots' peers, "current official ts"), LOAD_BOT_ARGS (more bot options,
# e.g. "--busy-after 100"), LOAD_RELAY_NODE_ARGS / LOAD_BOT_NODE_ARGS (node options, e.g.
# "--cpu-prof --cpu-prof-dir=/tmp/prof"), CARGO_TARGET_DIR (target/load), CARGO_BUILD_JOBS (1).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PORT=${LOAD_PORT:-18900}
RELAY="http://127.0.0.1:$PORT"
GUESTS=${LOAD_GUESTS:-500}
CONCURRENCY=${LOAD_CONCURRENCY:-50}
PREKEYS=${LOAD_PREKEYS:-100}
LIMIT=${LOAD_TIMEOUT_S:-300}
usage() { echo "usage: $0 [--guests N] [--concurrency C] [--prekeys K]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || usage
  case "$1" in
    --guests) GUESTS=$2 ;;
    --concurrency) CONCURRENCY=$2 ;;
    --prekeys) PREKEYS=$2 ;;
    *) usage ;;
  esac
  shift 2
done
for n in "$GUESTS" "$CONCURRENCY" "$PREKEYS"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "load: counts must be positive integers" >&2; exit 2; }
done
[ "$PREKEYS" -le 100 ] || { echo "load: --prekeys is at most 100 (one upload)" >&2; exit 2; }
read -r -a BOTS <<< "${LOAD_BOTS:-current official ts}"
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
timeout -s TERM -k 5 "$LIMIT" node ${LOAD_RELAY_NODE_ARGS:-} www/relay/relay.js --port "$PORT" --host 127.0.0.1 \
  ${LOAD_DEVICE_RATE_LIMIT:+--device-rate-limit "$LOAD_DEVICE_RATE_LIMIT"} >"$LOGS/relay.log" 2>&1 &
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
# One participant device per bot, named after its peer and place: current-1, official-2, ts-3.
USERS=()
for n in "${!BOTS[@]}"; do
  user="${BOTS[$n]}-$((n + 1))"
  USERS+=("$user")
  timeout -s TERM -k 5 "$LIMIT" node ${LOAD_BOT_NODE_ARGS:-} www/bot/bot.js --relay "$RELAY" --user "$user" --device 1 \
    --mode reply --peer "${BOTS[$n]}" --key "$KEY" --prekeys "$PREKEYS" ${LOAD_BOT_ARGS:-} --quiet >"$LOGS/$user.log" 2>&1 &
  PIDS+=($!)
done
CHECK=""
i=1
for user in "${USERS[@]}"; do
  wait_for "$LOGS/$user.log" "ready" "${PIDS[$i]}" || fail "$user did not start"
  c=$(sed -n 's/.*meeting key check value: \([0-9a-f]*\).*/\1/p' "$LOGS/$user.log" | head -n1)
  [ -n "$c" ] || fail "$user printed no key check value"
  [ -z "$CHECK" ] || [ "$c" = "$CHECK" ] || fail "bots disagree on the key check value"
  CHECK=$c
  i=$((i + 1))
done
echo "== ${#USERS[@]} reply bots ready (${USERS[*]}; $PREKEYS one-time prekeys each), key check value $CHECK"

# More guests than the stock and one top-up: the last-resort path must have been taken.
exhaustion=()
[ "$GUESTS" -le $((${#USERS[@]} * (PREKEYS + 100))) ] || exhaustion=(--expect-exhaustion)
# CPU seconds (user + system) of a process, from /proc.
cpu_of() {
  local f
  read -r -a f < <(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  # fields 14 and 15 of stat (utime, stime), here 12 and 13 after the command name
  awk -v u="${f[11]}" -v s="${f[12]}" -v t="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (u + s) / t }'
}
# The CPU seconds of this shell's waited-for children, from bash's `times` (second line),
# which must run in this shell, not in a $(…) subshell.
children_cpu() {
  awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.2f", t }' "$1"
}
times >"$LOGS/times.before"
set +e
timeout -s TERM -k 5 "$LIMIT" "$BIN" --relay "$RELAY" --guests "$GUESTS" \
  --concurrency "$CONCURRENCY" --expect-check "$CHECK" --max-busiest-pct 40 "${exhaustion[@]}" \
  | tee "$LOGS/generator.out"
status=${PIPESTATUS[0]}
set -e
times >"$LOGS/times.after"
# Where the machine's CPU went (the relay's and the bots' from their start, the generator's
# including the guests' keys made before the timed run), per guest: all of it on these cores.
cpu="relay $(cpu_of "$(pgrep -P "${PIDS[0]}" | head -n1)") s"
for n in "${!USERS[@]}"; do cpu+=", ${USERS[$n]} $(cpu_of "$(pgrep -P "${PIDS[$((n + 1))]}" | head -n1)") s"; done
echo "cpu: $cpu, generator $(awk -v a="$(children_cpu "$LOGS/times.before")" -v b="$(children_cpu "$LOGS/times.after")" 'BEGIN { printf "%.2f", b - a }') s (CPU seconds, $GUESTS guests)"
# Each guest's short-code reveal goes to the participant that answered it, after the key: a
# moment for the last ones to arrive, then the bots stop and print what they handled.
sleep 1
for n in "${!USERS[@]}"; do kill -TERM "${PIDS[$((n + 1))]}" 2>/dev/null || true; done
for n in "${!USERS[@]}"; do wait "${PIDS[$((n + 1))]}" 2>/dev/null || true; done
successes=$(sed -n 's/^successes: \([0-9]*\)$/\1/p' "$LOGS/generator.out")
reveals=0
refused=0
for user in "${USERS[@]}"; do
  stats=$(sed -n 's/^bot stats: //p' "$LOGS/$user.log" | tail -n1)
  r=$(sed -n 's/.*"reveals":\([0-9]*\).*/\1/p' <<<"$stats")
  x=$(sed -n 's/.*"revealsRefused":\([0-9]*\).*/\1/p' <<<"$stats")
  reveals=$((reveals + ${r:-0}))
  refused=$((refused + ${x:-0}))
done
echo "reveals: ${reveals} of ${successes:-0} guests' short codes matched at their participant, ${refused} refused"
if [ "$status" -eq 0 ]; then
  if [ "$reveals" -eq "${successes:--1}" ] && [ "$refused" -eq 0 ]; then
    echo "1 passed, 0 failed"
  else
    echo "load: a guest's reveal did not reach its participant, or was refused" >&2
    echo "0 passed, 1 failed"
    status=1
  fi
fi
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "load: generator killed after ${LIMIT} s" >&2
  echo "0 passed, 1 failed"
fi
if [ "$status" -ne 0 ]; then
  for f in "$LOGS"/*.log; do echo "--- $(basename "$f") (tail)"; tail -n 20 "$f"; done >&2
fi
rm -rf "$LOGS"
exit "$status"
