// ConnCtx: one TCP (or unix) connection as its handler sees it, shared by both
// backends. The backend delivers received bytes and send completions; this
// class keeps the receive accumulator, the parser protocol of withData and
// withEachData, and the send queue's promises.
import { RecvError, SendError } from "./errors"
import { RecvBuffer, type BufferLender } from "./recv"
import { SendQueue, type SendPool } from "./send"
import { Waiter } from "./waiter"

/** What a withData parser returns. Encoded as a number so parsing allocates nothing. */
export type ParseResult = number & { readonly __parseResult: unique symbol }

/** ParseResult.pause(); byte counts are integers, so no other result is this. Also what a look at the bytes returns when the parser paused. */
const PAUSED = -1.5

export const ParseResult = {
  /** The parser used n bytes (n > 0); withData resolves to n. */
  consumed: (n: number) => n as ParseResult,
  /** Call again when any more bytes arrive. */
  needMore: () => -1 as ParseResult,
  /** Call again once at least n bytes are buffered. */
  needAtLeast: (n: number) => (-2 - n) as ParseResult,
  /**
   * withEachData only: stop calling the parser for now (its output has no room, say);
   * the bytes it did not consume stay buffered and withEachData resolves true.
   */
  pause: () => PAUSED as ParseResult,
}

/** withData's callback: `data` is valid only during the call; `eof` marks the last look at it. */
export type DataParser = (data: Uint8Array, eof: boolean) => ParseResult

/**
 * Each backend slot's send queue and receive buffer, made on the slot's first
 * connection and handed to every later one: connections come and go at storm
 * rates, and a connection's fresh objects (the two and their five segment
 * lists, plus a 4 KiB accumulator where bytes are copied) start on cold cache
 * lines, where the slot's are likely still warm. A connection gives them back
 * when its slot is released (ConnCtx.detach), empty.
 */
export class SlotQueues {
  private readonly sendQueues: Array<SendQueue | undefined>
  private readonly recvBuffers: Array<RecvBuffer | undefined>
  /** What a detached connection holds instead: empty for good (nothing can queue or deliver once it is closed). */
  readonly detachedSend: SendQueue
  readonly detachedRecv: RecvBuffer

  constructor(
    slots: number,
    private readonly pool: SendPool,
    private readonly lender: BufferLender | null,
    private readonly sendHighWater: number,
  ) {
    this.sendQueues = new Array(slots)
    this.recvBuffers = new Array(slots)
    this.detachedSend = new SendQueue(pool, null, 0)
    this.detachedRecv = new RecvBuffer(null)
  }

  sendQueue(slot: number): SendQueue {
    return (this.sendQueues[slot] ??= new SendQueue(this.pool, this.lender, this.sendHighWater))
  }

  recvBuffer(slot: number): RecvBuffer {
    return (this.recvBuffers[slot] ??= new RecvBuffer(this.lender))
  }
}

/** What a backend does for a connection; the ConnCtx decides when. */
export interface ConnBackend {
  readonly pool: SendPool
  readonly slotQueues: SlotQueues
  readonly recvAccumulatorMax: number
  /** Unread bytes at which a connection whose handler is not reading stops receiving (Config: recvHighWater). */
  readonly recvHighWater: number
  /** Lends receive buffers (io_uring's provided buffers); null when data must be copied at once. */
  readonly lender: BufferLender | null
  /**
   * Takes `bytes` for a connection with nothing queued, past the queue: written to
   * the kernel at once, or held to be written shortly without a copy (with pool room
   * set aside for what the kernel may not take). Returns how many it took; the rest
   * is queued as usual. null where sends only go through the queue (io_uring: the
   * ring sends, from lent buffers or the pool).
   */
  readonly sendDirect: ((conn: ConnCtx, bytes: Uint8Array) => number) | null
  /** Moves what sendDirect holds for the connection into its queue, so that dropping the queue counts it too. */
  queueHeld?(conn: ConnCtx): void
  /** The queue has bytes and nothing is in flight: start sending. */
  transmit(conn: ConnCtx): void
  /** Close once the send queue has drained (or at once if `abort`). */
  close(conn: ConnCtx, abort: boolean): void
  /** Half-close the write side once the send queue has drained. */
  shutdownWrite(conn: ConnCtx): void
  /** Stop / restart reading from the socket (the accumulator is full / has room again). */
  pauseRecv(conn: ConnCtx): void
  resumeRecv(conn: ConnCtx): void
  /** "host:port" of the local or remote end. */
  address(conn: ConnCtx, peer: boolean): string
}

export class ConnCtx {
  /** Unique per worker. */
  readonly id: number
  /** The slot's send queue while the connection holds the slot; an empty one for good after (detach). */
  sendQueue: SendQueue
  /** Backend slot and generation (the connection's identity in completions). */
  readonly slot: number
  readonly gen: number

  /** Unread received bytes (the slot's buffer, as sendQueue). */
  private rx: RecvBuffer
  /** Bytes the parser asked to see before it is called again. */
  private need = 1
  /**
   * The waiting withData or withEachData: its promise, for its parser (reader.subject;
   * null when none waits). withData's resolves to a count, withEachData's to a boolean.
   */
  private readonly reader = new Waiter<number | boolean, DataParser>()
  /** The waiting reader is withEachData's: its parser stays on after it consumes. */
  private each = false
  private eof = false
  private recvPaused = false
  /** Reading resumes once unread bytes fall to this (set when it paused). */
  private resumeAt = 0
  /** No more sends accepted: close() or shutdownWrite() was called, or the socket failed. */
  private writeClosed = false
  private closed = false
  /** The socket error that ended the connection, if any ("ECONNRESET"). */
  error: string | null = null
  bytesReceived = 0
  /** Idle sweeps since the last traffic (Config.idleTimeoutMs). */
  idleTicks = 0
  private localCache: string | null = null
  private peerCache: string | null = null

  constructor(
    private readonly backend: ConnBackend,
    slot: number,
    gen: number,
    id: number,
  ) {
    this.slot = slot
    this.gen = gen
    this.id = id
    this.sendQueue = backend.slotQueues.sendQueue(slot)
    this.rx = backend.slotQueues.recvBuffer(slot)
  }

  get peerAddr(): string {
    return (this.peerCache ??= this.backend.address(this, true))
  }

  get localAddr(): string {
    return (this.localCache ??= this.backend.address(this, false))
  }

  /** True once close() was called or the connection ended. */
  get isClosed(): boolean {
    return this.closed
  }

  /** Unread buffered bytes. */
  get buffered(): number {
    return this.rx.size
  }

  // ── receive ────────────────────────────────────────────────────────────

  /**
   * Calls `parse` with buffered bytes once there are any (a prefix of them when
   * they sit in several receive buffers; all of them whenever the parser asks for
   * more), and again as more arrive while it asks for more; resolves to the bytes
   * it consumed, or 0 at end of stream. Unparsed bytes at end of stream are shown
   * once more with `eof` set before withData resolves 0.
   */
  withData(parse: DataParser): Promise<number> {
    if (this.reader.subject !== null) return this.alreadyWaiting()
    if (this.rx.size >= this.need) {
      const n = this.parseBuffered(parse)
      if (n !== 0) return n > 0 ? Promise.resolve(n) : Promise.reject(this.refusal(n))
    }
    if (this.eof || this.closed) {
      const n = this.finalLook(parse)
      return n === PAUSED ? Promise.reject(this.refusal(n)) : Promise.resolve(n)
    }
    return this.reader.wait(parse) as Promise<number>
  }

  /**
   * Calls `parse` for buffered bytes and then as more arrive, straight from the
   * receive path, for as long as it consumes or asks for more: one call for a
   * handler's whole conversation, no promise per read (withData's costs one per
   * read). After a consumed(n) it is called again at once if bytes remain. It
   * resolves true when the parser returns ParseResult.pause() (the unconsumed
   * bytes stay buffered; call again to go on), and false at end of stream, after
   * the last looks at what is left (`eof` set, as in withData), or on close().
   * A parser that throws rejects it, as withData.
   */
  withEachData(parse: DataParser): Promise<boolean> {
    return new Promise((resolve, reject) => this.eachData(parse, resolve, reject))
  }

  /**
   * withEachData with callbacks instead of a promise (what AsyncEventHandler.onData
   * runs on, so that a connection served from the receive path costs no promise):
   * `settled` gets what withEachData resolves to, `failed` what it rejects with.
   */
  eachData(parse: DataParser, settled: (paused: boolean) => void, failed: (e: Error) => void): void {
    if (this.reader.subject !== null) return failed(this.readerTaken())
    let now: boolean | null
    try {
      now = this.beginEach(parse)
    } catch (e) {
      return failed(e as Error)
    }
    if (now === null) this.reader.listen(parse, settled as (v: number | boolean) => void, failed)
    else settled(now)
  }

  /** The first look at buffered bytes: its outcome (true: paused, false: ended), or null when it waits for more. */
  private beginEach(parse: DataParser): boolean | null {
    const n = this.parseEach(parse)
    if (n === PAUSED) return true
    if (n < 0) throw this.refusal(n)
    if (this.eof || this.closed) return this.finalLooks(parse) === PAUSED
    this.each = true
    return null
  }

  private alreadyWaiting(): Promise<never> {
    return Promise.reject(this.readerTaken())
  }

  private readerTaken(): Error {
    return new Error(`connection ${this.id}: a withData or withEachData is already waiting (one reader per connection)`)
  }

  /**
   * Backend: bytes arrived. `data` is valid only during this call, unless
   * `token` >= 0: then the backend lends the buffer until it is released.
   */
  deliver(data: Uint8Array, token = -1): void {
    if (this.closed) {
      if (token >= 0) this.backend.lender!.release(token)
      return
    }
    this.idleTicks = 0
    this.bytesReceived += data.length
    const parse = this.reader.subject
    if (parse !== null && this.rx.size === 0 && data.length >= this.need) {
      // Fast path: parse straight from the receive buffer, keep only the rest.
      let n: number
      try {
        n = this.settle(parse(data, false), data.length)
      } catch (e) {
        this.rx.push(data, token)
        return this.rejectReader(e as Error)
      }
      if (this.closed) {
        // The parser closed the connection (which ended the wait): nothing is kept.
        if (token >= 0) this.backend.lender!.release(token)
        return
      }
      if (n > 0) {
        if (n < data.length) this.rx.push(data.subarray(n), token)
        else if (token >= 0) this.backend.lender!.release(token)
        if (!this.each) return this.resolveReader(n)
        if (this.rx.size >= this.need) this.wakeReader(parse) // withEachData: the rest, at once
        return
      }
      this.rx.push(data, token)
      if (n === PAUSED) this.readerPaused()
      else if (n < 0) return this.failReader(this.tooLarge())
    } else {
      this.rx.push(data, token)
      if (parse !== null && this.rx.size >= this.need) this.wakeReader(parse)
    }
    if (this.rx.size > this.backend.recvAccumulatorMax) {
      if (this.reader.subject !== null) this.failReader(this.tooLarge())
      else this.pauseReading(this.backend.recvAccumulatorMax / 2)
    } else if (this.reader.subject === null && this.rx.size >= this.backend.recvHighWater) {
      // The handler is not reading: further bytes wait in the kernel (TCP slows the peer), not here.
      this.pauseReading(this.backend.recvHighWater / 2)
    }
  }

  private pauseReading(resumeAt: number): void {
    if (this.recvPaused) return
    this.recvPaused = true
    this.resumeAt = resumeAt
    this.backend.pauseRecv(this)
  }

  /** Backend: the peer finished sending (or the socket failed with `error`). */
  deliverEof(error: string | null = null): void {
    if (this.eof) return
    this.eof = true
    if (error !== null && this.error === null) this.error = error
    const parse = this.reader.subject
    if (parse === null) return
    let n: number
    try {
      n = this.each ? this.finalLooks(parse) : this.finalLook(parse) // (the reader still waits meanwhile, as it does during any parse)
    } catch (e) {
      return this.rejectReader(e as Error)
    }
    if (n === PAUSED) this.readerPaused()
    else this.resolveReader(this.each ? false : n)
  }

  /** withEachData: runs the parser on buffered bytes while it consumes them: 0 once it waits for more, PAUSED, or -1 when over the bound. */
  private parseEach(parse: DataParser): number {
    while (this.rx.size >= this.need) {
      const n = this.parseBuffered(parse)
      if (n <= 0) return n
    }
    return 0
  }

  /** Runs the parser on buffered bytes: consumed count, 0 to wait for more, PAUSED, or -1 when over the bound. */
  private parseBuffered(parse: DataParser): number {
    let view = this.rx.front()
    let result = parse(view, false) as number
    if (result <= 0 && result !== PAUSED && this.rx.size > view.length) {
      view = this.rx.all() // the parser wants more than one receive buffer holds
      result = parse(view, false) as number
    }
    const n = this.settle(result, view.length)
    if (n > 0) this.consumed(n)
    return n
  }

  /** Interprets a parser result for a view of `len` bytes: bytes consumed, 0 to wait, PAUSED, or -1 when over the bound. */
  private settle(result: number, len: number): number {
    if (result > 0) {
      this.need = 1
      return Math.min(result, len)
    }
    if (result === PAUSED) {
      this.need = 1 // when resumed, the parser sees whatever is buffered
      return PAUSED
    }
    this.need = result <= -2 ? Math.max(-2 - result, len + 1) : len + 1
    return this.need > this.backend.recvAccumulatorMax ? -1 : 0
  }

  private consumed(n: number): void {
    if (this.closed) return // the parser closed the connection: close() already dropped the bytes
    this.rx.consume(n)
    if (this.recvPaused && this.rx.size <= this.resumeAt) {
      this.recvPaused = false
      this.backend.resumeRecv(this)
    }
  }

  /** At end of stream: one last look at leftovers; returns what the parser consumed (0 = done) or PAUSED. */
  private finalLook(parse: DataParser): number {
    if (this.rx.size === 0) return 0
    const view = this.rx.all()
    const result = parse(view, true) as number
    if (result > 0) {
      const n = Math.min(result, view.length)
      this.consumed(n)
      return n
    }
    if (result === PAUSED) return PAUSED // (kept: the parser resumes on it)
    this.rx.clear() // the parser declined the tail: it is discarded, as it asked
    return 0
  }

  /** withEachData at end of stream: last looks until the parser consumes nothing more: 0, or PAUSED. */
  private finalLooks(parse: DataParser): number {
    for (;;) {
      const n = this.finalLook(parse)
      if (n <= 0) return n
    }
  }

  private wakeReader(parse: DataParser): void {
    let n: number
    try {
      n = this.each ? this.parseEach(parse) : this.parseBuffered(parse)
    } catch (e) {
      return this.rejectReader(e as Error)
    }
    if (n > 0) this.resolveReader(n)
    else if (n === PAUSED) this.readerPaused()
    else if (n < 0) this.rejectReader(this.tooLarge())
  }

  private resolveReader(value: number | boolean): void {
    this.each = false
    this.reader.resolve(value)
  }

  private rejectReader(e: Error): void {
    this.each = false
    this.reader.reject(e)
  }

  /** The parser returned pause(): withEachData resolves true; withData has no pause. */
  private readerPaused(): void {
    if (this.each) this.resolveReader(true)
    else this.rejectReader(this.refusal(PAUSED))
  }

  private failReader(e: Error): void {
    this.rejectReader(e)
    this.close()
  }

  /** Why a look at the bytes ended the read: the parser paused outside withEachData, or it needs more than the bound. */
  private refusal(n: number): Error {
    return n === PAUSED ? new Error(`connection ${this.id}: ParseResult.pause() is for withEachData; withData's parser consumes or asks for more`) : this.tooLarge()
  }

  private tooLarge(): RecvError {
    return new RecvError("EMSGSIZE", `connection ${this.id}: parser needs more than recvAccumulatorMax (${this.backend.recvAccumulatorMax}) bytes`)
  }

  // ── send ───────────────────────────────────────────────────────────────

  private checkWritable(): void {
    if (this.writeClosed) {
      throw new SendError(this.error ?? "ENOTCONN", `connection ${this.id} is ${this.error ? `broken (${this.error})` : "closed for writing"}`)
    }
  }

  /**
   * Queues `bytes`: copied into the send pool, or, when they are a view of
   * received data that withData lent (io_uring), sent from the receive buffer
   * itself (up to sendHighWater bytes of them per connection), or, on an empty
   * queue (portable), written without a copy where the backend can (see queue). Throws SendError
   * (code ENOBUFS) when the pool cannot take all of them — nothing is queued
   * then. It does not refuse bytes beyond sendCapacity that the pool can take.
   */
  sendNowait(bytes: Uint8Array): void {
    this.checkWritable()
    this.idleTicks = 0
    if (!this.queue(bytes)) {
      throw new SendError("ENOBUFS", `connection ${this.id}: send pool full (${bytes.length} bytes refused; use send() or ConnStream.writeAll to wait)`)
    }
  }

  /**
   * Queues all of `bytes` and starts sending, or nothing (false: the pool lacks room).
   * Where the backend can take sends past the queue (portable), a send on an empty
   * queue is offered to it first, and only what it does not take is copied into the
   * pool (ConnBackend.sendDirect). The pool must have room for all of it either way.
   */
  private queue(bytes: Uint8Array): boolean {
    const q = this.sendQueue
    if (this.backend.sendDirect !== null && q.segmentCount === 0 && q.canTake(bytes.length)) {
      const n = this.backend.sendDirect(this, bytes)
      if (n >= bytes.length || this.writeClosed) return true // (all taken, or the socket failed: failSends says so)
      bytes = bytes.subarray(n)
    }
    if (!q.enqueue(bytes)) return false
    if (q.inFlight === 0) this.backend.transmit(this)
    return true
  }

  /**
   * Bytes to queue right now: what the send pool takes (its free slots plus room
   * left in this connection's last slot), capped so that this connection's
   * unsent bytes stay within Config.sendHighWater. 0 means waitForSendRoom.
   */
  get sendCapacity(): number {
    return this.writeClosed ? 0 : this.sendQueue.capacity()
  }

  /** Bytes queued on this connection that the kernel has not taken yet. */
  get sendQueued(): number {
    return this.sendQueue.queuedBytes
  }

  /**
   * Resolves when sendCapacity is above 0: at once if it is; else once the kernel
   * has taken enough of this connection's queue to bring it below sendHighWater,
   * or when the send pool frees a slot. Throws SendError if the connection cannot send.
   */
  waitForSendRoom(): Promise<void> {
    this.checkWritable()
    // (Without this check a caller whose room came back before it asked would wait for a pool slot
    // that nothing may free: sends out of lent receive buffers take none.)
    if (this.sendQueue.capacity() > 0) return Promise.resolve()
    return this.sendQueue.atHighWater ? this.sendQueue.belowHighWater() : this.backend.pool.waitForSlot()
  }

  /** Queues all of `bytes`, waiting for room (sendCapacity) as needed. */
  async queueAll(bytes: Uint8Array): Promise<void> {
    let done = 0
    while (done < bytes.length) {
      this.checkWritable()
      const room = this.sendQueue.capacity()
      if (room === 0) {
        await this.waitForSendRoom()
        continue
      }
      const k = Math.min(room, bytes.length - done)
      this.idleTicks = 0
      this.queue(done === 0 && k === bytes.length ? bytes : bytes.subarray(done, done + k)) // (k fits: it is within capacity)
      done += k
    }
  }

  /** Queues `bytes` (waiting for pool space) and resolves when the kernel has taken them. */
  async send(bytes: Uint8Array): Promise<void> {
    await this.queueAll(bytes)
    return this.sendQueue.flushed()
  }

  /** Backend: the socket failed; queued sends, and what the backend holds for sending (queueHeld), are dropped and rejected with `code`. */
  failSends(code: string): number {
    this.backend.queueHeld?.(this)
    this.writeClosed = true
    if (this.error === null && code !== "ENOTCONN") this.error = code
    return this.sendQueue.fail(() => new SendError(code, `connection ${this.id}: ${code}`))
  }

  // ── lifecycle ──────────────────────────────────────────────────────────

  /** Stops reading and writing: queued sends still drain, then the socket closes. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.writeClosed = true
    this.rx.clear()
    if (this.reader.subject !== null) this.resolveReader(this.each ? false : 0)
    this.backend.close(this, false)
  }

  /** Closes without draining (shutdown deadline, errors). Returns the bytes that were still queued. */
  abort(code: string): number {
    const lost = this.failSends(code)
    this.deliverEof(code)
    this.rx.clear()
    this.closed = true
    this.backend.close(this, true) // also when close() already ran but its sends never drained
    return lost
  }

  /**
   * Backend: the slot is released (the connection is closed and its sends are
   * failed or drained): its queues, empty, go to the slot's next connection, and
   * this one, which handler code may still hold, keeps empty ones of its own.
   */
  detach(): void {
    const slots = this.backend.slotQueues
    // Every path that releases a slot has failed the sends already; should one slip, no bytes are handed on.
    if (this.sendQueue.segmentCount > 0) this.failSends("ENOTCONN")
    this.sendQueue.recycle()
    this.rx.recycle()
    this.rx = slots.detachedRecv
    this.sendQueue = slots.detachedSend
  }

  /** Half-closes: queued sends drain, then the peer sees end of stream; reading goes on. */
  shutdownWrite(): void {
    if (this.writeClosed) return
    this.writeClosed = true
    this.backend.shutdownWrite(this)
  }
}
