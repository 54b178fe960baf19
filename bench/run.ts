// The benchmark harness: every server under the same loads, one at a time,
// server pinned to CPU 1 and the C load generator to CPU 0. Reports throughput
// and server CPU time per operation (every server thread's schedstat run time), repeated, with
// each server's ratio to the C io_uring server paired within a repetition.
// Each cell is preceded by a run of the same load (warm-up, not measured).
//
//   bun bench/run.ts                 full run (3 repetitions × 3 s cells)
//   bun bench/run.ts --quick         smoke run (1 repetition × 1 s cells)
//   BENCH_REPS=5 BENCH_SECONDS=5 bun bench/run.ts
//   BENCH_SERVERS=ringline BENCH_ROWS="UDP rr,connect" bun bench/run.ts --quick   (a subset)
//
// Needs `zig build bench` (zig-out/bin/loadgen, echo_uring, echo_epoll) and `node` on PATH.
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, release } from "node:os"
import { ALL_SERVERS, allRows, bin, cpuSeconds, loadgen, root, rssKiB, startServer, warmupArgs, type LoadResult, type RowSpec, type Running } from "./harness"

const quick = process.argv.includes("--quick")
const REPS = Number(process.env.BENCH_REPS ?? (quick ? 1 : 3))
const SECONDS = Number(process.env.BENCH_SECONDS ?? (quick ? 1 : 3))
const ALL_ROWS = allRows(SECONDS, quick)
/** BENCH_SERVERS / BENCH_ROWS: comma-separated substrings to run a subset (C io_uring always runs: ratios pair with it). */
const pick = <T extends { name: string }>(all: T[], filter: string | undefined, keep?: string): T[] =>
  filter ? all.filter((x) => x.name === keep || filter.split(",").some((f) => x.name.includes(f.trim()))) : all
const SERVERS = pick(ALL_SERVERS, process.env.BENCH_SERVERS, "C io_uring")
const ROWS = pick(ALL_ROWS, process.env.BENCH_ROWS)
const EXTRAS = process.env.BENCH_ROWS === undefined && process.env.BENCH_SERVERS === undefined

interface Cell {
  row: string
  server: string
  rep: number
  ok: boolean
  opsPerSec: number
  cpuUsPerOp: number
  load: LoadResult
}

async function measure(server: Running, row: RowSpec): Promise<Omit<Cell, "row" | "server" | "rep">> {
  await loadgen(warmupArgs(row.args(server.tcp, server.udp)))
  let before: number, after: number, load: LoadResult
  try {
    before = cpuSeconds(server.pid)
    load = await loadgen(row.args(server.tcp, server.udp))
    after = cpuSeconds(server.pid)
  } catch {
    // the server died under this load: a failed cell, never a number
    return { ok: false, load: { ok: false, ops: 0, seconds: 0, errors: 1, error: "server exited" }, opsPerSec: 0, cpuUsPerOp: NaN }
  }
  const ok = load.ok && load.ops > 0 && load.errors === 0
  return { ok, load, opsPerSec: ok ? load.ops / load.seconds : 0, cpuUsPerOp: ok ? ((after - before) * 1e6) / load.ops : NaN }
}

const median = (xs: number[]) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  return v.length === 0 ? NaN : v.length % 2 ? v[v.length >> 1]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
}
const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "FAILED")

const cells: Cell[] = []
for (let rep = 0; rep < REPS; rep++) {
  for (const spec of SERVERS) {
    let server: Running
    try {
      server = await startServer(spec, "1")
    } catch (e) {
      console.error(`bench: ${spec.name}: ${(e as Error).message}`)
      for (const row of ROWS) cells.push({ row: row.name, server: spec.name, rep, ok: false, opsPerSec: 0, cpuUsPerOp: NaN, load: { ok: false, ops: 0, seconds: 0, errors: 1 } })
      continue
    }
    for (const row of ROWS) {
      if (server.exited()) server = await startServer(spec, "1") // a crash fails one cell, not the rest
      const m = await measure(server, row)
      cells.push({ row: row.name, server: spec.name, rep, ...m })
      console.error(`rep ${rep + 1}/${REPS} ${spec.name.padEnd(18)} ${row.name.padEnd(44)} ${m.ok ? `${m.opsPerSec.toFixed(0)} ops/s, ${fmt(m.cpuUsPerOp)} µs CPU/op` : `FAILED ${JSON.stringify(m.load)}`}`)
    }
    await server.stop()
  }
}

/** Per row and server: median throughput, median CPU/op, median of per-repetition ratios to C io_uring. */
function table(): string {
  const lines = [
    `| row | server | ops/s (median) | server CPU µs/op (median) | CPU/op ÷ C io_uring (median of paired reps) |`,
    `|---|---|---:|---:|---:|`,
  ]
  for (const row of ROWS.filter((r) => !r.latency)) {
    for (const spec of SERVERS) {
      const mine = cells.filter((c) => c.row === row.name && c.server === spec.name)
      const failed = mine.some((c) => !c.ok)
      const ratios = mine.map((c) => {
        const ref = cells.find((x) => x.row === row.name && x.server === "C io_uring" && x.rep === c.rep)
        return ref && ref.ok && c.ok ? c.cpuUsPerOp / ref.cpuUsPerOp : NaN
      })
      lines.push(
        failed
          ? `| ${row.name} | ${spec.name} | FAILED | FAILED | FAILED |`
          : `| ${row.name} | ${spec.name} | ${fmt(median(mine.map((c) => c.opsPerSec)), 0)} | ${fmt(median(mine.map((c) => c.cpuUsPerOp)))} | ${fmt(median(ratios))} |`,
      )
    }
  }
  return lines.join("\n")
}

function latencyTable(): string {
  const lines = [`| row | server | p50 µs | p99 µs | p99.9 µs |`, `|---|---|---:|---:|---:|`]
  for (const row of ROWS.filter((r) => r.latency)) {
    for (const spec of SERVERS) {
      const mine = cells.filter((c) => c.row === row.name && c.server === spec.name)
      if (mine.some((c) => !c.ok)) lines.push(`| ${row.name} | ${spec.name} | FAILED | FAILED | FAILED |`)
      else lines.push(`| ${row.name} | ${spec.name} | ${fmt(median(mine.map((c) => c.load.p50_us!)), 1)} | ${fmt(median(mine.map((c) => c.load.p99_us!)), 1)} | ${fmt(median(mine.map((c) => c.load.p999_us!)), 1)} |`)
    }
  }
  return lines.join("\n")
}

// ── extras: idle CPU, memory, scaling (full runs only) ──────────────────
const ringline = ALL_SERVERS.find((x) => x.name === "ringline io_uring")!
const extras: string[] = []
if (EXTRAS) {
  const idleSeconds = quick ? 2 : 10
  const server = await startServer(ringline, "0,1", ["2"])
  await Bun.sleep(500)
  const before = cpuSeconds(server.pid)
  await Bun.sleep(idleSeconds * 1000)
  const pct = ((cpuSeconds(server.pid) - before) / idleSeconds) * 100
  extras.push(`| idle CPU, 2-worker ringline io_uring server over ${idleSeconds} s | ${pct.toFixed(2)} % of one core for the process, ${(pct / 2).toFixed(2)} % per worker |`)
  await server.stop()
}
if (EXTRAS) {
  const server = await startServer(ringline, "1")
  const base = rssKiB(server.pid)
  for (const conns of [1, 1000]) {
    const hold = Bun.spawn([bin("loadgen"), "hold", "--addr", server.tcp, "--conns", String(conns), "--seconds", "2"], { stdout: "pipe" })
    await Bun.sleep(1000)
    const rss = rssKiB(server.pid)
    extras.push(`| RSS, 1-worker ringline io_uring server, ${conns} idle connection(s) | ${(rss / 1024).toFixed(1)} MiB (idle before: ${(base / 1024).toFixed(1)} MiB) |`)
    await hold.exited
  }
  await server.stop()
}
for (const threads of EXTRAS ? [1, 2] : []) {
  const server = await startServer(ringline, "0,1", [String(threads)])
  const load = await loadgen(ALL_ROWS.find((r) => r.name === "TCP rr, 128 conns × 1 KiB")!.args(server.tcp, server.udp), "0,1")
  extras.push(`| scaling: ${threads} worker(s), TCP rr 128 conns × 1 KiB (server and loadgen share both CPUs) | ${load.ok ? `${(load.ops / load.seconds).toFixed(0)} ops/s` : "FAILED"} |`)
  await server.stop()
}

const cpuModel = cpus()[0]?.model ?? "unknown"
const report = [
  `Machine: ${cpus().length} CPUs (${cpuModel}), Linux ${release()}, Bun ${Bun.version}, Node ${Bun.spawnSync(["node", "--version"]).stdout.toString().trim()}.`,
  `Run: ${REPS} repetition(s) × ${SECONDS} s per cell; server pinned to CPU 1, load generator to CPU 0; one worker thread per server.`,
  "",
  table(),
  "",
  latencyTable(),
  "",
  "| measurement | value |",
  "|---|---|",
  ...extras,
].join("\n")
mkdirSync(`${root}bench/out`, { recursive: true })
writeFileSync(`${root}bench/out/results.json`, JSON.stringify({ reps: REPS, seconds: SECONDS, cells }, null, 1))
writeFileSync(`${root}bench/out/report.md`, `${report}\n`)
console.log(report)
