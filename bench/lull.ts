// lull: sparse traffic. For each server, one connection, requests of one byte
// GAP ms apart: the round trip (median, p90, largest: how soon a worker that
// went idle answers), the server's CPU time per request (the wake-up, the
// request, and whatever the server does until it is idle again) and its
// threads' context switches per request (how often it went to sleep).
//
//   bun bench/lull.ts [gaps in ms, comma-separated = 2,20,200] [server names...]
//
// Servers are bench/harness.ts names (default: C io_uring, Bun.listen, ringline
// portable, ringline io_uring; "name@/other/checkout" runs another build, as in
// pair.ts). LULL_REPS rounds (default 3): in each, every server in turn is started
// alone, pinned to CPU 1, warmed up with 6,000 requests 1 ms apart and 1,000 more 5 ms
// apart (the JIT compiles the path a lull takes too, and JSC takes a function called
// once per request to its top tier only after thousands of calls: after 3,000
// requests 1 ms apart and 1,500 2 ms apart, BUN_JSC_reportCompileTimes=1 on a
// ringline server showed its loop, `run`, compiled to FTL in the next 2,500, 32 ms at
// once), then gets 100 requests at each gap. Alone,
// because other servers' idle housekeeping on the same CPU would cool its caches.
// CPU per request is the median over the rounds (a slow moment of the VM lands on
// one round of one server), each round's figure in brackets; round trips are pooled.
// Each server first idles for LULL_SETTLE_S seconds (default 40): Bun runs an eden GC
// in every JavaScript VM once a second until 30 of them in a row saw the heap unchanged
// (then once per 30 s), so for its first ~35 s a ringline server pays that for its idle
// main thread's VM as well as for its worker's (~0.5 ms a second each on this VM), where
// Bun.listen has one VM. That is a start-up cost, not a per-request one (BUN_JSC_logGC=1
// on an idle server shows the collections stop after ~35 s).
// LULL_STRACE=1 adds one more round under `strace -c -f`: syscalls per request
// (LULL_REPS=0 LULL_STRACE=1: that round alone).
import net from "node:net"
import { cpuSeconds, median, processTimes, serverSpec, startServer, syscallsPerOp, type Running } from "./harness"

const [gapsArg, ...names] = process.argv.slice(2)
const gaps = (gapsArg ?? "2,20,200").split(",").map(Number)
const chosen = names.length > 0 ? names : ["C io_uring", "Bun.listen", "ringline portable", "ringline io_uring"]
const REQUESTS = 100
const REPS = Number(process.env.LULL_REPS ?? 3)
const SETTLE_MS = Number(process.env.LULL_SETTLE_S ?? 40) * 1000

/** Round trips (ms) of `count` one-byte requests, each after `gap` ms of silence. */
async function requests(socket: net.Socket, count: number, gap: number): Promise<number[]> {
  const trips: number[] = []
  for (let i = 0; i < count; i++) {
    await Bun.sleep(gap)
    const t = performance.now()
    const echoed = new Promise((resolve) => socket.once("data", resolve))
    socket.write("x")
    await echoed
    trips.push(performance.now() - t)
  }
  return trips
}

/** Starts the server alone on CPU 1, lets it settle, connects and warms both up; `use` gets them, then both stop. */
async function withServer(name: string, use: (server: Running, socket: net.Socket) => Promise<void>): Promise<void> {
  const server = await startServer(serverSpec(name), "1")
  await Bun.sleep(SETTLE_MS)
  const at = server.tcp.lastIndexOf(":")
  const socket = net.connect(Number(server.tcp.slice(at + 1)), server.tcp.slice(0, at))
  await new Promise((resolve) => socket.once("connect", resolve))
  socket.setNoDelay(true)
  await requests(socket, 6000, 1)
  await requests(socket, 1000, 5)
  await use(server, socket)
  socket.end()
  await server.stop()
}

const push = <T>(m: Map<string, T[]>, key: string, ...xs: T[]) => m.set(key, [...(m.get(key) ?? []), ...xs])

const cpu = new Map<string, number[]>()
const switches = new Map<string, number[]>()
const trips = new Map<string, number[]>()
for (let rep = 0; rep < REPS; rep++) {
  for (const name of chosen) {
    await withServer(name, async (server, socket) => {
      for (const gap of gaps) {
        const key = `${name}\t${gap}`
        const cpuBefore = cpuSeconds(server.pid)
        const switchesBefore = processTimes(server.pid).switches
        push(trips, key, ...(await requests(socket, REQUESTS, gap)))
        push(cpu, key, ((cpuSeconds(server.pid) - cpuBefore) / REQUESTS) * 1e6)
        push(switches, key, (processTimes(server.pid).switches - switchesBefore) / REQUESTS)
      }
    })
  }
}

for (const name of REPS > 0 ? chosen : []) {
  for (const gap of gaps) {
    const key = `${name}\t${gap}`
    const t = trips.get(key)!.sort((a, b) => a - b)
    const ms = (q: number) => t[Math.floor(q * (t.length - 1))]!.toFixed(3)
    const perRep = cpu.get(key)!.map((us) => us.toFixed(0)).join(" ")
    console.log(
      `${name}, after ${gap} ms of silence: round trip median ${ms(0.5)} ms, p90 ${ms(0.9)}, max ${ms(1)}; ` +
        `server CPU ${median(cpu.get(key)!).toFixed(0)} µs per request [${perRep}], ${median(switches.get(key)!).toFixed(1)} context switches`,
    )
  }
}

if (process.env.LULL_STRACE === "1") {
  for (const name of chosen) {
    await withServer(name, async (server, socket) => {
      for (const gap of gaps) {
        const traced = await syscallsPerOp(server.pid, async () => (await requests(socket, REQUESTS, gap)).length)
        if (traced === null) throw new Error("LULL_STRACE=1 needs strace (apt-get install strace)")
        const top = traced.rows.slice(0, 6).map(([sys, n]) => `${sys} ${n.toFixed(2)}`)
        console.log(`${name}, after ${gap} ms of silence, traced: ${traced.total.toFixed(1)} syscalls per request (${top.join(", ")})`)
      }
    })
  }
}
