// ringline echo server for the benchmark: TCP and UDP on 127.0.0.1, port 0.
//   bun bench/servers/ringline_echo.ts [threads]     (RINGLINE_BACKEND picks the backend)
// Prints "ready <tcp> <udp>"; stops gracefully on SIGTERM/SIGINT.
// RINGLINE_BENCH_CONFIG: JSON of Config fields to override ({"sendHighWater": 1048576});
// RINGLINE_BENCH_METRICS=1: print the counters on stderr when stopped.
// RINGLINE_BENCH_INLINE=1: run the worker on the main thread (the handler class
// launched inline), so `bun --cpu-prof-md` samples it.
import { Config, RinglineBuilder, type UdpCtx } from "../../src/index"
import Echo from "../../examples/tcp_echo"

/** The example's TCP echo (copy-free backpressure through sendCapacity), plus a UDP echo run from the receive path (recvEach). */
export default class BenchEcho extends Echo {
  static override createForWorker(_id: number): BenchEcho {
    return new BenchEcho()
  }

  async onUdpBind(udp: UdpCtx): Promise<void> {
    await udp.recvEach((data, peer) => {
      try {
        udp.sendTo(peer, data)
      } catch {
        // every send slot busy: the reply is dropped, as a UDP server may (the loadgen counts it)
      }
    })
  }
}

if (import.meta.main) {
  const cfg = Config.default()
  cfg.worker.threads = Number(process.argv[2] ?? 1)
  cfg.worker.pinToCore = false // the harness pins the whole process with taskset
  cfg.quiet = true
  Object.assign(cfg, JSON.parse(process.env.RINGLINE_BENCH_CONFIG ?? "{}"))
  const server = await new RinglineBuilder(cfg).bind("127.0.0.1:0").bindUdp("127.0.0.1:0").launch(process.env.RINGLINE_BENCH_INLINE === "1" ? BenchEcho : new URL(import.meta.url))
  const stopped = server.waitOnSignal() // the signal handler goes in before the line below: a Ctrl-C right after it still stops gracefully
  console.log(`ready ${server.tcpAddr} ${server.udpAddr} ${server.backend}`)
  await stopped
  if (process.env.RINGLINE_BENCH_METRICS === "1") console.error(`metrics ${JSON.stringify(server.metrics())}`)
  process.exit(0)
}
