// UDP echo server on ringline.
//
//   bun examples/udp_echo.ts [port]        (default port 7001; 0 = any free port)
//
// Talk to it with `socat - UDP:127.0.0.1:7001`: each line you type is sent as
// one datagram and comes back. One socket per worker (SO_REUSEPORT on
// io_uring); Ctrl-C (SIGINT) or SIGTERM stops it gracefully.
import { Config, RinglineBuilder, UdpSendError, type AsyncEventHandler, type ConnCtx, type UdpCtx } from "../src/index"

export default class UdpEcho implements AsyncEventHandler {
  static createForWorker(_workerId: number): UdpEcho {
    return new UdpEcho()
  }

  async onAccept(_conn: ConnCtx): Promise<void> {}

  async onUdpBind(udp: UdpCtx): Promise<void> {
    for (;;) {
      const [data, peer] = await udp.recvFrom()
      for (;;) {
        try {
          udp.sendTo(peer, data)
          break
        } catch (e) {
          // Every send slot is in flight: wait for one instead of dropping the reply.
          if (e instanceof UdpSendError && e.kind !== "InvalidInput") await udp.sendReady()
          else throw e
        }
      }
    }
  }
}

if (import.meta.main) {
  const port = Number(process.argv[2] ?? 7001)
  const cfg = Config.default()
  cfg.worker.pinToCore = false
  const server = await new RinglineBuilder(cfg).bindUdp(`127.0.0.1:${port}`).launch(new URL(import.meta.url))
  const stopped = server.waitOnSignal() // the signal handler goes in before the line below: a Ctrl-C right after it still stops gracefully
  console.log(`udp_echo: listening on ${server.udpAddr} with ${server.handles.length} worker(s), ${server.backend} backend; Ctrl-C stops`)
  await stopped
  const m = server.metrics()
  console.log(`udp_echo: stopped after ${m.datagramsReceived} datagram(s) received, ${m.datagramsSent} sent, ${m.datagramsDropped} dropped`)
}
