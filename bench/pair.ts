// Paired A/B of two servers under one row of bench/run.ts: alternating
// repetitions (A then B, B then A, ...), server CPU per op of each and the
// median of the per-repetition ratios B ÷ A. For a change's effect and for two
// servers whose ratios to C are within the noise of each other.
//
//   bun bench/pair.ts "Bun.listen" "ringline io_uring" "firehose"
//   bun bench/pair.ts "ringline io_uring@/path/to/other/checkout" "ringline io_uring" "TCP rr, 128"
//
// A server is a bench/harness.ts name (ALL_SERVERS or PAIR_ONLY_SERVERS), "@ROOT" runs it from another checkout
// (its own bench/ and zig-out/). The row is a substring of a run.ts row name.
// PAIR_REPS (default 10), PAIR_SECONDS (3, for the time-based rows),
// PAIR_BYTES (the length of each firehose transfer; the cell repeats them for PAIR_SECONDS), and
// PAIR_CONFIG_A / PAIR_CONFIG_B: JSON of Config fields for a ringline server
// (RINGLINE_BENCH_CONFIG); PAIR_ENV_A / PAIR_ENV_B: JSON of environment variables
// for that server alone ('{"MIMALLOC_PURGE_DELAY":"-1"}'). RINGLINE_BENCH_METRICS=1
// makes ringline servers print their counters (bytesSentWithoutCopy, ...) on
// stderr when they stop.
import { allRows, cpuSeconds, loadgen, median, processTimes, serverSpec, startServer, warmupArgs, type ServerSpec } from "./harness"

const [nameA, nameB, rowName] = process.argv.slice(2)
if (rowName === undefined) throw new Error('usage: bun bench/pair.ts "<server A>[@root]" "<server B>[@root]" "<row>"')
const row = allRows(Number(process.env.PAIR_SECONDS ?? 3), false).find((r) => r.name.includes(rowName))
if (row === undefined) throw new Error(`no row matches "${rowName}"`)
const reps = Number(process.env.PAIR_REPS ?? 10)

function spec(arg: string, config: string | undefined, env: string | undefined): ServerSpec {
  return serverSpec(arg, { ...(config ? { RINGLINE_BENCH_CONFIG: config } : {}), ...JSON.parse(env ?? "{}") })
}

const servers = [
  await startServer(spec(nameA!, process.env.PAIR_CONFIG_A, process.env.PAIR_ENV_A), "1"),
  await startServer(spec(nameB!, process.env.PAIR_CONFIG_B, process.env.PAIR_ENV_B), "1"),
]
const bytes = process.env.PAIR_BYTES
const argsOf = (i: number) => row.args(servers[i]!.tcp, servers[i]!.udp).map((a, k, all) => (bytes !== undefined && all[k - 1] === "--bytes" ? bytes : a))
for (const i of [0, 1]) await loadgen(warmupArgs(argsOf(i)))

// CPU per op, and its user-mode part (the utime share of the clock ticks): the
// kernel's part moves with how often the load generator sleeps, the user part
// is what a change in JavaScript changes.
const perOp: number[][] = [[], []]
const userPerOp: number[][] = [[], []]
const ratios: number[] = []
const userRatios: number[] = []
for (let r = 0; r < reps; r++) {
  for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
    const pid = servers[i]!.pid
    const before = cpuSeconds(pid)
    const ticks = processTimes(pid)
    const load = await loadgen(argsOf(i))
    if (!load.ok || load.ops === 0) throw new Error(`${i === 0 ? nameA : nameB}: ${row.name} failed: ${JSON.stringify(load)}`)
    const cpu = ((cpuSeconds(pid) - before) * 1e6) / load.ops
    const after = processTimes(pid)
    const user = after.user - ticks.user
    perOp[i]!.push(cpu)
    userPerOp[i]!.push((cpu * user) / Math.max(1, user + after.kernel - ticks.kernel))
  }
  ratios.push(perOp[1]![r]! / perOp[0]![r]!)
  userRatios.push(userPerOp[1]![r]! / userPerOp[0]![r]!)
}
await Promise.all(servers.map((s) => s.stop()))

console.log(`${row.name}, ${reps} paired repetitions`)
for (const i of [0, 1]) {
  console.log(`${"AB"[i]} ${[nameA, nameB][i]}: ${median(perOp[i]!).toFixed(2)} µs CPU/op, ${median(userPerOp[i]!).toFixed(2)} of it user (medians)`)
}
console.log(`B ÷ A, median of paired ratios: ${median(ratios).toFixed(3)}  [${ratios.map((x) => x.toFixed(2)).join(" ")}]`)
console.log(`  user time alone: ${median(userRatios).toFixed(3)}  [${userRatios.map((x) => x.toFixed(2)).join(" ")}]`)
