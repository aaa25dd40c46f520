#!/usr/bin/env bash
# Builds both npm package flavours and checks that each loads, works and is typed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh web
scripts/build.sh bundler
node --test www/package/
