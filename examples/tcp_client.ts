// Client-only mode: nothing is bound; each worker's onStart opens connections
// with connect(), round-trips messages, and stops its worker with requestShutdown().
//
//   bun examples/tcp_client.ts [host:port]
//
// With no address it first starts examples/tcp_echo.ts on a free port to talk to.
// Prints what each worker did and exits.
import { Config, ConnStream, connect, requestShutdown, RinglineBuilder, type AsyncEventHandler, type ConnCtx } from "../src/index"

const enc = new TextEncoder()
const dec = new TextDecoder()

export default class EchoClient implements AsyncEventHandler {
  constructor(
    private readonly workerId: number,
    private readonly target: string,
  ) {}

  static createForWorker(workerId: number, data: unknown): EchoClient {
    return new EchoClient(workerId, (data as { target: string }).target)
  }

  async onAccept(_conn: ConnCtx): Promise<void> {}

  async onStart(): Promise<void> {
    const connections = 4
    const rounds = 100
    const t = performance.now()
    await Promise.all(
      Array.from({ length: connections }, async (_, c) => {
        const stream = new ConnStream(await connect(this.target, { timeoutMs: 2000 }))
        const buf = new Uint8Array(64)
        for (let i = 0; i < rounds; i++) {
          const msg = `worker ${this.workerId} conn ${c} round ${i}`
          await stream.writeAll(enc.encode(msg))
          let got = ""
          while (got.length < msg.length) got += dec.decode(buf.subarray(0, await stream.read(buf)))
          if (got !== msg) throw new Error(`echo mismatch: ${got}`)
        }
        stream.close()
      }),
    )
    const ms = performance.now() - t
    console.log(`tcp_client: worker ${this.workerId}: ${connections} connections × ${rounds} round trips to ${this.target} in ${ms.toFixed(1)} ms`)
    requestShutdown()
  }
}

if (import.meta.main) {
  const cfg = Config.default()
  cfg.worker.threads = 2
  cfg.worker.pinToCore = false
  cfg.quiet = true
  let target = process.argv[2]
  let echoServer: Awaited<ReturnType<RinglineBuilder["launch"]>> | null = null
  if (target === undefined) {
    echoServer = await new RinglineBuilder(cfg).bind("127.0.0.1:0").launch(new URL("./tcp_echo.ts", import.meta.url))
    target = echoServer.tcpAddr!
    console.log(`tcp_client: started an echo server on ${target}`)
  }
  const clients = await new RinglineBuilder(cfg).handlerData({ target }).launch(new URL(import.meta.url))
  await Promise.all(clients.handles.map((h) => h.join())) // each worker stops itself
  await echoServer?.stop()
  console.log(`tcp_client: done (${clients.backend} backend)`)
}
