// idle: what a 2-worker server costs doing nothing once Bun's start-up GC
// timers have settled (they run once a second for the first ~35 s: lull.ts),
// in milliseconds of CPU per second, per thread and in all. run.ts's idle row
// measures the first 10 s after start instead.
//
//   bun bench/idle.ts [server names... = "ringline io_uring"]
//
// Names as in pair.ts ("name@/other/checkout" runs another build). Each server
// runs alone on CPUs 0–1: IDLE_SETTLE_S seconds (default 45), then IDLE_S seconds
// (default 60) measured from every thread's schedstat. RINGLINE_BENCH_CONFIG (JSON
// of Config fields) reaches the ringline servers, e.g. '{"wakeupWatchdogMs":1000}'.
import { readFileSync } from "node:fs"
import { liveThreadTimes, serverSpec, startServer } from "./harness"

const names = process.argv.slice(2)
const chosen = names.length > 0 ? names : ["ringline io_uring"]
const SETTLE_S = Number(process.env.IDLE_SETTLE_S ?? 45)
const IDLE_S = Number(process.env.IDLE_S ?? 60)

/** A thread's name ("Worker", "mi-scavenger"), or its id once it is gone. */
function threadName(pid: number, tid: string): string {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim()
  } catch {
    return tid
  }
}

for (const name of chosen) {
  const server = await startServer(serverSpec(name), "0,1", ["2"])
  await Bun.sleep(SETTLE_S * 1000)
  const before = liveThreadTimes(server.pid)
  await Bun.sleep(IDLE_S * 1000)
  const after = liveThreadTimes(server.pid)
  const perThread: string[] = []
  let total = 0
  for (const [tid, ns] of after) {
    const spent = ns - (before.get(tid) ?? 0)
    total += spent
    if (spent / 1e6 / IDLE_S >= 0.01) perThread.push(`${threadName(server.pid, tid)} ${(spent / 1e6 / IDLE_S).toFixed(2)}`)
  }
  await server.stop()
  const msPerS = total / 1e6 / IDLE_S
  console.log(`${name}, idle ${IDLE_S} s after ${SETTLE_S} s: ${msPerS.toFixed(2)} ms of CPU a second (${(msPerS / 10).toFixed(3)} % of a core); by thread: ${perThread.join(", ")}`)
}
process.exit(0)
