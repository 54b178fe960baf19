// RecvBuffer: one connection's unread bytes, in order, as a queue of segments.
// Where the backend can lend its receive buffers (io_uring's provided buffers),
// a segment is the lent buffer itself and stays there until the parser has
// consumed it — no copy. Bytes are copied into an owned, growable accumulator
// only when the backend cannot lend (portable, or its lending budget is spent)
// or when a parser needs more than one segment holds. Borrowed and owned
// segments may alternate, so one copy never forces the ones after it to copy.

/** The backend side of borrowing (it decides, per buffer, whether to lend it at all). */
export interface BufferLender {
  /** Drops one reference on a lent buffer (the one it was lent with, or one retain took). */
  release(token: number): void
  /**
   * Sending without a copy: if `bytes` lies wholly in one buffer that is still
   * lent out, takes another reference on it (the send queue releases it once the
   * kernel has sent the bytes) and returns its token; otherwise -1.
   */
  retain(bytes: Uint8Array): number
  /** Slab offset of `bytes`, which retain has just accepted. */
  slabOffset(bytes: Uint8Array): number
}

const EMPTY = new Uint8Array(0)
const OWNED = -1
/** What recycle keeps for a slot's next connection: the accumulator's default size, and segment lists of a usual length (here and in SendQueue). */
const KEPT_ACCUMULATOR = 4096
export const KEPT_SEGMENTS = 64

export class RecvBuffer {
  // Unread segments [head, end), oldest first, each with its lender token (OWNED: a view of an
  // accumulator). The arrays keep their length when emptied (end = 0): truncating an array is a
  // slow path, and a connection empties them once per read.
  private segs: Uint8Array[] = []
  private tokens: number[] = []
  private head = 0
  private end = 0
  // The accumulator owned bytes are copied into; while `accOpen`, the newest
  // segment is acc[accStart, accEnd) and further owned bytes extend it.
  private acc: Uint8Array = EMPTY
  private accOpen = false
  private accStart = 0
  private accEnd = 0
  /** Unread bytes in all. */
  size = 0

  constructor(private readonly lender: BufferLender | null) {}

  /**
   * Takes `data` (valid only for this call unless `token` >= 0, which lends it
   * until released): borrowed as it is when lent, copied otherwise.
   */
  push(data: Uint8Array, token: number): void {
    if (data.length === 0) {
      if (token >= 0) this.lender!.release(token)
      return
    }
    this.size += data.length
    if (token >= 0) {
      this.append(data, token)
      this.accOpen = false
      return
    }
    this.appendOwned(data)
  }

  /** The oldest contiguous run of unread bytes (a prefix of them when there are several segments). */
  front(): Uint8Array {
    return this.head < this.end ? this.segs[this.head]! : EMPTY
  }

  /** Makes every unread byte one contiguous view (copying borrowed buffers, which go back). */
  all(): Uint8Array {
    if (this.end - this.head > 1) {
      const merged = new Uint8Array(Math.max(this.size, 4096))
      let at = 0
      for (let i = this.head; i < this.end; i++) {
        merged.set(this.segs[i]!, at)
        at += this.segs[i]!.length
        if (this.tokens[i]! >= 0) this.lender!.release(this.tokens[i]!)
      }
      this.reset()
      this.acc = merged
      this.accStart = 0
      this.accEnd = this.size
      this.append(merged.subarray(0, this.size), OWNED)
      this.accOpen = true
    }
    return this.front()
  }

  /** Drops the first n unread bytes (n <= front().length). */
  consume(n: number): void {
    if (n === 0) return // (also with nothing buffered, where there is no front segment)
    this.size -= n
    const seg = this.segs[this.head]!
    const isOpenAcc = this.accOpen && this.head === this.end - 1
    if (n < seg.length) {
      this.segs[this.head] = seg.subarray(n)
      if (isOpenAcc) this.accStart += n
      return
    }
    const token = this.tokens[this.head]!
    if (token >= 0) this.lender!.release(token)
    this.segs[this.head] = EMPTY
    if (++this.head === this.end) this.reset()
    else if (this.head > 64 && this.head * 2 > this.end) this.compact()
  }

  /** Moves the unread segments to the front (a reader that stays behind a stream never empties the list). */
  private compact(): void {
    const end = this.end
    this.segs.copyWithin(0, this.head, end)
    this.tokens.copyWithin(0, this.head, end)
    this.end -= this.head
    this.head = 0
    for (let i = this.end; i < end; i++) this.segs[i] = EMPTY // no second reference to a segment
  }

  /** Drops everything, giving borrowed buffers back. */
  clear(): void {
    for (let i = this.head; i < this.end; i++) if (this.tokens[i]! >= 0) this.lender!.release(this.tokens[i]!)
    this.reset()
    this.size = 0
  }

  /** Empties it for the slot's next connection, keeping the accumulator only if it is small (a slot keeps its buffer for good). */
  recycle(): void {
    this.clear()
    if (this.acc.length > KEPT_ACCUMULATOR) this.acc = EMPTY
    if (this.segs.length > KEPT_SEGMENTS) this.segs = [], this.tokens = []
  }

  /** No segments left: the accumulator is free to be reused from its start. */
  private reset(): void {
    // Entries before head were emptied by consume; the rest must not keep buffers alive either.
    for (let i = this.head; i < this.end; i++) this.segs[i] = EMPTY
    this.head = this.end = 0
    this.accOpen = false
    this.accStart = this.accEnd = 0
  }

  private appendOwned(data: Uint8Array): void {
    const n = data.length
    if (!this.accOpen) {
      // A new owned segment. The accumulator is reusable only if no earlier segment still views it.
      const reusable = this.end === 0 || this.tokens.lastIndexOf(OWNED, this.end - 1) < this.head
      if (!reusable || this.acc.length < n) this.acc = new Uint8Array(Math.max(4096, n, reusable ? this.acc.length : 0))
      this.accStart = this.accEnd = 0
      this.append(EMPTY, OWNED)
      this.accOpen = true
    } else if (this.accEnd + n > this.acc.length) {
      const live = this.accEnd - this.accStart
      if (live + n <= this.acc.length) {
        this.acc.copyWithin(0, this.accStart, this.accEnd)
      } else {
        let cap = Math.max(this.acc.length * 2, 4096)
        while (cap < live + n) cap *= 2
        const grown = new Uint8Array(cap)
        grown.set(this.acc.subarray(this.accStart, this.accEnd))
        this.acc = grown
      }
      this.accStart = 0
      this.accEnd = live
    }
    this.acc.set(data, this.accEnd)
    this.accEnd += n
    this.segs[this.end - 1] = this.acc.subarray(this.accStart, this.accEnd)
  }

  private append(seg: Uint8Array, token: number): void {
    this.segs[this.end] = seg
    this.tokens[this.end++] = token
  }
}
