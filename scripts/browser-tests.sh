#!/usr/bin/env bash
# The browser suite (tests/browser.rs) against the relay + bots fixture, in each browser named
# (default: chrome firefox): headless Chromium, headless Firefox ESR, and WebKit (WebKitGTK's
# MiniBrowser, Safari's engine). Prints each browser's "test result" line.
#   scripts/browser-tests.sh [chrome] [firefox] [webkit]
# WebKit: wasm-bindgen's runner drives it as Safari (`--safari`), with WebKitGTK's
# WebKitWebDriver as its safaridriver; the runner starts and stops the driver, which starts
# MiniBrowser; this script gives them an Xvfb display of their own and stops it by process id.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
browsers=("$@")
[ "${#browsers[@]}" -gt 0 ] || browsers=(chrome firefox)
for browser in "${browsers[@]}"; do
  case "$browser" in chrome|firefox|webkit) ;; *) echo "unknown browser: $browser" >&2; exit 2 ;; esac
done

tmp=$(mktemp -d)
fixture=
xvfb=
cleanup() {
  for pid in $fixture $xvfb; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

node www/fixture/browser-fixture.js >"$tmp/fixture.log" 2>&1 &
fixture=$!
for _ in $(seq 1 100); do
  grep -q "fixture ready" "$tmp/fixture.log" && break
  kill -0 $fixture 2>/dev/null || { cat "$tmp/fixture.log"; echo "fixture died"; exit 1; }
  sleep 0.1
done
grep -q "fixture ready" "$tmp/fixture.log" || { cat "$tmp/fixture.log"; echo "fixture did not start"; exit 1; }

# Xvfb on a display number it picks itself (-displayfd writes it once the display is up).
# Sets $xvfb (its process id) and $display.
start_xvfb() {
  Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp 3>"$tmp/display" >"$tmp/xvfb.log" 2>&1 &
  xvfb=$!
  for _ in $(seq 1 100); do
    [ -s "$tmp/display" ] && break
    kill -0 $xvfb 2>/dev/null || { cat "$tmp/xvfb.log"; echo "Xvfb died"; exit 1; }
    sleep 0.1
  done
  [ -s "$tmp/display" ] || { cat "$tmp/xvfb.log"; echo "Xvfb did not start"; exit 1; }
  display=":$(head -1 "$tmp/display")"
}

status=0
for browser in "${browsers[@]}"; do
  echo "== $browser"
  case "$browser" in
    webkit)
      start_xvfb
      DISPLAY=$display wasm-pack test --headless --safari --safaridriver "$(command -v WebKitWebDriver)" \
        --mode no-install . --test browser --features std || status=1
      kill "$xvfb"; wait "$xvfb" 2>/dev/null || true; xvfb=
      ;;
    *) wasm-pack test --headless "--$browser" --mode no-install . --test browser --features std || status=1 ;;
  esac
done
exit $status
