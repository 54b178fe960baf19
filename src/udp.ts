// UdpCtx: one bound UDP socket as its handler sees it, shared by both backends.
// Received datagrams wait in a queue bounded by Config.udpRecvQueueCapacity;
// beyond it they are dropped and counted (UDP's own contract, made visible).
import { UdpSendError } from "./errors"
import { C } from "./metrics"
import { Waiter } from "./waiter"

/** A datagram's sender or destination. Received peers are frozen (they may be shared between datagrams). */
export interface PeerAddress {
  readonly address: string
  readonly port: number
  readonly family: "IPv4" | "IPv6"
}

/** Bytes of each provided receive buffer taken by the recvmsg header and address room. */
export const UDP_RECV_OVERHEAD = 16 + 28

/** The largest datagram a worker receives or sends: what a receive buffer holds. */
export function udpMaxDatagram(bufferSize: number): number {
  return bufferSize - UDP_RECV_OVERHEAD
}

/** What a backend does for a UDP socket. */
export interface UdpBackend {
  /** Copies data into a send slot and submits; throws UdpSendError. */
  sendTo(udp: UdpCtx, peer: PeerAddress, data: Uint8Array): void
  /** Resolves when a send slot is free. */
  sendReady(): Promise<void>
  localAddr(udp: UdpCtx): string
  /** Takes back a receive buffer deliver() was lent (token >= 0); backends that never lend have none. */
  release?(token: number): void
}

/** "1.2.3.4:5" / "[::1]:5" → PeerAddress; throws UdpSendError InvalidInput. */
export function parsePeer(peer: PeerAddress | string): PeerAddress {
  if (typeof peer !== "string") {
    if (typeof peer?.address !== "string" || !Number.isInteger(peer.port) || peer.port < 0 || peer.port > 65535) {
      throw new UdpSendError("InvalidInput", `bad peer ${JSON.stringify(peer)}: want { address, port, family } or "host:port"`)
    }
    return peer
  }
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(peer) ?? /^([0-9.]+|localhost):(\d{1,5})$/.exec(peer)
  const port = m ? Number(m[2]) : -1
  if (!m || port > 65535) throw new UdpSendError("InvalidInput", `bad peer address "${peer}": want "a.b.c.d:port" or "[v6]:port"`)
  const v6 = peer.startsWith("[")
  return { address: m[1] === "localhost" ? "127.0.0.1" : m[1]!, port, family: v6 ? "IPv6" : "IPv4" }
}

export function formatPeer(p: PeerAddress): string {
  return p.family === "IPv6" ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`
}

/** recvBatch's and recvEach's callback: returning false stops the hand-over after this datagram. */
export type DatagramFn = (data: Uint8Array, peer: PeerAddress) => unknown
/** Stands for recvFrom in the waiting consumer's place (recvBatch and recvEach put their callback there). */
const RECV_FROM: DatagramFn = () => {}

export class UdpCtx {
  // Ring queue of received datagrams and their peers. A datagram is a copy (token -1) or,
  // where the backend lends its receive buffers (io_uring), a view of one with its token,
  // given back once the datagram has been handed over.
  private readonly data: Array<Uint8Array | undefined>
  private readonly peers: Array<PeerAddress | undefined>
  private readonly tokens: Int32Array
  private head = 0
  private count = 0
  /**
   * The one consumer waiting for a datagram: its promise, for RECV_FROM or the
   * callback of recvBatch or recvEach, which runs as the datagram arrives
   * (waiter.subject; null when none waits). recvFrom and recvBatch wait once
   * per datagram or batch, recvEach once in all.
   */
  private readonly waiter = new Waiter<unknown, DatagramFn>()
  /** The waiting consumer is recvEach's: its callback stays on after each datagram. */
  private each = false
  /** The last handOver ended because fn returned false. */
  private handOverStopped = false
  private closed = false

  constructor(
    private readonly backend: UdpBackend,
    readonly capacity: number,
    private readonly counters: Float64Array,
    /** The largest datagram sendTo accepts. */
    readonly maxDatagram: number,
  ) {
    this.data = new Array(capacity)
    this.peers = new Array(capacity)
    this.tokens = new Int32Array(capacity).fill(-1)
  }

  get localAddr(): string {
    return this.backend.localAddr(this)
  }

  /** Datagrams waiting to be read. */
  get queued(): number {
    return this.count
  }

  /**
   * Backend: a datagram arrived. `data` is valid only during this call, unless
   * `token` >= 0: then it is lent until release(token), which this calls
   * exactly once, when the datagram has been handed over or dropped.
   */
  deliver(data: Uint8Array, peer: PeerAddress, token = -1): void {
    this.counters[C.datagramsReceived]!++
    const fn = this.waiter.subject
    if (fn !== null && this.count === 0) {
      if (fn === RECV_FROM) {
        const copy = data.slice()
        this.giveBack(token)
        return this.waiter.resolve([copy, peer])
      }
      let more: unknown
      try {
        more = fn(data, peer) // (the consumer still waits meanwhile: a recvFrom from inside fn is refused)
      } catch (e) {
        this.each = false
        return this.waiter.reject(e as Error)
      } finally {
        this.giveBack(token)
      }
      if (!this.each) return this.waiter.resolve(1)
      if (more === false) this.endEach(true)
      return
    }
    if (this.count === this.capacity) {
      this.counters[C.datagramsDropped]!++
      return this.giveBack(token)
    }
    const i = (this.head + this.count) % this.capacity
    this.data[i] = token >= 0 ? data : data.slice()
    this.tokens[i] = token
    this.peers[i] = peer
    this.count++
  }

  /** Backend: the buffers it lent are going away; queued datagrams still in one are copied out. */
  ownQueued(): void {
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) % this.capacity
      const token = this.tokens[i]!
      if (token < 0) continue
      this.data[i] = this.data[i]!.slice()
      this.tokens[i] = -1
      this.giveBack(token)
    }
  }

  private giveBack(token: number): void {
    if (token >= 0) this.backend.release!(token)
  }

  /** Backend: a datagram was discarded before delivery (truncated). */
  dropped(): void {
    this.counters[C.datagramsDropped]!++
  }

  /** Resolves to the next datagram (a copy you own) and its sender. One consumer at a time. */
  recvFrom(): Promise<[Uint8Array, PeerAddress]> {
    if (this.count === 0) return this.wait("recvFrom", RECV_FROM)
    const i = this.head
    const d = this.data[i]!, peer = this.peers[i]!, token = this.tokens[i]!
    this.dropHead()
    const owned = token >= 0 ? d.slice() : d
    this.giveBack(token)
    return Promise.resolve([owned, peer])
  }

  /**
   * Calls fn for up to `max` queued datagrams, or, when none is queued, for the
   * next one as it arrives (from the backend's receive path: no promise hop in
   * between); resolves to how many. fn may return false to end the batch after
   * that datagram. A throw from fn rejects. `data` is valid only during the
   * call (on io_uring it is the receive buffer itself): copy it to keep it.
   */
  recvBatch(max: number, fn: DatagramFn): Promise<number> {
    if (this.count === 0) return this.wait("recvBatch", fn)
    try {
      return Promise.resolve(this.handOver(max, fn))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Calls fn for every datagram: those queued, then each as it arrives, straight
   * from the receive path with no promise per datagram or per batch (recvBatch
   * costs one per wait): the cheapest way to serve a flood, as withEachData is
   * for a connection. `data` is valid only during the call, as in recvBatch.
   * Resolves true when fn returns false (it has had that datagram; call again
   * to go on, say after `await sendReady()`), and false once the socket is
   * closed. A throw from fn rejects. Datagrams arriving in between queue for
   * the next consumer. One consumer at a time, as for recvFrom.
   */
  recvEach(fn: DatagramFn): Promise<boolean> {
    if (this.waiter.subject !== null) return this.wait("recvEach", fn)
    try {
      this.handOver(this.count, fn)
      if (this.handOverStopped) return Promise.resolve(true)
    } catch (e) {
      return Promise.reject(e)
    }
    if (this.closed) return Promise.resolve(false)
    this.each = true
    return this.waiter.wait(fn) as Promise<boolean>
  }

  /** recvEach's consumer ends: true, fn asked to stop; false, the socket closed. */
  private endEach(stopped: boolean): void {
    this.each = false
    this.waiter.resolve(stopped)
  }

  /**
   * Calls fn for up to `max` queued datagrams, until it returns false
   * (handOverStopped) or throws (which passes on); returns how many it had.
   */
  private handOver(max: number, fn: DatagramFn): number {
    this.handOverStopped = false
    let count = 0
    while (count < max && this.count > 0) {
      const i = this.head
      const d = this.data[i]!, peer = this.peers[i]!, token = this.tokens[i]!
      this.dropHead()
      count++
      let more: unknown
      try {
        more = fn(d, peer)
      } finally {
        this.giveBack(token)
      }
      if (more === false) {
        this.handOverStopped = true
        break
      }
    }
    return count
  }

  private wait<T>(what: string, fn: DatagramFn): Promise<T> {
    if (this.waiter.subject !== null) return Promise.reject(new Error(`UdpCtx.${what}: another recvFrom, recvBatch or recvEach is already waiting (one consumer per socket)`))
    if (this.closed) return Promise.reject(new Error(`UdpCtx.${what}: the socket is closed`))
    return this.waiter.wait(fn) as Promise<T>
  }

  /** Takes the oldest datagram off the queue (the caller has read it). */
  private dropHead(): void {
    const i = this.head
    this.data[i] = undefined
    this.peers[i] = undefined
    this.tokens[i] = -1
    this.head = (i + 1) % this.capacity
    this.count--
  }

  /** Sends one datagram; throws UdpSendError (PoolExhausted, SubmissionQueueFull, InvalidInput). */
  sendTo(peer: PeerAddress | string, data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) throw new UdpSendError("InvalidInput", "data must be a Uint8Array")
    if (data.length > this.maxDatagram) {
      throw new UdpSendError("InvalidInput", `datagram of ${data.length} bytes exceeds the ${this.maxDatagram}-byte limit (udpRecvBuffer.bufferSize − ${UDP_RECV_OVERHEAD})`)
    }
    try {
      this.backend.sendTo(this, parsePeer(peer), data)
    } catch (e) {
      this.counters[C.udpSendErrors]!++
      throw e
    }
  }

  /** Resolves when sendTo has a free slot again. */
  sendReady(): Promise<void> {
    return this.backend.sendReady()
  }

  /** Backend: the socket closed; a waiting recvFrom or recvBatch rejects, recvEach resolves. */
  shutdown(): void {
    this.closed = true
    const fn = this.waiter.subject
    if (fn === null) return
    if (this.each) return this.endEach(false)
    this.waiter.reject(new Error(`UdpCtx.${fn === RECV_FROM ? "recvFrom" : "recvBatch"}: the socket is closed`))
  }
}
