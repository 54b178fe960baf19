// lull: sparse traffic. For each server, one connection, 100 one-byte requests
// GAP ms apart: the round trip (median, p90, largest: how soon a worker that
// went idle answers) and the server's CPU time per request (the wake-up, the
// request, and whatever the server does until it is idle again).
//
//   bun bench/lull.ts [gaps in ms, comma-separated = 2,20,200] [server names...]
//
// Servers are bench/harness.ts names (default: C io_uring, Bun.listen, ringline
// portable, ringline io_uring; "name@/other/checkout" runs another build, as in
// pair.ts), each started alone and pinned to CPU 1, warmed up with 300 requests
// 1 ms apart and 200 more 5 ms apart before the timed ones (the JIT compiles the
// path a lull takes too: without them its compiling counted in the first gap's figures).
import net from "node:net"
import { cpuSeconds, serverSpec, startServer } from "./harness"

const [gapsArg, ...names] = process.argv.slice(2)
const gaps = (gapsArg ?? "2,20,200").split(",").map(Number)
const chosen = names.length > 0 ? names : ["C io_uring", "Bun.listen", "ringline portable", "ringline io_uring"]
const ROUNDS = 100

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
  return trips.sort((a, b) => a - b)
}

for (const name of chosen) {
  const server = await startServer(serverSpec(name), "1")
  const at = server.tcp.lastIndexOf(":")
  const socket = net.connect(Number(server.tcp.slice(at + 1)), server.tcp.slice(0, at))
  await new Promise((resolve) => socket.once("connect", resolve))
  socket.setNoDelay(true)
  await requests(socket, 300, 1)
  await requests(socket, 200, 5)
  for (const gap of gaps) {
    const cpuBefore = cpuSeconds(server.pid)
    const trips = await requests(socket, ROUNDS, gap)
    const cpuUs = ((cpuSeconds(server.pid) - cpuBefore) / ROUNDS) * 1e6
    const ms = (i: number) => trips[i]!.toFixed(3)
    console.log(`${name}, after ${gap} ms of silence: round trip median ${ms(ROUNDS >> 1)} ms, p90 ${ms(90)}, max ${ms(ROUNDS - 1)}; server CPU ${cpuUs.toFixed(0)} µs per request`)
  }
  socket.end()
  await server.stop()
}
