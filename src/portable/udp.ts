// UDP over Bun.udpSocket with the io_uring backend's bounds. A datagram holds
// one of the worker's Config.udpSendSlots from sendTo until Bun's socket takes
// it: at the end of the turn, or after `drain` when send() returned false
// (Bun 1.4: the kernel had no room, nothing was sent). So a burst beyond the
// slots gives PoolExhausted and sendReady() waits, as on io_uring, where a slot
// is held until the kernel completes the sendmsg.
//
// Replies to a burst go out together: Bun hands each datagram of a recvmmsg
// batch to `data` separately and runs microtasks after each, so a flush per
// microtask costs one sendmmsg per datagram. While datagrams arrive closer
// together than BURST_GAP_MS, the flush waits for the end of the event-loop
// turn (setImmediate) and hands everything to one sendMany. An isolated
// datagram's reply still goes out in its own turn: request/response pays no
// extra loop turn (bench/pair.ts against the per-datagram flush: UDP flood
// 0.83 of the CPU per datagram, UDP rr unchanged within the noise); one made
// while that datagram is delivered, with nothing pending, is sent at once
// (Bun's send takes it before returning): no copy, no flush to wait for.
//
// Bun.udpSocket has no SO_REUSEPORT (a `reusePort` option is ignored: a second
// bind of the port fails with EADDRINUSE), so the builder binds UDP in worker 0 only.
import type { udp } from "bun"
import { isIP } from "node:net"
import type { Config } from "../config"
import { UdpSendError } from "../errors"
import { C } from "../metrics"
import { formatPeer, UdpCtx, udpMaxDatagram, type PeerAddress, type UdpBackend } from "../udp"
import { SlotWaiters } from "../waiter"

/** The worker's UDP send slots, shared by its sockets (as on io_uring). */
export class UdpSendSlots {
  private free: number
  private readonly waiters = new SlotWaiters()

  constructor(readonly count: number) {
    this.free = count
  }

  take(): boolean {
    if (this.free === 0) return false
    this.free--
    return true
  }

  release(): void {
    this.free++
    this.waiters.wakeOne()
  }

  ready(): Promise<void> {
    return this.free > 0 ? Promise.resolve() : this.waiters.wait()
  }
}

/** Recent senders by port (address checked on use), so a sender that repeats costs no allocation. Bounded: cleared when full. */
const PEERS_MAX = 4096
const peersByPort = new Map<number, PeerAddress>()
/** Peers made here from Bun's (valid) sender addresses: replies to them skip address validation. */
const receivedPeers = new WeakSet<PeerAddress>()

function receivedPeer(address: string, port: number, ipv6: boolean): PeerAddress {
  const known = peersByPort.get(port)
  if (known !== undefined && known.address === address) return known
  if (peersByPort.size >= PEERS_MAX) peersByPort.clear()
  const peer: PeerAddress = Object.freeze({ address, port, family: ipv6 ? "IPv6" : "IPv4" })
  peersByPort.set(port, peer)
  receivedPeers.add(peer)
  return peer
}

/** Datagrams this close together (ms) are one burst: see the header. A recvmmsg batch arrives ~1 µs apart; request/response, tens of µs. */
const BURST_GAP_MS = 0.01

export class PortableUdp implements UdpBackend {
  readonly ctx: UdpCtx
  private socket!: udp.Socket<"uint8array">
  /** Datagrams not yet handed to the socket, flat as sendMany takes them: data, port, address each. */
  private pending: Array<Uint8Array | number | string> = []
  private flushScheduled = false
  /** A datagram is being handed to the reader (inside Bun's `data`). */
  private delivering = false
  /** send() returned false: wait for drain. */
  private blocked = false
  /** performance.now() of the last datagram received, and whether it came within BURST_GAP_MS of the one before. */
  private lastArrival = 0
  private inBurst = false
  private readonly flushNow = () => this.flush()

  private constructor(
    private readonly slots: UdpSendSlots,
    private readonly counters: Float64Array,
    cfg: Config,
  ) {
    this.ctx = new UdpCtx(this, cfg.udpRecvQueueCapacity, counters, udpMaxDatagram(cfg.udpRecvBuffer.bufferSize))
  }

  /** Binds; `onEvent` tells the driver a datagram arrived (for onTick). Rejects with Bun's error (code, errno). */
  static async bind(hostname: string, port: number, cfg: Config, counters: Float64Array, slots: UdpSendSlots, onEvent: () => void): Promise<PortableUdp> {
    const u = new PortableUdp(slots, counters, cfg)
    const max = u.ctx.maxDatagram
    u.socket = await Bun.udpSocket({
      hostname,
      port,
      binaryType: "uint8array",
      socket: {
        data: (_s, data, port, address, flags) => {
          const now = performance.now()
          u.inBurst = now - u.lastArrival < BURST_GAP_MS
          u.lastArrival = now
          // Same rule as io_uring: a datagram beyond one receive buffer is dropped and counted.
          if (flags.truncated || data.length > max) u.ctx.dropped()
          else {
            u.delivering = true
            try {
              u.ctx.deliver(data, receivedPeer(address, port, flags.ipv6))
            } finally {
              u.delivering = false
            }
          }
          onEvent()
        },
        drain: () => {
          u.blocked = false
          u.flush()
        },
        // Bun reports ICMP errors for earlier datagrams here (ECONNREFUSED from a closed port).
        // io_uring never sees them on an unconnected socket, so neither do handlers here.
        error: () => {},
      },
    })
    return u
  }

  sendTo(_udp: UdpCtx, peer: PeerAddress, data: Uint8Array): void {
    if (this.socket.closed) throw new UdpSendError("Closed", "the UDP socket is closed (its worker shut down)")
    if (!receivedPeers.has(peer) && isIP(peer.address) === 0) throw new UdpSendError("InvalidInput", `bad peer address ${formatPeer(peer)}`)
    if (!this.slots.take()) throw new UdpSendError("PoolExhausted", `all ${this.slots.count} UDP send slots are in flight (await sendReady())`)
    // A reply to an isolated datagram goes at once (unless the socket is full: then it waits for drain like the rest).
    if (this.delivering && !this.inBurst && this.pending.length === 0 && !this.blocked && this.sendOne(data, peer.port, peer.address)) return
    this.pending.push(data.slice(), peer.port, peer.address)
    if (this.flushScheduled || this.blocked) return
    this.flushScheduled = true
    if (this.inBurst) setImmediate(this.flushNow)
    else queueMicrotask(this.flushNow)
  }

  private flush(): void {
    this.flushScheduled = false
    const pending = this.pending
    const count = pending.length / 3
    let i = 0
    while (i < count && !this.blocked && !this.socket.closed) {
      if (count - i > 1) i += this.sendMany(i === 0 ? pending : pending.slice(3 * i))
      // One alone (also the one sendMany stopped at): tells a datagram that fails from a socket that is full.
      if (i < count && this.sendOne(pending[3 * i] as Uint8Array, pending[3 * i + 1] as number, pending[3 * i + 2] as string)) i++
    }
    if (i === count) pending.length = 0
    else this.pending = pending.slice(3 * i)
  }

  /** Hands datagrams to Bun in one sendmmsg; returns how many it sent (it stops at the first it cannot send). */
  private sendMany(packets: Array<Uint8Array | number | string>): number {
    let sent = 0
    try {
      const r = this.socket.sendMany(packets)
      sent = typeof r === "number" ? r : 0
    } catch {
      // the first datagram failed: sendOne tells why
    }
    this.counters[C.datagramsSent]! += sent
    for (let k = 0; k < sent; k++) this.slots.release()
    return sent
  }

  /** Sends one datagram; false when the socket is full (blocked until drain), true when it is sent or failed (dropped, counted). */
  private sendOne(data: Uint8Array, port: number, address: string): boolean {
    try {
      if (!this.socket.send(data, port, address)) {
        this.blocked = true // resume on drain
        return false
      }
      this.counters[C.datagramsSent]!++
    } catch {
      // A sendmsg that failed (EMSGSIZE, EAFNOSUPPORT, ...): counted and dropped, as io_uring's completion is.
      this.counters[C.udpSendErrors]!++
    }
    this.slots.release()
    return true
  }

  sendReady(): Promise<void> {
    return this.slots.ready()
  }

  localAddr(): string {
    const a = this.socket.address
    return formatPeer({ address: a.address, port: a.port, family: a.family === "IPv6" ? "IPv6" : "IPv4" })
  }

  /** Closes the socket; datagrams not yet handed to it are dropped and their slots freed. */
  close(): void {
    this.ctx.shutdown()
    this.socket.close()
    for (let i = 0; i < this.pending.length / 3; i++) this.slots.release()
    this.pending = []
  }
}
