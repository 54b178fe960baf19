// ringline echo server for the benchmark: TCP and UDP on 127.0.0.1, port 0.
//   bun bench/servers/ringline_echo.ts [threads]     (RINGLINE_BACKEND picks the backend)
// Prints "ready <tcp> <udp>"; stops gracefully on SIGTERM/SIGINT.
// RINGLINE_BENCH_CONFIG: JSON of Config fields to override ({"sendHighWater": 1048576});
// RINGLINE_BENCH_METRICS=1: print the counters on stderr when stopped.
// RINGLINE_BENCH_INLINE=1: run the worker on the main thread (the handler class
// launched inline), so `bun --cpu-prof-md` samples it.
// RINGLINE_BENCH_ON_DATA=1: the TCP echo through AsyncEventHandler.onData instead of onAccept.
import { Config, ParseResult, RinglineBuilder, type AsyncEventHandler, type ConnCtx, type UdpCtx } from "../../src/index"
import Echo from "../../examples/tcp_echo"

/** UDP echo run from the receive path (recvEach). */
async function udpEcho(udp: UdpCtx): Promise<void> {
  await udp.recvEach((data, peer) => {
    try {
      udp.sendTo(peer, data)
    } catch {
      // every send slot busy: the reply is dropped, as a UDP server may (the loadgen counts it)
    }
  })
}

/** The example's TCP echo (copy-free backpressure through sendCapacity), plus the UDP echo. */
export default class BenchEcho extends Echo {
  static override createForWorker(_id: number): BenchEcho {
    return new BenchEcho()
  }

  onUdpBind(udp: UdpCtx): Promise<void> {
    return udpEcho(udp)
  }
}

/** The same TCP echo served by onData (no task per connection; RINGLINE_BENCH_ON_DATA=1), plus the UDP echo. */
export class BenchEchoOnData implements AsyncEventHandler {
  static createForWorker(_id: number): BenchEchoOnData {
    return new BenchEchoOnData()
  }

  onData(conn: ConnCtx, data: Uint8Array): ParseResult {
    const k = Math.min(data.length, conn.sendCapacity)
    if (k === 0) return ParseResult.pause() // called again once there is send room
    conn.sendNowait(k === data.length ? data : data.subarray(0, k))
    return ParseResult.consumed(k)
  }

  onUdpBind(udp: UdpCtx): Promise<void> {
    return udpEcho(udp)
  }
}

if (import.meta.main) {
  const cfg = Config.default()
  cfg.worker.threads = Number(process.argv[2] ?? 1)
  cfg.worker.pinToCore = false // the harness pins the whole process with taskset
  cfg.quiet = true
  Object.assign(cfg, JSON.parse(process.env.RINGLINE_BENCH_CONFIG ?? "{}"))
  const onData = process.env.RINGLINE_BENCH_ON_DATA === "1"
  const builder = new RinglineBuilder(cfg).bind("127.0.0.1:0").bindUdp("127.0.0.1:0")
  const server = await (process.env.RINGLINE_BENCH_INLINE === "1"
    ? builder.launch(onData ? BenchEchoOnData : BenchEcho)
    : builder.launch(new URL(import.meta.url), onData ? "BenchEchoOnData" : "default"))
  const stopped = server.waitOnSignal() // the signal handler goes in before the line below: a Ctrl-C right after it still stops gracefully
  console.log(`ready ${server.tcpAddr} ${server.udpAddr} ${server.backend}`)
  await stopped
  if (process.env.RINGLINE_BENCH_METRICS === "1") console.error(`metrics ${JSON.stringify(server.metrics())}`)
  process.exit(0)
}
