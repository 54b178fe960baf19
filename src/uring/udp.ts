// UDP on the ring: multishot recvmsg into a dedicated provided-buffer ring,
// datagrams handed to their reader in those buffers (copied instead once half
// of them wait in a queue, so a slow reader never stalls the ring), and sends
// from a fixed set of native slots as sendmsg with the peer address.
import type { Config, RecvBufferConfig } from "../config"
import { UdpSendError } from "../errors"
import { C } from "../metrics"
import { Errno, NativeError } from "../native/errno"
import { CQE_F_MORE, MSG, Opcode, RECVMSG } from "../native/layout"
import { formatPeer, UdpCtx, udpMaxDatagram, type PeerAddress, type UdpBackend } from "../udp"
import { SlotWaiters } from "../waiter"
import { BufferRing, type Ring } from "./ring"
import { Kind } from "./kinds"
import { decodeSockaddr, encodeSockaddr } from "./sockaddr"

const MSG_TRUNC = 0x20
const REARM_AFTER_ERROR_MS = 10

/** The worker's UDP send slots: slab bytes after the TCP pool, msg descriptors after the connections'. */
export class UdpSendSlots {
  private readonly free: number[] = []
  private readonly waiters = new SlotWaiters()

  constructor(
    readonly count: number,
    readonly slotSize: number,
    readonly slabBase: number,
    readonly msgBase: number,
  ) {
    for (let i = count - 1; i >= 0; i--) this.free.push(i)
  }

  take(): number {
    return this.free.length > 0 ? this.free.pop()! : -1
  }

  release(slot: number): void {
    this.free.push(slot)
    this.waiters.wakeOne()
  }

  get hasWaiters(): boolean {
    return this.waiters.any
  }

  ready(): Promise<void> {
    return this.free.length > 0 ? Promise.resolve() : this.waiters.wait()
  }
}

/**
 * The worker's UDP receive buffers, shared by its sockets. A datagram queued for
 * a reader stays in its buffer (no copy) while fewer than half the buffers are
 * lent out; beyond that it is copied, so the kernel always has buffers to
 * receive into whoever is slow to read.
 */
export class UdpRecvBuffers {
  /** Views of a buffer start at the payload, after the recvmsg header and the sender's address. */
  readonly ring: BufferRing
  private lent = 0
  private readonly lendMax: number

  constructor(ring: Ring, bgid: number, cfg: RecvBufferConfig) {
    this.ring = new BufferRing(ring, bgid, cfg.ringSize, cfg.bufferSize, -1, RECVMSG.headerBytes + RECVMSG.nameRoom)
    this.lendMax = cfg.ringSize >> 1
  }

  /** Takes a lending slot for one buffer, if there is one. */
  lend(): boolean {
    if (this.lent >= this.lendMax) return false
    this.lent++
    return true
  }

  /** A lent buffer came back from its reader. */
  returned(bid: number): void {
    this.lent--
    this.ring.giveBack(bid)
  }
}

export class UringUdp implements UdpBackend {
  readonly ctx: UdpCtx
  private armed = false
  private parked = false
  private open = true
  private local: string | null = null
  /** The whole UDP buffer ring as a DataView (recvmsg headers are read in place). */
  private readonly header: DataView
  private readonly buffers: BufferRing

  constructor(
    private readonly ring: Ring,
    readonly index: number,
    readonly fd: number,
    private readonly recvBuffers: UdpRecvBuffers,
    private readonly slots: UdpSendSlots,
    cfg: Config,
    private readonly counters: Float64Array,
    private readonly kick: () => void,
    private readonly name: (fd: number) => string,
  ) {
    this.buffers = recvBuffers.ring
    this.ctx = new UdpCtx(this, cfg.udpRecvQueueCapacity, counters, udpMaxDatagram(cfg.udpRecvBuffer.bufferSize))
    this.header = new DataView(this.buffers.bytes.buffer, this.buffers.bytes.byteOffset, this.buffers.bytes.byteLength)
    this.arm()
  }

  private arm(): void {
    if (this.armed || !this.open) return
    this.armed = true
    this.parked = false
    this.ring.push(Opcode.RECVMSG_MULTI, Kind.UDP_RECV, this.index, 0, this.fd, this.buffers.bgid)
    this.kick()
  }

  onRecv(res: number, flags: number, bid: number): void {
    if (bid >= 0) {
      if (res >= this.buffers.viewOffset && this.open) this.deliver(bid, res)
      else this.buffers.giveBack(bid)
    }
    if (flags & CQE_F_MORE) return
    this.armed = false
    if (res === -Errno.ENOBUFS) {
      this.counters[C.recvEnobufsParks]!++
      this.parked = true
      return
    }
    // A socket error ended the multishot: re-arm after a pause, so a persistent one cannot spin.
    if (res < 0) setTimeout(() => this.arm(), REARM_AFTER_ERROR_MS)
    else this.arm()
  }

  /** The ring is going away: no more receives or sends on this socket, and no datagram left in its memory. */
  close(): void {
    this.ctx.ownQueued()
    this.open = false
  }

  /** Buffers are back with the kernel: a parked recvmsg comes back. */
  unpark(): void {
    if (this.parked) this.arm()
  }

  /**
   * Buffer `bid` holds `len` bytes: recvmsg header, sender address, payload.
   * Read in place; the payload goes to the reader as a view of the buffer,
   * lent (given back when read) while the lending budget allows.
   */
  private deliver(bid: number, len: number): void {
    const base = bid * this.buffers.bufferSize
    const payloadLen = this.header.getUint32(base + RECVMSG.payloadlen * 4, true)
    const msgFlags = this.header.getUint32(base + RECVMSG.flags * 4, true)
    if (msgFlags & MSG_TRUNC || this.buffers.viewOffset + payloadLen > len) {
      this.buffers.giveBack(bid)
      return this.ctx.dropped()
    }
    const peer = decodeSockaddr(this.buffers.bytes, base + RECVMSG.headerBytes)
    const payload = this.buffers.view(bid, payloadLen)
    if (this.recvBuffers.lend()) return this.ctx.deliver(payload, peer, bid)
    this.ctx.deliver(payload, peer) // over budget: copied if queued
    this.buffers.giveBack(bid)
  }

  release(bid: number): void {
    this.recvBuffers.returned(bid)
  }

  sendTo(_udp: UdpCtx, peer: PeerAddress, data: Uint8Array): void {
    if (!this.open) throw new UdpSendError("Closed", "the UDP socket is closed (its worker shut down)")
    const name = encodeSockaddr(peer)
    if (name === null) throw new UdpSendError("InvalidInput", `bad peer address ${formatPeer(peer)}`)
    const slot = this.slots.take()
    if (slot < 0) throw new UdpSendError("PoolExhausted", `all ${this.slots.count} UDP send slots are in flight (await sendReady())`)
    try {
      this.submitSend(slot, name, data)
    } catch (e) {
      this.slots.release(slot)
      if (e instanceof NativeError && e.code === "EBUSY") throw new UdpSendError("SubmissionQueueFull", `the submission queue is full: ${e.message}`)
      throw e
    }
  }

  private submitSend(slot: number, name: Uint8Array, data: Uint8Array): void {
    const off = this.slots.slabBase + slot * this.slots.slotSize
    this.ring.slab.set(data, off)
    const msg = this.slots.msgBase + slot
    const w = this.ring.msgWordIndex(msg)
    const words = this.ring.msgWords
    words[w + MSG.iovCount] = 1
    words[w + MSG.nameLen] = name.length
    words[w + MSG.iovWord] = off
    words[w + MSG.iovWord + 1] = data.length
    this.ring.msgBytes.set(name, msg * MSG.bytes + MSG.nameByte)
    this.ring.push(Opcode.SENDMSG, Kind.UDP_SEND, slot, 0, this.fd, msg)
    this.kick()
  }

  sendReady(): Promise<void> {
    return this.slots.ready()
  }

  localAddr(): string {
    return (this.local ??= this.name(this.fd))
  }
}
