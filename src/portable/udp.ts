// UDP over Bun.udpSocket with the io_uring backend's bounds: a datagram takes
// one of Config.udpSendSlots slots from sendTo until it is handed to the socket
// at the end of the turn (or after `drain`, when the socket pushed back), so a
// burst beyond the slots gives PoolExhausted and sendReady() waits for a slot.
import type { udp } from "bun"
import type { Config } from "../config"
import { UdpSendError } from "../errors"
import { C } from "../metrics"
import { UdpCtx, udpMaxDatagram, type PeerAddress, type UdpBackend } from "../udp"
import { joinAddr } from "./driver"

interface Pending {
  data: Uint8Array
  peer: PeerAddress
}

export class PortableUdp implements UdpBackend {
  readonly ctx: UdpCtx
  private socket!: udp.Socket<"uint8array">
  private readonly pending: Pending[] = []
  private readonly waiters: Array<() => void> = []
  private flushScheduled = false
  private blocked = false

  private constructor(
    private readonly slots: number,
    private readonly counters: Float64Array,
    cfg: Config,
  ) {
    this.ctx = new UdpCtx(this, cfg.udpRecvQueueCapacity, counters, udpMaxDatagram(cfg.udpRecvBuffer.bufferSize))
  }

  static async bind(hostname: string, port: number, cfg: Config, counters: Float64Array): Promise<PortableUdp> {
    const u = new PortableUdp(cfg.udpSendSlots, counters, cfg)
    const max = u.ctx.maxDatagram
    u.socket = await Bun.udpSocket({
      hostname,
      port,
      binaryType: "uint8array",
      socket: {
        data: (_s, data, port, address) => {
          // Same rule as io_uring: a datagram beyond one receive buffer is dropped and counted.
          if (data.length > max) return u.ctx.dropped()
          u.ctx.deliver(data, { address, port, family: address.includes(":") ? "IPv6" : "IPv4" })
        },
        drain: () => {
          u.blocked = false
          u.flush()
        },
        // An ICMP error for an earlier datagram (ECONNREFUSED from a closed peer port)
        // surfaces on the next receive; it concerns that peer only, as with io_uring.
        error: () => {
          u.counters[C.udpSendErrors]!++
        },
      },
    })
    return u
  }

  sendTo(_udp: UdpCtx, peer: PeerAddress, data: Uint8Array): void {
    if (this.pending.length >= this.slots) {
      throw new UdpSendError("PoolExhausted", `all ${this.slots} UDP send slots are in flight (await sendReady())`)
    }
    this.pending.push({ data: data.slice(), peer })
    if (!this.flushScheduled && !this.blocked) {
      this.flushScheduled = true
      queueMicrotask(() => this.flush())
    }
  }

  private flush(): void {
    this.flushScheduled = false
    while (this.pending.length > 0) {
      const p = this.pending[0]!
      let sent: boolean
      try {
        sent = this.socket.send(p.data, p.peer.port, p.peer.address)
      } catch {
        this.counters[C.udpSendErrors]!++
        sent = true // an unroutable datagram is reported and dropped, as a failed sendmsg is
      }
      if (!sent) {
        this.blocked = true // the socket pushed back: resume on drain
        return
      }
      this.pending.shift()
      this.counters[C.datagramsSent]!++
      this.waiters.shift()?.()
    }
  }

  sendReady(): Promise<void> {
    if (this.pending.length < this.slots) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  localAddr(): string {
    return joinAddr(this.socket.hostname, this.socket.port)
  }

  close(): void {
    this.ctx.shutdown()
    this.socket.close()
  }
}
