// Where one server's time goes under one load of the benchmark: CPU per op
// (schedstat, as bench/run.ts) split into user and kernel time, context
// switches per op, and, where strace is installed, syscalls per op by name from
// a second, traced run of the same load (strace slows the server, so its
// batches grow: calls made once per batch come out low there). Where perf is
// installed, two more runs: syscalls, io_uring_enter calls, completions and
// io_uring requests by opcode per op, counted by perf stat (tracepoints, no
// work per event), and a sampled profile split by where the code lives
// (kernel, Bun's runtime, JIT-compiled JavaScript named through JSC's jitdump,
// libringline) with the hottest JavaScript and kernel functions (also as ns per op
// of that run) and the callers of the three hottest kernel functions. Server on
// CPU 1, load generator on CPU 0.
//
//   bun bench/profile.ts SERVER ROW          (substrings of the names in bench/harness.ts)
//   bun bench/profile.ts "ringline io_uring" "UDP rr"
//   bun bench/profile.ts "C io_uring, timed" "UDP rr"
//   BENCH_SECONDS=5 bun bench/profile.ts ringline "connect storm, seq"
//   PROFILE_TOP=40 bun bench/profile.ts "C io_uring" "UDP flood"   (40 hottest functions of each kind, not 12)
//
// Needs `zig build bench -Doptimize=ReleaseFast`; strace and perf are optional
// (apt-get install strace linux-perf).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { ALL_SERVERS, PAIR_ONLY_SERVERS, allRows, cpuSeconds, loadgen, processTimes, startServer, syscallsPerOp, warmupArgs } from "./harness"

const [serverName, rowName] = process.argv.slice(2)
// An exact name first (one name can be part of another: "ringline io_uring, onData"), else the first containing it.
const servers = [...ALL_SERVERS, ...PAIR_ONLY_SERVERS]
const spec = servers.find((s) => s.name === serverName) ?? servers.find((s) => serverName !== undefined && s.name.includes(serverName))
const row = allRows(Number(process.env.BENCH_SECONDS ?? 3), false).find((r) => rowName !== undefined && r.name.includes(rowName))
if (spec === undefined || row === undefined) {
  console.error(`usage: bun bench/profile.ts SERVER ROW\n  servers: ${servers.map((s) => s.name).join(" | ")}`)
  process.exit(2)
}

const perf = Bun.which("perf")
const top = Number(process.env.PROFILE_TOP ?? 12)

/** What countedPerOp counts: all syscalls, the ring's, completions, and submitted requests by opcode (include/uapi/linux/io_uring.h). */
const COUNTED_EVENTS: Array<[string, string[]]> = [
  ["all syscalls", ["-e", "raw_syscalls:sys_enter"]],
  ["io_uring_enter", ["-e", "syscalls:sys_enter_io_uring_enter"]],
  ["io_uring completions", ["-e", "io_uring:io_uring_complete"]],
  ...(
    [["POLL_ADD", 6], ["SENDMSG", 9], ["RECVMSG", 10], ["TIMEOUT", 11], ["ACCEPT", 13], ["ASYNC_CANCEL", 14], ["CONNECT", 16], ["CLOSE", 19], ["READ", 22], ["SEND", 26], ["RECV", 27], ["SHUTDOWN", 34]] as const
  ).map(([name, opcode]): [string, string[]] => [`request ${name}`, ["-e", "io_uring:io_uring_submit_req", "--filter", `opcode == ${opcode}`]]),
]
const work = mkdtempSync("/tmp/ringline-profile-")
let server = await startServer(spec, "1")
try {
  const args = row.args(server.tcp, server.udp)
  await loadgen(warmupArgs(args))
  const before = processTimes(server.pid)
  const cpuBefore = cpuSeconds(server.pid)
  const load = await loadgen(args)
  const cpu = cpuSeconds(server.pid) - cpuBefore
  const after = processTimes(server.pid)
  if (!load.ok || load.ops === 0) throw new Error(`the load failed: ${JSON.stringify(load)}`)
  const user = after.user - before.user
  const kernel = after.kernel - before.kernel
  const share = (x: number) => (user + kernel > 0 ? ((100 * x) / (user + kernel)).toFixed(0) : "?")
  console.log(
    `${spec.name} / ${row.name}: ${load.ops} ops, ${((cpu * 1e6) / load.ops).toFixed(1)} µs CPU/op ` +
      `(user ${share(user)} %, kernel ${share(kernel)} %), ${((after.switches - before.switches) / load.ops).toFixed(2)} context switches/op`,
  )

  const traced = await syscallsPerOp(server.pid, async () => (await loadgen(args)).ops)
  if (traced !== null) {
    console.log(`syscalls per op by name (traced run, ${traced.ops} ops; strace slows the server and its batches grow: see the counted figures below):`)
    for (const [name, perOp] of traced.rows.slice(0, 6)) console.log(`  ${name.padEnd(16)} ${perOp.toFixed(2)}`)
  }

  if (perf !== null) {
    // Counted (perf stat), not recorded: recording each event slowed the server enough to
    // change its batches, and it reported a quarter of the io_uring_enter calls per op.
    const counted = await countedPerOp(COUNTED_EVENTS.flatMap(([, e]) => e), args)
    console.log(`per op, counted (perf stat, ${counted.ops} ops):`)
    COUNTED_EVENTS.forEach(([name], i) => {
      const n = counted.counts[i] ?? NaN
      if (!name.startsWith("request ") || n > 0) console.log(`  ${name.padEnd(24)} ${n.toFixed(2)}`)
    })

    // A server of its own, started so that JSC writes a jitdump (names of compiled functions)
    // into `work`; the runs above are without it (it writes and fsyncs per compile).
    await server.stop()
    server = await startServer({ ...spec, env: { ...spec.env, BUN_JSC_useJITDump: "1", BUN_JSC_jitDumpDirectory: work } }, "1")
    const named = row.args(server.tcp, server.udp)
    await loadgen(warmupArgs(named))
    const sampled = await underPerf(["-e", "cpu-clock", "-F", "4999", "-g", "-k", "1"], named)
    console.log(`  (${writeJitMap(server.pid)} compiled functions named)`)
    const report = (sort: string) =>
      perfOutput(["report", "-i", sampled.data, "--no-children", "-g", "none", "--percent-limit", "0.1", "--sort", sort])
        .split("\n")
        .filter((l) => /^\s+[\d.]+%/.test(l))
    // A share of the samples as time per op: the share of this run's CPU per op (perf's sampling included).
    const perOp = (line: string) => `${((Number(/[\d.]+/.exec(line)![0]) / 100) * sampled.nsPerOp).toFixed(0).padStart(6)} ns/op`
    console.log(`where the CPU goes (sampled run, ${sampled.ops} ops, ${(sampled.nsPerOp / 1000).toFixed(2)} µs CPU/op; share of the server's samples):`)
    for (const l of report("dso").slice(0, 6)) console.log(`  ${l.trim().replace(/\[JIT\] tid \d+/, "JIT-compiled JavaScript")}`)
    // By thread: the worker against JSC's compiler and GC threads (a compiler still busy means the warm-up was short).
    console.log(`  by thread: ${report("comm").slice(0, 4).map((l) => l.trim().replace(/\s+/, " ")).join(", ")}`)
    const bySymbol = report("dso,sym")
    console.log("  hottest JavaScript and native functions outside the kernel:")
    for (const l of bySymbol.filter((l) => !l.includes("[kernel")).slice(0, top)) console.log(`    ${perOp(l)}  ${l.trim()}`)
    console.log("  hottest kernel functions:")
    const kernelHot = bySymbol.filter((l) => l.includes("[kernel")).slice(0, top)
    for (const l of kernelHot) console.log(`    ${perOp(l)}  ${l.trim().replace(/\s+\[kernel\.kallsyms\]\s+\[k\]/, "  ")}`)
    // Who calls the three hottest (from the call graphs): a lock's unlock says little until its caller is named.
    console.log("  their callers (2 % of the samples or more):")
    for (const l of kernelHot.slice(0, 3)) {
      const sym = l.trim().split(/\s+/).at(-1)!
      const folded = perfOutput(["report", "-i", sampled.data, "--no-children", `--symbols=${sym}`, "-g", "folded,2,callee", "--max-stack", "2", "--stdio"])
      for (const c of folded.split("\n").filter((c) => new RegExp(`^\\s*[\\d.]+% ${sym};`).test(c))) console.log(`    ${perOp(c)}  ${c.trim().replace(";", " ← ")}`)
    }
    rmSync(`/tmp/perf-${server.pid}.map`, { force: true })
  }
} finally {
  await server.stop()
  rmSync(work, { recursive: true, force: true })
}

/** One more run of the load under `perf stat` on the server: each event's count per op, in the order given. */
async function countedPerOp(events: string[], args: string[]): Promise<{ counts: number[]; ops: number }> {
  const out = `${work}/stat.csv`
  const stat = Bun.spawn([perf!, "stat", "-x", ",", "-o", out, ...events, "-p", String(server.pid)], { stdout: "ignore", stderr: "ignore" })
  await Bun.sleep(500) // attached to every thread
  const load = await loadgen(args)
  stat.kill("SIGINT")
  await stat.exited
  if (!load.ok || load.ops === 0) throw new Error(`the load under perf stat failed: ${JSON.stringify(load)}`)
  // CSV lines "count,unit,event,...", one per event in order; "<not counted>" reads as NaN.
  const counts = readFileSync(out, "utf8")
    .split("\n")
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => Number(l.split(",")[0]) / load.ops)
  return { counts, ops: load.ops }
}

/** One more run of the load with `perf record` attached to the server. */
async function underPerf(opts: string[], args: string[]): Promise<{ data: string; ops: number; nsPerOp: number }> {
  const data = `${work}/perf-${opts.length}.data`
  const rec = Bun.spawn([perf!, "record", "-q", ...opts, "-p", String(server.pid), "-o", data], { stdout: "ignore", stderr: "ignore" })
  await Bun.sleep(500) // attached to every thread
  const cpuBefore = cpuSeconds(server.pid)
  const load = await loadgen(args)
  const cpu = cpuSeconds(server.pid) - cpuBefore
  rec.kill("SIGINT")
  await rec.exited
  if (!load.ok || load.ops === 0) throw new Error(`the load under perf failed: ${JSON.stringify(load)}`)
  return { data, ops: load.ops, nsPerOp: (cpu * 1e9) / load.ops }
}

function perfOutput(cmd: string[]): string {
  return Bun.spawnSync([perf!, ...cmd], { stdout: "pipe", stderr: "ignore" }).stdout.toString()
}

/**
 * JSC's jitdump (jit-<tid>-<pid>.dump, records of compiled code) as the perf map
 * perf reads for anonymous executable memory (/tmp/perf-<pid>.map). perf inject
 * --jit would want the file named jit-<pid>.dump.
 */
function writeJitMap(pid: number): number {
  const lines: string[] = []
  for (const name of readdirSync(work).filter((n) => n.startsWith("jit-") && n.split(/[-.]/).includes(String(pid)))) {
    const b = readFileSync(`${work}/${name}`)
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
    // Header: magic, version, header size (u32 each), ...; records: id, total size (u32), timestamp (u64).
    for (let off = v.getUint32(8, true); off + 16 <= b.length; ) {
      const [id, size] = [v.getUint32(off, true), v.getUint32(off + 4, true)]
      if (size === 0) break
      if (id === 0) {
        // JIT_CODE_LOAD: pid, tid (u32), vma, code address, code size, code index (u64), then the name.
        const addr = v.getBigUint64(off + 32, true)
        const codeSize = v.getBigUint64(off + 40, true)
        const nameAt = off + 56
        const fn = b.subarray(nameAt, b.indexOf(0, nameAt)).toString()
        lines.push(`${addr.toString(16)} ${codeSize.toString(16)} ${fn}`)
      }
      off += size
    }
  }
  writeFileSync(`/tmp/perf-${pid}.map`, lines.join("\n") + "\n")
  return lines.length
}
