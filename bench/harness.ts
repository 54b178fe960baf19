// What the benchmark tools share: the servers, the loads, starting a server
// pinned to a CPU, running the C load generator, and reading a server's CPU
// time from /proc. bench/run.ts builds the tables from them; bench/profile.ts
// looks inside one server under one load.
import { readdirSync, readFileSync, rmSync } from "node:fs"

export const root = new URL("../", import.meta.url).pathname
export const bin = (name: string) => `${root}zig-out/bin/${name}`
const bun = process.execPath

export interface ServerSpec {
  name: string
  cmd: string[]
  env?: Record<string, string>
}

export const ALL_SERVERS: ServerSpec[] = [
  { name: "C io_uring", cmd: [bin("echo_uring"), "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"] },
  // The same server with every wait bounded by a 200 µs kernel timeout: what a timer per wait costs.
  { name: "C io_uring, timed waits", cmd: [bin("echo_uring"), "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--wait-timeout-us", "200"] },
  { name: "C epoll", cmd: [bin("echo_epoll"), "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"] },
  { name: "ringline io_uring", cmd: [bun, `${root}bench/servers/ringline_echo.ts`], env: { RINGLINE_BACKEND: "io_uring" } },
  { name: "ringline portable", cmd: [bun, `${root}bench/servers/ringline_echo.ts`], env: { RINGLINE_BACKEND: "portable" } },
  // The same echo served by onData instead of an onAccept task per connection (AsyncEventHandler.onData).
  { name: "ringline io_uring, onData", cmd: [bun, `${root}bench/servers/ringline_echo.ts`], env: { RINGLINE_BACKEND: "io_uring", RINGLINE_BENCH_ON_DATA: "1" } },
  { name: "ringline portable, onData", cmd: [bun, `${root}bench/servers/ringline_echo.ts`], env: { RINGLINE_BACKEND: "portable", RINGLINE_BENCH_ON_DATA: "1" } },
  { name: "Bun.listen", cmd: [bun, `${root}bench/servers/bun_echo.ts`] },
  { name: "node:net", cmd: ["node", `${root}bench/servers/node_echo.mjs`] },
]

/** Servers only bench/pair.ts runs: calibrations, not columns of run.ts's tables. */
export const PAIR_ONLY_SERVERS: ServerSpec[] = [
  // The C server spending 2 µs of user time per completion: what user time per op costs in CPU per op.
  { name: "C io_uring, 2 µs busy per completion", cmd: [bin("echo_uring"), "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--busy-ns", "2000"] },
  // TCP echo on the ring layer alone, no runtime above it: what driving io_uring from Bun costs at least (TCP rows only).
  { name: "ring layer alone", cmd: [bun, `${root}bench/servers/ring_floor.ts`], env: { RINGLINE_BACKEND: "io_uring" } },
]

export interface RowSpec {
  name: string
  args: (tcp: string, udp: string) => string[]
  /** Report latency percentiles rather than CPU ratios (open loop). */
  latency?: boolean
}

/**
 * The loads; time-based ones run `seconds` each. The connect storms count
 * connections instead: enough for about a second of work, so the JIT-compiled
 * servers are measured warm (`quick` shortens them).
 */
export function allRows(seconds: number, quick: boolean): RowSpec[] {
  const s = String(seconds)
  return [
    { name: "TCP rr, 16 conns × 64 B", args: (t) => ["tcp-rr", "--addr", t, "--conns", "16", "--size", "64", "--seconds", s] },
    { name: "TCP rr, 128 conns × 1 KiB", args: (t) => ["tcp-rr", "--addr", t, "--conns", "128", "--size", "1024", "--seconds", s] },
    // 64 MiB transfers, one after another on fresh connections for `seconds` (one alone is ~70 ms: too short to be steady).
    { name: "firehose 64 MiB", args: (t) => ["firehose", "--addr", t, "--bytes", String(64 << 20), "--seconds", s] },
    { name: "UDP rr, 256 B", args: (_, u) => ["udp-rr", "--addr", u, "--size", "256", "--seconds", s] },
    { name: "UDP flood, 256 B, 8 senders", args: (_, u) => ["udp-flood", "--addr", u, "--senders", "8", "--size", "256", "--seconds", s] },
    { name: "connect storm, sequential", args: (t) => ["connect-storm", "--addr", t, "--count", quick ? "500" : "10000", "--concurrency", "1"] },
    { name: "connect storm, 32 concurrent", args: (t) => ["connect-storm", "--addr", t, "--count", quick ? "1024" : "16384", "--concurrency", "32"] },
    { name: "TCP open loop 16 conns × 64 B at 20k req/s", args: (t) => ["tcp-rr", "--addr", t, "--conns", "16", "--size", "64", "--seconds", s, "--rate", "20000"], latency: true },
  ]
}

export interface LoadResult {
  ok: boolean
  ops: number
  seconds: number
  errors: number
  p50_us?: number
  p99_us?: number
  p999_us?: number
  mb_per_s?: number
  error?: string
}

/**
 * Each watched server's threads and the run time (ns, schedstat) each had when last
 * seen. A thread that exits takes its run time out of /proc: JSC's JIT and helper
 * threads exit after idling, and a sum over the live threads alone then drops by all
 * they ever ran (a server's CPU for a cell came out negative). So threads stay counted
 * at their last sighting, and a sampler looks every THREAD_SAMPLE_MS, so an exiting
 * thread's last moments are all that can be missed.
 */
const threadRunTimes = new Map<number, Map<string, number>>()
const THREAD_SAMPLE_MS = 100
const threadSampler = setInterval(() => {
  for (const pid of threadRunTimes.keys()) sampleThreads(pid)
}, THREAD_SAMPLE_MS)
threadSampler.unref()

/** The run time (ns, from schedstat) of each of `pid`'s live threads, by thread id; empty once the process is gone. */
export function liveThreadTimes(pid: number): Map<string, number> {
  const times = new Map<string, number>()
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    // the process is gone
  }
  for (const tid of tids) {
    try {
      times.set(tid, Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]))
    } catch {
      // a thread that exited between the listing and the read
    }
  }
  return times
}

/** Reads the run time of `pid`'s live threads into threadRunTimes; returns the total over all threads seen (exited ones at their last sighting). */
function sampleThreads(pid: number): number {
  let seen = threadRunTimes.get(pid)
  if (seen === undefined) threadRunTimes.set(pid, (seen = new Map()))
  for (const [tid, ns] of liveThreadTimes(pid)) seen.set(tid, ns)
  let ns = 0
  for (const v of seen.values()) ns += v
  return ns
}

/** CPU seconds the server has used so far: every thread's run time from schedstat (ns resolution), exited threads included. */
export function cpuSeconds(pid: number): number {
  return sampleThreads(pid) / 1e9
}

/** utime and stime of the whole process, in clock ticks, and context switches of all its threads. */
export function processTimes(pid: number): { user: number; kernel: number; switches: number } {
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

/**
 * Runs `load` (it returns how many operations it made) with `strace -c` on every
 * thread of pid: the calls of each syscall per operation, most frequent first,
 * and their total. strace slows the server, so only the counts mean anything,
 * and only where requests come one at a time: with many in flight (TCP rr 16 ×
 * 64 B) the slowed server takes bigger batches, and calls made once per batch
 * came out at a quarter of what perf stat counts untraced (bench/profile.ts).
 * Null where strace is not installed.
 */
export async function syscallsPerOp(pid: number, load: () => Promise<number>): Promise<{ ops: number; total: number; rows: Array<[string, number]> } | null> {
  if (Bun.which("strace") === null) return null
  const out = `/tmp/ringline-strace-${process.pid}-${pid}.txt`
  const tracer = Bun.spawn(["strace", "-q", "-c", "-f", "-p", String(pid), "-o", out], { stderr: "ignore" })
  await Bun.sleep(500) // attached to every thread
  const ops = await load()
  tracer.kill("SIGINT")
  await tracer.exited
  const rows: Array<[string, number]> = []
  for (const line of readFileSync(out, "utf8").split("\n")) {
    const f = line.trim().split(/\s+/)
    const name = f[f.length - 1]!
    if (/^[a-z_0-9]+$/.test(name) && name !== "total" && /^\d+$/.test(f[3] ?? "")) rows.push([name, Number(f[3]) / ops])
  }
  rmSync(out, { force: true })
  return { ops, total: rows.reduce((sum, [, n]) => sum + n, 0), rows: rows.sort((a, b) => b[1] - a[1]) }
}

/** The middle value, the upper middle for an even count (pair.ts and lull.ts report these). */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return m ? Number(m[1]) : NaN
}

export interface Running {
  pid: number
  tcp: string
  udp: string
  exited: () => boolean
  stop: () => Promise<void>
}

/**
 * A server by its name here, or "name@/other/checkout" to run that checkout's
 * build of it (its bench/ and zig-out/), with extra environment variables.
 */
export function serverSpec(arg: string, env: Record<string, string> = {}): ServerSpec {
  const [name, otherRoot] = arg.split("@")
  const base = [...ALL_SERVERS, ...PAIR_ONLY_SERVERS].find((s) => s.name === name)
  if (base === undefined) throw new Error(`no server "${name}" in bench/harness.ts`)
  const cmd = otherRoot === undefined ? base.cmd : base.cmd.map((part) => part.replace(root, `${otherRoot.replace(/\/?$/, "/")}`))
  return { name: arg, cmd, env: { ...base.env, ...env } }
}

export async function startServer(spec: ServerSpec, cpu: string, extraArgs: string[] = []): Promise<Running> {
  const child = Bun.spawn(["taskset", "-c", cpu, ...spec.cmd, ...extraArgs], {
    env: { ...process.env, ...spec.env },
    stdout: "pipe",
    stderr: "inherit",
  })
  const reader = child.stdout.getReader()
  let text = ""
  const deadline = Date.now() + 10_000
  while (!text.includes("\n")) {
    if (Date.now() > deadline) throw new Error(`${spec.name} did not print "ready"`)
    const { value, done } = await reader.read()
    if (done) throw new Error(`${spec.name} exited before it was ready`)
    text += new TextDecoder().decode(value)
  }
  const [word, tcp, udp] = text.trim().split(/\s+/)
  if (word !== "ready") throw new Error(`${spec.name}: unexpected first line ${text}`)
  sampleThreads(child.pid) // watched from now on (cpuSeconds)
  return {
    pid: child.pid,
    tcp: tcp!,
    udp: udp!,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    stop: async () => {
      child.kill("SIGTERM")
      const t = setTimeout(() => child.kill("SIGKILL"), 3000)
      await child.exited
      clearTimeout(t)
      threadRunTimes.delete(child.pid)
    },
  }
}

export async function loadgen(args: string[], cpu = "0"): Promise<LoadResult> {
  const child = Bun.spawn(["taskset", "-c", cpu, bin("loadgen"), ...args], { stdout: "pipe", stderr: "pipe" })
  const out = await new Response(child.stdout).text()
  await child.exited
  try {
    return JSON.parse(out.trim().split("\n").pop()!) as LoadResult
  } catch {
    return { ok: false, ops: 0, seconds: 0, errors: 1, error: `unparseable loadgen output: ${out}` }
  }
}

/**
 * The same load as warm-up (time-based loads shortened to 1 s, the 64 MiB
 * firehose lengthened to 512 MiB, the connect storms tripled): JIT-compiled
 * servers are measured warm, as they run in production. Short warm-ups left
 * Bun's JIT threads still compiling during the measured run (a fifth of the
 * server's CPU in a connect storm, seen with perf; the firehose's CPU per op
 * still falling over its first ten runs; after one 10,000-connection storm the
 * next one still cost ringline 57 µs per connection, the ten after it 48–54).
 */
export function warmupArgs(args: string[]): string[] {
  const warm: Record<string, (v: string) => string> = {
    "--seconds": () => "1",
    "--bytes": (v) => String(Number(v) * 8),
    "--count": (v) => String(Number(v) * 3),
  }
  return args.map((a, i) => (i > 0 && warm[args[i - 1]!] !== undefined ? warm[args[i - 1]!]!(a) : a))
}
