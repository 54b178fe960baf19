#!/usr/bin/env bash
# Where one server's time goes under one load: CPU per op split into user and
# kernel time, context switches per op (from /proc), and, with strace
# installed, syscalls per op from a second, traced run of the same load.
# Server pinned to CPU 1, load generator to CPU 0, as in bench/run.ts.
#
#   bash bench/profile.sh SERVER LOAD [loadgen options]
#     SERVER: c | c-timed | ringline | ringline-portable | bun
#     e.g.  bash bench/profile.sh ringline udp-rr --size 256 --seconds 3
#           bash bench/profile.sh c connect-storm --count 10000 --concurrency 1
#
# Needs `zig build bench -Doptimize=ReleaseFast`; strace is optional (apt-get install strace).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bun="$root/node_modules/.bin/bun"
server=$1 load=$2
shift 2
case $server in
  c) cmd=("$root/zig-out/bin/echo_uring" --tcp 127.0.0.1:0 --udp 127.0.0.1:0) ;;
  c-timed) cmd=("$root/zig-out/bin/echo_uring" --tcp 127.0.0.1:0 --udp 127.0.0.1:0 --wait-timeout-us 200) ;;
  ringline) cmd=(env RINGLINE_BACKEND=io_uring "$bun" "$root/bench/servers/ringline_echo.ts" 1) ;;
  ringline-portable) cmd=(env RINGLINE_BACKEND=portable "$bun" "$root/bench/servers/ringline_echo.ts" 1) ;;
  bun) cmd=("$bun" "$root/bench/servers/bun_echo.ts") ;;
  *) echo "unknown server $server" >&2; exit 2 ;;
esac

out=$(mktemp)
taskset -c 1 "${cmd[@]}" >"$out" &
launcher=$!
trap 'kill $launcher 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q '^ready' "$out" && break; sleep 0.1; done
read -r _ tcp udp _ <"$out"
addr=$tcp
case $load in udp-*) addr=$udp ;; esac
# The process that listens (taskset and env exec, so it is the launcher itself).
pid=$launcher

run_load() { taskset -c 0 "$root/zig-out/bin/loadgen" "$load" --addr "$addr" "$@" | grep -o '"ops":[0-9]*' | cut -d: -f2; }
cpu_ticks() { awk '{print $14, $15}' "/proc/$pid/stat"; }
switches() { cat /proc/"$pid"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }

run_load "$@" >/dev/null # warm-up (JIT, buffers), not measured
read -r u0 s0 < <(cpu_ticks)
c0=$(switches)
ops=$(run_load "$@")
read -r u1 s1 < <(cpu_ticks)
c1=$(switches)
hz=$(getconf CLK_TCK)
awk -v ops="$ops" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v cs=$((c1 - c0)) -v hz="$hz" -v name="$server $load" 'BEGIN {
  t = (u + s) / hz * 1e6
  printf "%s: %d ops, %.1f µs CPU/op (user %.0f %%, kernel %.0f %%), %.2f context switches/op\n", name, ops, t / ops, 100 * u / (u + s), 100 * s / (u + s), cs / ops
}'

if command -v strace >/dev/null; then
  trace=$(mktemp)
  strace -q -c -f -p "$pid" -o "$trace" &
  tracer=$!
  sleep 0.5
  ops=$(run_load "$@")
  kill -INT $tracer
  wait $tracer 2>/dev/null || true
  echo "syscalls per op (traced run, $ops ops):"
  awk -v ops="$ops" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "  %-16s %.2f\n", $NF, $4 / ops }' "$trace" | sort -k2 -nr | head -6
  rm -f "$trace"
fi
