#!/usr/bin/env bash
# Prepares PeerWave's real server (AGPL-3.0) for the www/peerwave harness, outside the repository's
# tracked files: the git bundle is cloned into target/peerwave/server-src at a pinned commit and
# run from there, never copied into our sources. Idempotent; a second run takes seconds.
#
# The bundle holds one snapshot commit of upstream simonzander/PeerWave 8956afd (the upstream
# commit itself is not in the bundle), so we pin the snapshot's own hash and check that its
# message names the upstream commit.
#
# node_modules is installed once per (server/package-lock.json, node version, arch) into
# target/peerwave/modules/<key>/ and symlinked into the clone. sqlite3 is built from source:
# its prebuilt binary would come from GitHub, and node-gyp would fetch headers from nodejs.org
# without npm_config_nodedir (the nodesource package ships them in /usr/include/node).
#
# Env: PEERWAVE_BUNDLE  path of the git bundle (default ../shared/peerwave/peerwave-8956afd.bundle)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PIN=3a51b36105e67d04454071fcd187defeae38079c   # bundle snapshot of upstream 8956afd
UPSTREAM=8956afd
BUNDLE=${PEERWAVE_BUNDLE:-$ROOT/../shared/peerwave/peerwave-8956afd.bundle}
BASE=$ROOT/target/peerwave
SRC=$BASE/server-src
start=$(date +%s)
die() { echo "[peerwave-setup] $*" >&2; exit 1; }

# ---- source: clone the bundle at the pinned commit ----
clone_state=kept
if [ "$(git -C "$SRC" rev-parse HEAD 2>/dev/null || true)" != "$PIN" ]; then
  [ -r "$BUNDLE" ] || die "bundle not found: $BUNDLE (set PEERWAVE_BUNDLE)"
  rm -rf "$SRC"
  mkdir -p "$BASE"
  git -c init.defaultBranch=main clone -q --no-checkout "$BUNDLE" "$SRC"
  git -C "$SRC" checkout -q --detach "$PIN" 2>/dev/null || die "commit $PIN is not in $BUNDLE"
  clone_state=cloned
elif ! git -C "$SRC" diff --quiet HEAD --; then
  # Tracked files edited by hand: restore them (untracked node_modules/web links stay).
  git -C "$SRC" checkout -q --force "$PIN"
  clone_state=restored
fi
git -C "$SRC" log -1 --format=%s "$PIN" | grep -q "upstream $UPSTREAM" \
  || die "commit $PIN does not describe upstream $UPSTREAM"
[ -f "$SRC/server/server.js" ] && [ -f "$SRC/server/package-lock.json" ] || die "unexpected tree in $SRC"

# ---- node_modules: cached by lockfile + node ABI ----
key=$( { sha256sum "$SRC/server/package-lock.json" | cut -d' ' -f1; node -p 'process.version + process.arch'; } \
  | sha256sum | cut -c1-16)
MODS=$BASE/modules/$key
install_state=cached
if [ ! -f "$MODS/.complete" ]; then
  command -v python3 >/dev/null && command -v make >/dev/null && command -v g++ >/dev/null \
    || die "python3, make and g++ are needed to build sqlite3 from source"
  [ -f /usr/include/node/node_api.h ] || die "Node headers missing in /usr/include/node (node-gyp would download them)"
  t0=$(date +%s)
  rm -rf "$MODS" "$MODS.tmp"
  mkdir -p "$MODS.tmp"
  cp "$SRC/server/package.json" "$SRC/server/package-lock.json" "$MODS.tmp/"
  (cd "$MODS.tmp" && npm_config_build_from_source=true npm_config_nodedir=/usr \
      npm ci --omit=dev --omit=optional --no-audit --no-fund --loglevel=error >"$MODS.tmp/npm-ci.log" 2>&1) \
    || { tail -40 "$MODS.tmp/npm-ci.log" >&2; die "npm ci failed (log: $MODS.tmp/npm-ci.log)"; }
  # The server needs sequelize's sqlite dialect at run time; prove the native build loads.
  (cd "$MODS.tmp" && node -e "require('sqlite3'); require('sequelize')") || die "sqlite3 does not load after install"
  touch "$MODS.tmp/.complete"
  mv "$MODS.tmp" "$MODS"
  install_state="built in $(( $(date +%s) - t0 ))s"
fi
# Node resolves through the symlink to the cache's real path, where all siblings live.
if [ "$(readlink "$SRC/server/node_modules" 2>/dev/null || true)" != "$MODS/node_modules" ]; then
  rm -rf "$SRC/server/node_modules"
  ln -s "$MODS/node_modules" "$SRC/server/node_modules"
fi

echo "[peerwave-setup] $SRC @${PIN:0:7} (upstream $UPSTREAM, $clone_state); node_modules $key ($install_state); $(( $(date +%s) - start ))s"
