// ConnCtx: one TCP (or unix) connection as its handler sees it, shared by both
// backends. The backend delivers received bytes and send completions; this
// class keeps the receive accumulator, the parser protocol of withData, and the
// send queue's promises.
import { RecvError, SendError } from "./errors"
import { SendQueue, type SendPool } from "./send"

/** What a withData parser returns. Encoded as a number so parsing allocates nothing. */
export type ParseResult = number & { readonly __parseResult: unique symbol }

export const ParseResult = {
  /** The parser used n bytes (n > 0); withData resolves to n. */
  consumed: (n: number) => n as ParseResult,
  /** Call again when any more bytes arrive. */
  needMore: () => -1 as ParseResult,
  /** Call again once at least n bytes are buffered. */
  needAtLeast: (n: number) => (-2 - n) as ParseResult,
}

/** withData's callback: `data` is valid only during the call; `eof` marks the last look at it. */
export type DataParser = (data: Uint8Array, eof: boolean) => ParseResult

/** What a backend does for a connection; the ConnCtx decides when. */
export interface ConnBackend {
  readonly pool: SendPool
  readonly recvAccumulatorMax: number
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

interface Reader {
  parse: DataParser
  resolve: (n: number) => void
  reject: (e: Error) => void
}

const EMPTY = new Uint8Array(0)

export class ConnCtx {
  /** Unique per worker. */
  readonly id: number
  readonly sendQueue: SendQueue
  /** Backend slot and generation (the connection's identity in completions). */
  readonly slot: number
  readonly gen: number

  // Receive accumulator: unread bytes are acc[start, end).
  private acc: Uint8Array = EMPTY
  private start = 0
  private end = 0
  /** Bytes the parser asked to see before it is called again. */
  private need = 1
  private reader: Reader | null = null
  private eof = false
  private recvPaused = false
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
    this.sendQueue = new SendQueue(backend.pool)
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
    return this.end - this.start
  }

  // ── receive ────────────────────────────────────────────────────────────

  /**
   * Calls `parse` with the buffered bytes once there are any (and again as more
   * arrive while it asks for more); resolves to the bytes it consumed, or 0 at
   * end of stream. Unparsed bytes at end of stream are shown once more with
   * `eof` set before withData resolves 0.
   */
  withData(parse: DataParser): Promise<number> {
    if (this.reader !== null) return Promise.reject(new Error(`connection ${this.id}: withData is already waiting (one reader per connection)`))
    if (this.buffered >= this.need) {
      const n = this.runParser(parse, this.acc.subarray(this.start, this.end), false)
      if (n !== 0) return n > 0 ? Promise.resolve(n) : Promise.reject(this.tooLarge())
    }
    if (this.eof || this.closed) return Promise.resolve(this.finalLook(parse))
    return new Promise((resolve, reject) => {
      this.reader = { parse, resolve, reject }
    })
  }

  /** Backend: bytes arrived. `data` is only valid during this call. */
  deliver(data: Uint8Array): void {
    if (this.closed) return
    this.idleTicks = 0
    this.bytesReceived += data.length
    const r = this.reader
    if (r !== null && this.buffered === 0 && data.length >= this.need) {
      // Fast path: parse straight from the receive buffer, keep only the rest.
      let n: number
      try {
        n = this.runParser(r.parse, data, false)
      } catch (e) {
        this.reader = null
        this.append(data)
        r.reject(e as Error)
        return
      }
      if (n > 0) {
        this.reader = null
        if (n < data.length) this.append(data.subarray(n))
        r.resolve(n)
        return
      }
      this.append(data)
    } else {
      this.append(data)
      if (r !== null && this.buffered >= this.need) this.wakeReader()
    }
    if (this.buffered > this.backend.recvAccumulatorMax) {
      if (this.reader !== null) this.failReader(this.tooLarge())
      else if (!this.recvPaused) {
        this.recvPaused = true
        this.backend.pauseRecv(this)
      }
    }
  }

  /** Backend: the peer finished sending (or the socket failed with `error`). */
  deliverEof(error: string | null = null): void {
    if (this.eof) return
    this.eof = true
    if (error !== null && this.error === null) this.error = error
    const r = this.reader
    if (r !== null) {
      this.reader = null
      try {
        r.resolve(this.finalLook(r.parse))
      } catch (e) {
        r.reject(e as Error)
      }
    }
  }

  /** Runs the parser; returns bytes consumed, 0 to wait, -1 when the buffer is over its bound. */
  private runParser(parse: DataParser, view: Uint8Array, eof: boolean): number {
    const result = parse(view, eof) as number
    if (result > 0) {
      const n = Math.min(result, view.length)
      if (view.buffer === this.acc.buffer && this.buffered > 0) this.advance(n)
      this.need = 1
      return n
    }
    this.need = result <= -2 ? Math.max(-2 - result, view.length + 1) : view.length + 1
    if (!eof && this.need > this.backend.recvAccumulatorMax) return -1
    return 0
  }

  /** At end of stream: one last look at leftovers; returns what the parser consumed (0 = done). */
  private finalLook(parse: DataParser): number {
    if (this.buffered === 0) return 0
    const view = this.acc.subarray(this.start, this.end)
    const result = parse(view, true) as number
    if (result > 0) {
      const n = Math.min(result, view.length)
      this.advance(n)
      return n
    }
    this.start = this.end = 0 // the parser declined the tail: it is discarded, as it asked
    return 0
  }

  private wakeReader(): void {
    const r = this.reader!
    let n: number
    try {
      n = this.runParser(r.parse, this.acc.subarray(this.start, this.end), false)
    } catch (e) {
      this.reader = null
      r.reject(e as Error)
      return
    }
    if (n === 0) return
    this.reader = null
    if (n > 0) r.resolve(n)
    else r.reject(this.tooLarge())
  }

  private failReader(e: Error): void {
    const r = this.reader!
    this.reader = null
    r.reject(e)
    this.close()
  }

  private tooLarge(): RecvError {
    return new RecvError("EMSGSIZE", `connection ${this.id}: parser needs more than recvAccumulatorMax (${this.backend.recvAccumulatorMax}) bytes`)
  }

  private advance(n: number): void {
    this.start += n
    if (this.start === this.end) this.start = this.end = 0
    if (this.recvPaused && this.buffered <= this.backend.recvAccumulatorMax / 2) {
      this.recvPaused = false
      this.backend.resumeRecv(this)
    }
  }

  private append(data: Uint8Array): void {
    const n = data.length
    if (this.end + n > this.acc.length) {
      const live = this.buffered
      if (live + n <= this.acc.length && this.start > 0) {
        this.acc.copyWithin(0, this.start, this.end)
      } else {
        let cap = Math.max(this.acc.length * 2, 4096)
        while (cap < live + n) cap *= 2
        const grown = new Uint8Array(cap)
        grown.set(this.acc.subarray(this.start, this.end))
        this.acc = grown
      }
      this.start = 0
      this.end = live
    }
    this.acc.set(data, this.end)
    this.end += n
  }

  // ── send ───────────────────────────────────────────────────────────────

  private checkWritable(): void {
    if (this.writeClosed) {
      throw new SendError(this.error ?? "ENOTCONN", `connection ${this.id} is ${this.error ? `broken (${this.error})` : "closed for writing"}`)
    }
  }

  /**
   * Copies `bytes` into the send pool and queues them; throws SendError
   * (code ENOBUFS) when the pool cannot take all of them — nothing is queued then.
   */
  sendNowait(bytes: Uint8Array): void {
    this.checkWritable()
    this.idleTicks = 0
    if (!this.sendQueue.enqueue(bytes)) {
      throw new SendError("ENOBUFS", `connection ${this.id}: send pool full (${bytes.length} bytes refused; use send() or ConnStream.writeAll to wait)`)
    }
    if (this.sendQueue.inFlight === 0) this.backend.transmit(this)
  }

  /** Resolves when the send pool frees a slot; throws SendError if the connection cannot send. */
  waitForSendRoom(): Promise<void> {
    this.checkWritable()
    return this.backend.pool.waitForSlot()
  }

  /** Queues all of `bytes`, waiting for pool space as needed. */
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
      this.sendQueue.enqueue(done === 0 && k === bytes.length ? bytes : bytes.subarray(done, done + k))
      done += k
      if (this.sendQueue.inFlight === 0) this.backend.transmit(this)
    }
  }

  /** Queues `bytes` (waiting for pool space) and resolves when the kernel has taken them. */
  async send(bytes: Uint8Array): Promise<void> {
    await this.queueAll(bytes)
    return this.sendQueue.flushed()
  }

  /** Backend: the socket failed; queued sends are rejected with `code`. */
  failSends(code: string): number {
    this.writeClosed = true
    if (this.error === null && code !== "ENOTCONN") this.error = code
    return this.sendQueue.fail(new SendError(code, `connection ${this.id}: ${code}`))
  }

  // ── lifecycle ──────────────────────────────────────────────────────────

  /** Stops reading and writing: queued sends still drain, then the socket closes. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.writeClosed = true
    this.start = this.end = 0
    const r = this.reader
    this.reader = null
    r?.resolve(0)
    this.backend.close(this, false)
  }

  /** Closes without draining (shutdown deadline, errors). Returns the bytes that were still queued. */
  abort(code: string): number {
    const lost = this.failSends(code)
    this.deliverEof(code)
    if (!this.closed) {
      this.closed = true
      this.backend.close(this, true)
    }
    return lost
  }

  /** Half-closes: queued sends drain, then the peer sees end of stream; reading goes on. */
  shutdownWrite(): void {
    if (this.writeClosed) return
    this.writeClosed = true
    this.backend.shutdownWrite(this)
  }
}
