#!/usr/bin/env bash
# Builds the npm package and checks that it loads, works and is typed (browser and Node entries).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh package
node --test www/package/
