// TCP echo server on ringline.
//
//   bun examples/tcp_echo.ts [port]        (default port 7000; 0 = any free port)
//
// Talk to it with `nc 127.0.0.1 7000`: every line you type comes back.
// It runs one worker per CPU (io_uring where the kernel allows, else the
// portable backend) and stops gracefully on Ctrl-C (SIGINT) or SIGTERM.
import { Config, ParseResult, RinglineBuilder, type AsyncEventHandler, type ConnCtx } from "../src/index"

export default class Echo implements AsyncEventHandler {
  static createForWorker(_workerId: number): Echo {
    return new Echo()
  }

  async onAccept(conn: ConnCtx): Promise<void> {
    // Echo what arrives, straight from the receive path (withEachData: no promise
    // per read), but never more than the send pool takes right now: when it is
    // full the parser pauses, the rest stays in the receive buffers (no copy),
    // and the handler waits for room before it goes on. (For many short
    // connections the same parser can be the handler's onData instead, with no
    // task per connection at all: README, "Sending and backpressure".)
    const echo = (data: Uint8Array) => {
      const k = Math.min(data.length, conn.sendCapacity)
      if (k === 0) return ParseResult.pause()
      conn.sendNowait(k === data.length ? data : data.subarray(0, k))
      return ParseResult.consumed(k)
    }
    while (await conn.withEachData(echo)) await conn.waitForSendRoom() // false: the peer closed
  }
}

if (import.meta.main) {
  const port = Number(process.argv[2] ?? 7000)
  const cfg = Config.default()
  cfg.worker.pinToCore = false
  const server = await new RinglineBuilder(cfg).bind(`127.0.0.1:${port}`).launch(new URL(import.meta.url))
  const stopped = server.waitOnSignal() // the signal handler goes in before the line below: a Ctrl-C right after it still stops gracefully
  console.log(`tcp_echo: listening on ${server.tcpAddr} with ${server.handles.length} worker(s), ${server.backend} backend; Ctrl-C stops`)
  await stopped
  const m = server.metrics()
  console.log(`tcp_echo: stopped after ${m.connectionsAccepted} connection(s), ${m.bytesReceived} byte(s) echoed`)
}
