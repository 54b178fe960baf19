#!/usr/bin/env bash
# Times the io_uring driver's steps in place, inside a running server: bench/inplace_timing.patch
# (Bun.nanoseconds() around each loop step, each completion's dispatch and the task start)
# applied to a scratch checkout of HEAD, never to src/. The server prints ns per connection
# (or per datagram) on stderr when it stops.
#
#   bash bench/inplace.sh storm      # 30,000 sequential connections after 30,000 of warm-up
#   bash bench/inplace.sh udp-flood  # 8 senders × 256 B, 4 s after 2 s of warm-up
#   bash bench/inplace.sh tcp-rr     # 16 connections × 64 B, 4 s after 2 s of warm-up (ns per TCP receive)
#
# Needs the bench build (zig build bench). The timing itself adds ~25 ns per timed step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
load=${1:?usage: bash bench/inplace.sh storm|udp-flood|tcp-rr}
scratch=$(mktemp -d /tmp/ringline-inplace.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  git -C "$root" worktree remove --force "$scratch" 2>/dev/null || rm -rf "$scratch"
}
trap cleanup EXIT
git -C "$root" worktree add --detach --quiet "$scratch" HEAD
ln -s "$root/node_modules" "$scratch/node_modules"
cp -r "$root/zig-out" "$scratch/zig-out"
git -C "$scratch" apply "$root/bench/inplace_timing.patch" || { echo "bench/inplace_timing.patch no longer applies to HEAD's src/: redo it" >&2; exit 1; }
out="$scratch/server.out"
unit=""
[ "$load" = tcp-rr ] && unit=recv
INPLACE_UNIT=$unit RINGLINE_BACKEND=io_uring taskset -c 1 "$root/node_modules/.bin/bun" "$scratch/bench/servers/ringline_echo.ts" 1 >"$out" 2>"$scratch/server.err" &
server=$!
for _ in $(seq 100); do grep -q '^ready' "$out" 2>/dev/null && break; sleep 0.1; done
read -r _ tcp udp _ <"$out"
loadgen="taskset -c 0 $root/zig-out/bin/loadgen"
case "$load" in
  storm)
    $loadgen connect-storm --addr "$tcp" --count 30000 --concurrency 1 >/dev/null
    $loadgen connect-storm --addr "$tcp" --count 30000 --concurrency 1 ;;
  udp-flood)
    $loadgen udp-flood --addr "$udp" --senders 8 --size 256 --seconds 2 >/dev/null
    $loadgen udp-flood --addr "$udp" --senders 8 --size 256 --seconds 4 ;;
  tcp-rr)
    $loadgen tcp-rr --addr "$tcp" --conns 16 --size 64 --seconds 2 >/dev/null
    $loadgen tcp-rr --addr "$tcp" --conns 16 --size 64 --seconds 4 ;;
  *) echo "unknown load $load" >&2; exit 2 ;;
esac
kill -INT "$server"
wait "$server" || true
server=""
grep -A40 '^in-place timing' "$scratch/server.err"
