// The send path shared by both backends: a bounded pool of fixed-size slots
// over one slab (native memory on io_uring, an ArrayBuffer on portable), and a
// per-connection FIFO of segments. A segment is bytes copied into a pool slot,
// or, where the backend lends receive buffers that live in the slab (io_uring),
// a received buffer sent on as it is. Nothing here drops bytes: a send either
// fits as a whole or is refused, and bytes leave the queue only when the kernel
// has taken them.
import { C } from "./metrics"
import { KEPT_SEGMENTS, type BufferLender } from "./recv"
import { SlotWaiters } from "./waiter"

/** Fixed-size slots over a slab; FIFO waiters for free slots. */
export class SendPool {
  private readonly freeSlots: Int32Array
  private freeCount: number
  /** Free slots promised to bytes not queued yet (see reserve). */
  private reserved = 0
  private readonly waiters = new SlotWaiters()

  constructor(
    /** The whole slab; slot i lives at base + i × slotSize. */
    readonly slab: Uint8Array,
    readonly base: number,
    readonly slotSize: number,
    readonly slotCount: number,
    private readonly counters: Float64Array,
  ) {
    this.freeSlots = new Int32Array(slotCount)
    for (let i = 0; i < slotCount; i++) this.freeSlots[i] = slotCount - 1 - i
    this.freeCount = slotCount
  }

  get available(): number {
    return this.freeCount - this.reserved
  }

  /**
   * Sets k free slots aside (false if fewer are available): for bytes a backend
   * holds to write without a copy, which must still fit in the pool if the
   * kernel takes only part of them.
   */
  reserve(k: number): boolean {
    if (k > this.available) return false
    this.reserved += k
    return true
  }

  /** Gives back k reserved slots (before queueing what they were kept for, or when it is no longer needed). */
  unreserve(k: number): void {
    this.reserved -= k
    for (let i = 0; i < k && this.waiters.any; i++) this.waiters.wakeOne() // as k releases would
  }

  offsetOf(slot: number): number {
    return this.base + slot * this.slotSize
  }

  /** n bytes were queued straight from a lent receive buffer (metric). */
  noteLent(n: number): void {
    this.counters[C.bytesSentWithoutCopy]! += n
  }

  /** n queued bytes were dropped: their connection closed or failed before the kernel took them (metric). */
  noteUnsent(n: number): void {
    this.counters[C.unsentBytesAtClose]! += n
  }

  /** A send found the pool full (metric). */
  noteExhausted(): void {
    this.counters[C.sendPoolExhausted]!++
  }

  /** Caller has checked `available`. */
  take(): number {
    return this.freeSlots[--this.freeCount]!
  }

  release(slot: number): void {
    this.freeSlots[this.freeCount++] = slot
    this.waiters.wakeOne()
  }

  /** Someone waits for a slot (a release would resume them). */
  get hasWaiters(): boolean {
    return this.waiters.any
  }

  /** Resolves when a slot has been freed (FIFO among waiters). */
  waitForSlot(): Promise<void> {
    return this.waiters.wait()
  }
}

interface Waiter {
  resolve: () => void
  reject: (e: Error) => void
}

interface Token extends Waiter {
  end: number
}

const NO_WAITERS: readonly Waiter[] = []

/** One connection's queued bytes, as segments in FIFO order. */
export class SendQueue {
  // Segment i: bytes [offs[i], offs[i] + lens[i]) of the slab, inside pool slot
  // slots[i], or, when slots[i] < 0, inside the lent buffer with token -1 - slots[i].
  // Queued segments are [head, end); the arrays keep their length when the queue
  // drains (end = 0), as it does once per reply, and truncating an array is a slow path.
  private slots: number[] = []
  private offs: number[] = []
  private lens: number[] = []
  private head = 0
  private end = 0
  /** Segments from head handed to the kernel and not yet completed. */
  inFlight = 0
  /** Total bytes ever queued / taken by the kernel; tokens compare against these. */
  private queuedSeq = 0
  private sentSeq = 0
  private tokens: Token[] | null = null // made on first use
  /** Waiting for the queue to fall below highWater (made on first use: connections are opened at storm rates). */
  private roomWaiters: Waiter[] | null = null
  /** Queued bytes that are lent buffers: at most highWater (beyond it sends copy, so one connection cannot hold the ring). */
  private lentBytes = 0

  constructor(
    private readonly pool: SendPool,
    private readonly lender: BufferLender | null,
    /** Queued bytes at which the connection reports no room (Config.sendHighWater). */
    private readonly highWater: number,
  ) {}

  get queuedBytes(): number {
    return this.queuedSeq - this.sentSeq
  }

  get segmentCount(): number {
    return this.end - this.head
  }

  segmentOffset(i: number): number {
    return this.offs[this.head + i]!
  }

  segmentLength(i: number): number {
    return this.lens[this.head + i]!
  }

  /** Room left in the tail slot, if the tail is not in flight. */
  private tailRoom(): number {
    const t = this.end - 1
    if (t < this.head + this.inFlight || this.slots[t]! < 0) return 0
    return this.pool.offsetOf(this.slots[t]!) + this.pool.slotSize - (this.offs[t]! + this.lens[t]!)
  }

  /** Bytes to queue now: the pool's room, capped to keep this queue within highWater. */
  capacity(): number {
    const poolRoom = this.tailRoom() + this.pool.available * this.pool.slotSize
    return Math.min(poolRoom, Math.max(0, this.highWater - this.queuedBytes))
  }

  /** The queue has reached highWater: waitForRoom waits for the kernel to take bytes, not for the pool. */
  get atHighWater(): boolean {
    return this.queuedBytes >= this.highWater
  }

  /** Resolves once the queue is below highWater again; rejects if the connection fails first. */
  belowHighWater(): Promise<void> {
    if (!this.atHighWater) return Promise.resolve()
    return new Promise((resolve, reject) => (this.roomWaiters ??= []).push({ resolve, reject }))
  }

  /** The pool has room to copy n bytes into this queue. */
  canTake(n: number): boolean {
    return Math.ceil(Math.max(0, n - this.tailRoom()) / this.pool.slotSize) <= this.pool.available
  }

  /** Queues all of `bytes` (lent, else copied), or nothing: false when the pool lacks room. */
  enqueue(bytes: Uint8Array): boolean {
    const n = bytes.length
    if (n === 0 || this.lend(bytes)) return true
    if (!this.canTake(n)) {
      this.pool.noteExhausted()
      return false
    }
    const room = this.tailRoom()
    const slab = this.pool.slab
    let done = 0
    if (room > 0) {
      const t = this.end - 1
      const k = Math.min(room, n)
      slab.set(k === n ? bytes : bytes.subarray(0, k), this.offs[t]! + this.lens[t]!)
      this.lens[t]! += k
      done = k
    }
    while (done < n) {
      const slot = this.pool.take()
      const off = this.pool.offsetOf(slot)
      const k = Math.min(this.pool.slotSize, n - done)
      slab.set(done === 0 && k === n ? bytes : bytes.subarray(done, done + k), off)
      this.append(slot, off, k)
      done += k
    }
    this.queuedSeq += n
    return true
  }

  /**
   * Queues `bytes` without a copy if they lie in a buffer still lent to the
   * connection (a withData view on io_uring); false leaves them to be copied.
   */
  private lend(bytes: Uint8Array): boolean {
    const n = bytes.length
    if (n === 0 || this.lender === null || this.lentBytes + n > this.highWater) return false
    const token = this.lender.retain(bytes)
    if (token < 0) return false
    this.append(-1 - token, this.lender.slabOffset(bytes), n)
    this.lentBytes += n
    this.queuedSeq += n
    this.pool.noteLent(n)
    return true
  }

  /** A send() waits on this queue (a completion would resume it). */
  get hasTokens(): boolean {
    return this.tokens !== null && this.tokens.length > 0
  }

  /** A promise that resolves when every byte queued so far has reached the kernel. */
  flushed(): Promise<void> {
    if (this.sentSeq >= this.queuedSeq) return Promise.resolve()
    return new Promise((resolve, reject) => (this.tokens ??= []).push({ end: this.queuedSeq, resolve, reject }))
  }

  /** The kernel took n bytes from the head: free whole slots, resolve tokens. */
  consume(n: number): void {
    this.sentSeq += n
    while (n > 0) {
      const len = this.lens[this.head]!
      const lent = this.slots[this.head]! < 0
      if (n < len) {
        this.offs[this.head]! += n
        this.lens[this.head] = len - n
        if (lent) this.lentBytes -= n
        break
      }
      n -= len
      if (lent) this.lentBytes -= len
      this.releaseSegment(this.head++)
    }
    if (this.head === this.end) this.head = this.end = 0
    else if (this.head > 64 && this.head * 2 > this.end) this.compact()
    const tokens = this.tokens
    if (tokens !== null) while (tokens.length > 0 && tokens[0]!.end <= this.sentSeq) tokens.shift()!.resolve()
    if (this.roomWaiters !== null && !this.atHighWater) {
      const waiters = this.roomWaiters
      this.roomWaiters = null
      for (const w of waiters) w.resolve()
    }
  }

  /**
   * Drops everything queued (connection gone): slots back to the pool, waiting
   * sends rejected with `error()` (made only when someone waits: closes are hot).
   */
  fail(error: () => Error): number {
    const lost = this.queuedBytes
    if (lost > 0) this.pool.noteUnsent(lost)
    for (let i = this.head; i < this.end; i++) this.releaseSegment(i)
    this.lentBytes = 0
    this.head = this.end = 0
    this.inFlight = 0
    this.sentSeq = this.queuedSeq
    const tokens = this.tokens ?? NO_WAITERS
    const roomWaiters = this.roomWaiters ?? NO_WAITERS
    this.tokens = this.roomWaiters = null
    if (tokens.length + roomWaiters.length > 0) {
      const e = error()
      for (const w of tokens) w.reject(e)
      for (const w of roomWaiters) w.reject(e)
    }
    return lost
  }

  /** Before the slot's next connection (the queue is empty: failed or drained): segment lists a burst grew long are let go (a slot keeps its queue for good). */
  recycle(): void {
    if (this.slots.length > KEPT_SEGMENTS) this.slots = [], this.offs = [], this.lens = []
  }

  private releaseSegment(i: number): void {
    const slot = this.slots[i]!
    if (slot >= 0) this.pool.release(slot)
    else this.lender!.release(-1 - slot)
  }

  private append(slot: number, off: number, len: number): void {
    this.slots[this.end] = slot
    this.offs[this.end] = off
    this.lens[this.end++] = len
  }

  /** Moves the queued segments to the front (a long queue that is drained from its head). */
  private compact(): void {
    this.slots.copyWithin(0, this.head, this.end)
    this.offs.copyWithin(0, this.head, this.end)
    this.lens.copyWithin(0, this.head, this.end)
    this.end -= this.head
    this.head = 0
  }
}
