// lull: how long one request takes to be answered after a silence of GAP ms,
// repeated 100 times on one connection (what a parked worker's wake-up costs).
//
//   bun bench/lull.ts <host:port> [gap ms = 30]
//
// Against a running echo, e.g. `RINGLINE_BACKEND=io_uring bun bench/servers/ringline_echo.ts 1`
// (its "ready <tcp> <udp>" line gives host:port). Prints the median, p90 and largest round trip.
import net from "node:net"

const [addr, gapArg] = process.argv.slice(2)
if (addr === undefined) throw new Error("usage: bun bench/lull.ts <host:port> [gap ms]")
const gap = Number(gapArg ?? 30)
const at = addr.lastIndexOf(":")
const socket = net.connect(Number(addr.slice(at + 1)), addr.slice(0, at))
await new Promise((resolve) => socket.once("connect", resolve))
socket.setNoDelay(true)
const trips: number[] = []
for (let i = 0; i < 100; i++) {
  await Bun.sleep(gap)
  const t = performance.now()
  const echoed = new Promise((resolve) => socket.once("data", resolve))
  socket.write("x")
  await echoed
  trips.push(performance.now() - t)
}
socket.end()
trips.sort((a, b) => a - b)
console.log(`after ${gap} ms of silence: median ${trips[50]!.toFixed(3)} ms, p90 ${trips[90]!.toFixed(3)} ms, max ${trips[99]!.toFixed(3)} ms`)
