// Ring: one native io_uring owned by this thread. Operations are written into
// the native op array and submitted in one call per tick; completions are read
// from the native completion array through views created once.
import { native, nativeBytes, type NativeSymbols, type Pointer } from "../native/lib"
import { check, Errno, NativeError } from "../native/errno"
import { BUF_OWN_MEMORY, CQE, MSG, OP, PARAMS, Setup, WAIT_UNBOUNDED } from "../native/layout"

/** Wait bound while ops are still waiting for submission-queue room. */
const BACKLOG_WAIT_US = 50

export interface RingOptions {
  sqEntries: number
  slabBytes: number
  msgSlots: number
  timerSlots: number
}

export class Ring {
  readonly sym: NativeSymbols
  readonly handle: Pointer
  /** Op records, 8 words each. */
  private readonly ops: Int32Array
  private readonly maxOps: number
  /** Ops queued and not yet in the submission queue. */
  private pending = 0
  /** Completion records, 8 words each; valid up to the last reap's count. */
  readonly cqes: Int32Array
  /** Msg descriptors as words and as bytes. */
  readonly msgWords: Uint32Array
  readonly msgBytes: Uint8Array
  readonly slab: Uint8Array
  readonly setupFlags: number

  constructor(opts: RingOptions) {
    this.sym = native().sym
    const params = new Uint32Array(PARAMS.words)
    params[PARAMS.sqEntries] = opts.sqEntries
    params[PARAMS.setupFlags] = Setup.DEFER_TASKRUN | Setup.SINGLE_ISSUER
    params[PARAMS.slabBytes] = opts.slabBytes
    params[PARAMS.msgSlots] = opts.msgSlots
    params[PARAMS.timerSlots] = opts.timerSlots
    params[PARAMS.maxOps] = opts.sqEntries * 4
    const err = new Int32Array(1)
    const handle = this.sym.ringline_ring_create(params, err)
    if (handle === null || typeof handle === "bigint") throw new NativeError("io_uring ring setup", err[0]!, `sqEntries ${opts.sqEntries}`)
    this.handle = handle
    this.setupFlags = params[PARAMS.setupFlags]!
    this.maxOps = opts.sqEntries * 4
    const cqCapacity = opts.sqEntries * 4
    this.ops = new Int32Array(nativeBytes(this.sym.ringline_ring_ops(handle), this.maxOps * OP.words * 4, "op array").buffer)
    this.cqes = new Int32Array(nativeBytes(this.sym.ringline_ring_completions(handle), cqCapacity * CQE.words * 4, "completion array").buffer)
    const msgBytes = opts.msgSlots * MSG.bytes
    this.msgBytes = opts.msgSlots > 0 ? nativeBytes(this.sym.ringline_ring_msgs(handle), msgBytes, "msg descriptors") : new Uint8Array(0)
    this.msgWords = new Uint32Array(this.msgBytes.buffer, this.msgBytes.byteOffset, this.msgBytes.length >> 2)
    this.slab = opts.slabBytes > 0 ? nativeBytes(this.sym.ringline_ring_slab(handle), opts.slabBytes, "send slab") : new Uint8Array(0)
  }

  /**
   * Queues one operation for the next submit. Throws NativeError EBUSY when the
   * op array is full and the kernel's submission queue takes none of it. The
   * last record is kept for pushReserved.
   */
  push(opcode: number, kind: number, slot: number, gen: number, fd: number, a = 0, b = 0, c = 0): void {
    this.makeRoom(this.maxOps - 1)
    this.write(opcode, kind, slot, gen, fd, a, b, c)
  }

  /** Like push, but may take the record push keeps free: for the loop's tick, which must always be queued. */
  pushReserved(opcode: number, kind: number, slot: number, gen: number, fd: number, a = 0, b = 0, c = 0): void {
    this.makeRoom(this.maxOps)
    this.write(opcode, kind, slot, gen, fd, a, b, c)
  }

  private makeRoom(limit: number): void {
    if (this.pending < limit) return
    this.prepare()
    if (this.pending >= limit) throw new NativeError("queue operation", -Errno.EBUSY, `${this.pending} operations wait for submission-queue room`)
  }

  private write(opcode: number, kind: number, slot: number, gen: number, fd: number, a: number, b: number, c: number): void {
    const o = this.pending++ * OP.words
    const ops = this.ops
    ops[o] = opcode
    ops[o + 1] = kind
    ops[o + 2] = slot
    ops[o + 3] = gen
    ops[o + 4] = fd
    ops[o + 5] = a
    ops[o + 6] = b
    ops[o + 7] = c
  }

  /** Turns queued ops into SQEs; keeps any the kernel would not take yet. */
  private prepare(): void {
    const n = this.pending
    if (n === 0) return
    const done = check("ringline_ring_prepare", this.sym.ringline_ring_prepare(this.handle, n))
    if (done < n) this.ops.copyWithin(0, done * OP.words, n * OP.words)
    this.pending = n - done
  }

  /**
   * Submits queued ops and copies ready completions (waiting for `min` up to
   * timeoutUs, or WAIT_UNBOUNDED); returns the count.
   */
  reap(min = 0, timeoutUs = 0): number {
    this.prepare()
    // Ops the submission queue could not take yet may include the one that bounds an unbounded wait.
    if (timeoutUs === WAIT_UNBOUNDED && this.pending > 0) timeoutUs = BACKLOG_WAIT_US
    return check("ringline_ring_reap", this.sym.ringline_ring_reap(this.handle, min, timeoutUs))
  }

  /** Whether ops wait to be submitted. */
  get hasQueued(): boolean {
    return this.pending > 0
  }

  /** Index in msgWords of msg descriptor `slot` (its iov_count word). */
  msgWordIndex(slot: number): number {
    return (slot * MSG.bytes) >> 2
  }

  /** A new descriptor, the caller's to close, of the socket the armed doorbell writes a byte to (csrc/doorbell.c). */
  openNotifyFd(): number {
    return check("ringline_ring_notify_fd", this.sym.ringline_ring_notify_fd(this.handle))
  }

  /** What rings the doorbell: Notify bits, 0 for nothing (arming it: look at the ring after). */
  notify(what: number): void {
    check("ringline_ring_notify_toggle", this.sym.ringline_ring_notify_toggle(this.handle, what))
  }

  /**
   * Adds sockets to the doorbell that wakes a parked loop at once (csrc/doorbell.c).
   * Returns 0, or the -errno of the first it could not add: that one wakes a parked
   * loop only through the ring's own signal, late.
   */
  watch(fds: Int32Array): number {
    return this.sym.ringline_ring_watch(this.handle, fds, fds.length)
  }

  /**
   * Takes sockets out of the doorbell for a busy spell; they must be watched again
   * before the loop parks. Errors are not reported: a socket left in only costs
   * what it did before.
   */
  unwatch(fds: Int32Array): void {
    this.sym.ringline_ring_unwatch(this.handle, fds, fds.length)
  }

  destroy(): void {
    this.sym.ringline_ring_destroy(this.handle)
  }
}

/**
 * A provided-buffer ring registered on a Ring; buffers go back in one batch per
 * tick. Placed in the ring's slab (slabOffset >= 0), a received buffer can be
 * sent on by its slab offset without a copy.
 */
export class BufferRing {
  readonly bytes: Uint8Array
  private readonly returns: Uint16Array
  private returned = 0
  /**
   * The last view made of each buffer: a receive of the same length (request
   * after request of one size) reuses it: making a view costs ~40 ns
   * (bench/micro.ts), looking one up ~2.
   */
  private readonly views: Array<Uint8Array | undefined>
  /** this.bytes.byteOffset, read once. */
  private readonly base: number

  constructor(
    private readonly ring: Ring,
    readonly bgid: number,
    readonly entries: number,
    readonly bufferSize: number,
    /** Where the buffers start in the ring's slab, or -1: memory of their own. */
    readonly slabOffset = -1,
    /** Bytes at the start of each buffer that views skip (UDP: the recvmsg header and address). */
    readonly viewOffset = 0,
  ) {
    const sym = ring.sym
    const where = slabOffset >= 0 ? slabOffset : BUF_OWN_MEMORY
    check("ringline_bufring_create", sym.ringline_bufring_create(ring.handle, bgid, entries, bufferSize, where), `bgid ${bgid}, ${entries} × ${bufferSize} B`)
    this.bytes = nativeBytes(sym.ringline_bufring_base(ring.handle, bgid), entries * bufferSize, "provided buffers")
    this.returns = new Uint16Array(nativeBytes(sym.ringline_bufring_returns(ring.handle, bgid), entries * 2, "buffer returns").buffer)
    this.views = new Array(entries)
    this.base = this.bytes.byteOffset
  }

  /** Buffer `bid`'s first `length` bytes after viewOffset (a view: valid until the buffer is given back and flushed). */
  view(bid: number, length: number): Uint8Array {
    const last = this.views[bid]
    if (last !== undefined && last.length === length) return last
    const start = bid * this.bufferSize + this.viewOffset
    return (this.views[bid] = this.bytes.subarray(start, start + length))
  }

  /** The buffer `bytes` lies wholly inside, or -1 (other memory, or spanning two buffers). */
  bufferOf(bytes: Uint8Array): number {
    const start = bytes.byteOffset - this.base
    const bid = Math.floor(start / this.bufferSize)
    if (start < 0 || bid >= this.entries || start + bytes.length > (bid + 1) * this.bufferSize) return -1
    // The view withData lent is known by identity; only other views cost a look at .buffer (~20 ns, bench/micro.ts).
    return bytes === this.views[bid] || bytes.buffer === this.bytes.buffer ? bid : -1
  }

  /** Slab offset of a view from bufferOf (only for a ring placed in the slab). */
  slabOffsetOf(bytes: Uint8Array): number {
    return this.slabOffset + bytes.byteOffset - this.base
  }

  giveBack(bid: number): void {
    this.returns[this.returned++] = bid
  }

  /** Hands every given-back buffer to the kernel; returns how many. */
  flush(): number {
    const n = this.returned
    if (n > 0) {
      check("ringline_bufring_recycle", this.ring.sym.ringline_bufring_recycle(this.ring.handle, this.bgid, n))
      this.returned = 0
    }
    return n
  }
}
