// A small UDP test client over node:dgram: send, and await replies with a timeout.
import dgram from "node:dgram"

export class UdpClient {
  private readonly socket: dgram.Socket
  private readonly inbox: Buffer[] = []
  private waiting: ((b: Buffer) => void) | null = null

  private constructor(readonly family: "udp4" | "udp6") {
    this.socket = dgram.createSocket(family)
    this.socket.on("message", (msg) => {
      const w = this.waiting
      if (w !== null) {
        this.waiting = null
        w(msg)
      } else this.inbox.push(msg)
    })
  }

  static async open(family: "udp4" | "udp6" = "udp4"): Promise<UdpClient> {
    const c = new UdpClient(family)
    await new Promise<void>((resolve) => c.socket.bind(0, family === "udp4" ? "127.0.0.1" : "::1", resolve))
    return c
  }

  send(addr: string, data: Uint8Array | string): void {
    const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(addr)!
    this.socket.send(typeof data === "string" ? Buffer.from(data) : data, Number(m[2]), m[1]!)
  }

  /** The next datagram, or rejects after ms. */
  recv(ms = 2000): Promise<Buffer> {
    const queued = this.inbox.shift()
    if (queued) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting = null
        reject(new Error(`no datagram within ${ms} ms`))
      }, ms)
      this.waiting = (b) => {
        clearTimeout(t)
        resolve(b)
      }
    })
  }

  async request(addr: string, data: Uint8Array | string, ms = 2000): Promise<Buffer> {
    this.send(addr, data)
    return this.recv(ms)
  }

  close(): void {
    this.socket.close()
  }
}
