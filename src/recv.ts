// RecvBuffer: one connection's unread bytes. Where the backend can lend its
// receive buffers (io_uring's provided buffers), bytes stay in them until the
// parser consumes them — no copy; only when a parser needs more than one buffer
// holds, when the lender's budget is spent, or when the backend cannot lend
// (portable), bytes are copied into an owned, growable accumulator. Order is
// kept: borrowed segments always precede the accumulator's bytes.

/** The backend side of borrowing (it decides, per buffer, whether to lend it at all). */
export interface BufferLender {
  /** Gives a lent buffer back; called exactly once per token. */
  release(token: number): void
}

const EMPTY = new Uint8Array(0)

export class RecvBuffer {
  // Borrowed segments, oldest first (from head), each with its lender token.
  private held: Uint8Array[] = []
  private tokens: number[] = []
  private head = 0
  // Owned bytes after the borrowed ones: acc[start, end).
  private acc: Uint8Array = EMPTY
  private start = 0
  private end = 0
  /** Unread bytes in all. */
  size = 0

  constructor(private readonly lender: BufferLender | null) {}

  /**
   * Takes `data` (valid only for this call unless `token` >= 0, which lends it
   * until released): borrowed when allowed, copied otherwise.
   */
  push(data: Uint8Array, token: number): void {
    this.size += data.length
    // Borrowed segments must stay ahead of owned bytes: while any are owned, copy.
    if (token >= 0 && this.end === this.start) {
      this.held.push(data)
      this.tokens.push(token)
      return
    }
    this.append(data)
    if (token >= 0) this.lender!.release(token)
  }

  /** The oldest contiguous run of unread bytes (a prefix of them when several buffers are held). */
  front(): Uint8Array {
    if (this.head < this.held.length) return this.held[this.head]!
    return this.acc.subarray(this.start, this.end)
  }

  /** Makes every unread byte one contiguous view (copying borrowed buffers, which go back). */
  all(): Uint8Array {
    if (this.head < this.held.length && this.size > this.held[this.head]!.length) {
      const merged = new Uint8Array(Math.max(this.size, 4096))
      let at = 0
      for (let i = this.head; i < this.held.length; i++) {
        merged.set(this.held[i]!, at)
        at += this.held[i]!.length
        this.lender!.release(this.tokens[i]!)
      }
      merged.set(this.acc.subarray(this.start, this.end), at)
      this.held = []
      this.tokens = []
      this.head = 0
      this.acc = merged
      this.start = 0
      this.end = this.size
    }
    return this.front()
  }

  /** Drops the first n unread bytes (n <= front().length). */
  consume(n: number): void {
    this.size -= n
    if (this.head < this.held.length) {
      const seg = this.held[this.head]!
      if (n < seg.length) {
        this.held[this.head] = seg.subarray(n)
        return
      }
      this.lender!.release(this.tokens[this.head]!)
      this.held[this.head] = EMPTY
      if (++this.head === this.held.length) {
        this.held.length = this.tokens.length = this.head = 0
      }
      return
    }
    this.start += n
    if (this.start === this.end) this.start = this.end = 0
  }

  /** Drops everything, giving borrowed buffers back. */
  clear(): void {
    for (let i = this.head; i < this.held.length; i++) this.lender!.release(this.tokens[i]!)
    this.held = []
    this.tokens = []
    this.head = 0
    this.start = this.end = this.size = 0
  }

  private append(data: Uint8Array): void {
    const n = data.length
    if (this.end + n > this.acc.length) {
      const live = this.end - this.start
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
}
