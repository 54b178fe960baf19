// ConnStream: byte-stream access to a ConnCtx — read/write/writeAll, Web
// Streams, and `for await` over received chunks. Writes wait for send-pool
// space; nothing is dropped under backpressure.
import { ParseResult, type ConnCtx } from "./conn"

export class ConnStream implements AsyncIterable<Uint8Array> {
  constructor(readonly conn: ConnCtx) {}

  /** Copies up to buf.length received bytes into buf; resolves to the count, 0 at end of stream. */
  read(buf: Uint8Array): Promise<number> {
    if (buf.length === 0) return Promise.resolve(0)
    return this.conn.withData((data) => {
      const n = Math.min(data.length, buf.length)
      buf.set(n === data.length ? data : data.subarray(0, n))
      return ParseResult.consumed(n)
    })
  }

  /** Resolves to the next received chunk (a copy you own), or null at end of stream. */
  async readChunk(): Promise<Uint8Array | null> {
    let chunk: Uint8Array | null = null
    await this.conn.withData((data) => {
      chunk = data.slice()
      return ParseResult.consumed(data.length)
    })
    return chunk
  }

  /** Queues as much of buf as the pool takes now (waiting until it takes at least one byte). */
  async write(buf: Uint8Array): Promise<number> {
    if (buf.length === 0) return 0
    for (;;) {
      const room = this.conn.sendQueue.capacity()
      if (room > 0) {
        const n = Math.min(room, buf.length)
        this.conn.sendNowait(n === buf.length ? buf : buf.subarray(0, n))
        return n
      }
      await this.conn.waitForSendRoom()
    }
  }

  /** Queues all of buf, waiting for pool space as often as needed; never fails on backpressure. */
  writeAll(buf: Uint8Array): Promise<void> {
    return this.conn.queueAll(buf)
  }

  /** Resolves when everything written so far has reached the kernel. */
  flush(): Promise<void> {
    return this.conn.sendQueue.flushed()
  }

  /** Half-close: the peer sees end of stream after queued bytes. */
  shutdownWrite(): void {
    this.conn.shutdownWrite()
  }

  close(): void {
    this.conn.close()
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = await this.readChunk()
      if (chunk === null) return
      yield chunk
    }
  }

  /** Received bytes as a Web ReadableStream. */
  get readable(): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        const chunk = await this.readChunk()
        if (chunk === null) controller.close()
        else controller.enqueue(chunk)
      },
    })
  }

  /** A Web WritableStream that queues with backpressure; closing it half-closes the connection. */
  get writable(): WritableStream<Uint8Array> {
    return new WritableStream<Uint8Array>({
      write: (chunk) => this.writeAll(chunk),
      close: () => this.shutdownWrite(),
      abort: () => this.close(),
    })
  }
}
