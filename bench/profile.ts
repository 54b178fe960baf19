// Where one server's time goes under one load of the benchmark: CPU per op
// (schedstat, as bench/run.ts) split into user and kernel time, context
// switches per op, and, where strace is installed, syscalls per op from a
// second, traced run of the same load. Server on CPU 1, load generator on CPU 0.
//
//   bun bench/profile.ts SERVER ROW          (substrings of the names in bench/harness.ts)
//   bun bench/profile.ts "ringline io_uring" "UDP rr"
//   bun bench/profile.ts "C io_uring, timed" "UDP rr"
//   BENCH_SECONDS=5 bun bench/profile.ts ringline "connect storm, seq"
//
// Needs `zig build bench -Doptimize=ReleaseFast`; strace is optional (apt-get install strace).
import { readdirSync, readFileSync, rmSync } from "node:fs"
import { ALL_SERVERS, allRows, cpuSeconds, loadgen, startServer, warmupArgs } from "./harness"

const [serverName, rowName] = process.argv.slice(2)
const spec = ALL_SERVERS.find((s) => serverName !== undefined && s.name.includes(serverName))
const row = allRows(Number(process.env.BENCH_SECONDS ?? 3), false).find((r) => rowName !== undefined && r.name.includes(rowName))
if (spec === undefined || row === undefined) {
  console.error(`usage: bun bench/profile.ts SERVER ROW\n  servers: ${ALL_SERVERS.map((s) => s.name).join(" | ")}`)
  process.exit(2)
}

/** utime and stime of the whole process, in clock ticks, and context switches of all its threads. */
function counters(pid: number): { user: number; kernel: number; switches: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ") // after "pid (comm) "
  let switches = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      for (const m of readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8").matchAll(/ctxt_switches:\s+(\d+)/g)) switches += Number(m[1])
    } catch {
      // a thread that exited between the listing and the read
    }
  }
  return { user: Number(fields[11]), kernel: Number(fields[12]), switches }
}

const server = await startServer(spec, "1")
try {
  const args = row.args(server.tcp, server.udp)
  await loadgen(warmupArgs(args))
  const before = counters(server.pid)
  const cpuBefore = cpuSeconds(server.pid)
  const load = await loadgen(args)
  const cpu = cpuSeconds(server.pid) - cpuBefore
  const after = counters(server.pid)
  if (!load.ok || load.ops === 0) throw new Error(`the load failed: ${JSON.stringify(load)}`)
  const user = after.user - before.user
  const kernel = after.kernel - before.kernel
  const share = (x: number) => (user + kernel > 0 ? ((100 * x) / (user + kernel)).toFixed(0) : "?")
  console.log(
    `${spec.name} / ${row.name}: ${load.ops} ops, ${((cpu * 1e6) / load.ops).toFixed(1)} µs CPU/op ` +
      `(user ${share(user)} %, kernel ${share(kernel)} %), ${((after.switches - before.switches) / load.ops).toFixed(2)} context switches/op`,
  )

  if (Bun.which("strace") !== null) {
    const out = `/tmp/ringline-profile-${process.pid}.strace`
    const tracer = Bun.spawn(["strace", "-q", "-c", "-f", "-p", String(server.pid), "-o", out], { stderr: "ignore" })
    await Bun.sleep(500) // attached to every thread
    const traced = await loadgen(args)
    tracer.kill("SIGINT")
    await tracer.exited
    console.log(`syscalls per op (traced run, ${traced.ops} ops; strace slows the server, so only the counts matter):`)
    const rows: Array<[string, number]> = []
    for (const line of readFileSync(out, "utf8").split("\n")) {
      const f = line.trim().split(/\s+/)
      const name = f[f.length - 1]!
      if (/^[a-z_0-9]+$/.test(name) && name !== "total" && /^\d+$/.test(f[3] ?? "")) rows.push([name, Number(f[3]) / traced.ops])
    }
    for (const [name, perOp] of rows.sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log(`  ${name.padEnd(16)} ${perOp.toFixed(2)}`)
    rmSync(out, { force: true })
  }
} finally {
  await server.stop()
}
