// Hunts missed wake-ups of a parked io_uring worker (CHANGELOG: the doorbell's fence):
// fresh servers, each put through busy spells (one connection answered back to
// back for 120–200 ms, long enough to take its sockets out of the doorbell) and
// then requests at random 0–3 ms gaps, across the 1 ms sparse threshold, on
// three kept connections and on fresh ones, so that requests keep arriving as the
// worker parks and rearms its doorbell. A request with no echo within 2 s, or a
// server whose watchdog found a missed wake-up (missedWakeups: answered up to a
// second late), ends it with the server's counters; otherwise it prints what it ran.
//
//   RINGLINE_BACKEND=io_uring bun bench/park_probe.ts [seconds = 60]
import net from "node:net"
import { Config, RinglineBuilder } from "../src/index"

const cfg = Config.default()
cfg.worker.threads = 1
cfg.worker.pinToCore = false
cfg.quiet = true

const ECHO_LIMIT_MS = 2000

function roundTrip(s: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no echo within ${ECHO_LIMIT_MS} ms`)), ECHO_LIMIT_MS)
    s.once("data", () => {
      clearTimeout(timer)
      resolve()
    })
    s.write("x")
  })
}

const until = performance.now() + Number(process.argv[2] ?? 60) * 1000
let servers = 0
let trips = 0
while (performance.now() < until) {
  const server = await new RinglineBuilder(cfg).bind("127.0.0.1:0").launch(new URL("../examples/tcp_echo.ts", import.meta.url))
  const i = server.tcpAddr!.lastIndexOf(":")
  const [host, port] = [server.tcpAddr!.slice(0, i), Number(server.tcpAddr!.slice(i + 1))]
  const open = () => new Promise<net.Socket>((resolve) => {
    const s = net.connect({ port, host }, () => resolve(s))
    s.setNoDelay(true)
  })
  const kept = await Promise.all([open(), open(), open()])
  try {
    for (let spell = 0; spell < 4; spell++) {
      const busyUntil = performance.now() + 120 + Math.random() * 80
      for (; performance.now() < busyUntil; trips++) await roundTrip(kept[0]!)
      for (let j = 0; j < 40; j++, trips++) {
        await Bun.sleep(Math.random() * 3)
        const which = Math.floor(Math.random() * 4)
        if (which < 3) {
          await roundTrip(kept[which]!)
          continue
        }
        const fresh = await open()
        await roundTrip(fresh)
        fresh.destroy()
      }
    }
    if (server.metrics().missedWakeups > 0) throw new Error("the watchdog found a missed wake-up")
  } catch (e) {
    console.log(`server ${servers + 1}, after ${trips} round trips: ${(e as Error).message}; counters ${JSON.stringify(server.metrics())}`)
    process.exit(1)
  }
  for (const s of kept) s.destroy()
  await server.stop()
  servers++
}
console.log(`park_probe: ${servers} servers, ${trips} round trips, every one answered within ${ECHO_LIMIT_MS} ms, no missed wake-up`)
process.exit(0)
