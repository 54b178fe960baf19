#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then runs the demo: native self-check, a TCP and a UDP echo round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node_modules/.bin/bun examples/demo.ts
