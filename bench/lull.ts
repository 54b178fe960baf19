// lull: how long one request takes to be answered after a silence of GAP ms,
// repeated 100 times on one connection (what a parked worker's wake-up costs),
// and, given the server's pid, the server CPU time per request over those 100
// (what sparse traffic costs: the wake-up, the request, the idle ticks after it).
//
//   bun bench/lull.ts <host:port> [gap ms = 30] [server pid]
//
// Against a running echo, e.g. `RINGLINE_BACKEND=io_uring bun bench/servers/ringline_echo.ts 1`
// (its "ready <tcp> <udp>" line gives host:port). Prints the median, p90 and largest round trip.
import net from "node:net"
import { cpuSeconds } from "./harness"

const [addr, gapArg, pidArg] = process.argv.slice(2)
if (addr === undefined) throw new Error("usage: bun bench/lull.ts <host:port> [gap ms] [server pid]")
const pid = pidArg === undefined ? null : Number(pidArg)
const gap = Number(gapArg ?? 30)
const at = addr.lastIndexOf(":")
const socket = net.connect(Number(addr.slice(at + 1)), addr.slice(0, at))
await new Promise((resolve) => socket.once("connect", resolve))
socket.setNoDelay(true)
const trips: number[] = []
const cpuBefore = pid === null ? 0 : cpuSeconds(pid)
for (let i = 0; i < 100; i++) {
  await Bun.sleep(gap)
  const t = performance.now()
  const echoed = new Promise((resolve) => socket.once("data", resolve))
  socket.write("x")
  await echoed
  trips.push(performance.now() - t)
}
const cpu = pid === null ? "" : `; server CPU ${(((cpuSeconds(pid) - cpuBefore) / trips.length) * 1e6).toFixed(0)} µs per request`
socket.end()
trips.sort((a, b) => a - b)
console.log(`after ${gap} ms of silence: median ${trips[50]!.toFixed(3)} ms, p90 ${trips[90]!.toFixed(3)} ms, max ${trips[99]!.toFixed(3)} ms${cpu}`)
