// The handler model: one instance per worker (createForWorker), one async
// task per accepted connection (onAccept) or its bytes handed to onData
// straight from the receive path, one task per bound UDP socket (onUdpBind).
import type { ConnCtx, ParseResult } from "./conn"
import type { UdpCtx } from "./udp"

/** Passed to onTick / onNotify. */
export interface WorkerCtx {
  readonly workerId: number
}

export interface AsyncEventHandler {
  /** One task per connection; when it returns, queued sends drain and the connection closes. Define this or onData. */
  onAccept?(conn: ConnCtx): Promise<void>
  /**
   * Instead of onAccept: every accepted connection is served by this parser,
   * called from the receive path as withEachData's is, with no task, coroutine
   * or promise per connection (what a short-lived connection costs most of).
   * ParseResult.pause() means "no send room": it is called again once
   * sendCapacity > 0 (a pause while it can send is an error). At end of stream
   * the last looks have `eof` set; then queued sends drain and the connection
   * closes, as when onAccept returns. A throw counts as a handler error and
   * closes the connection. It cannot wait: a handler that awaits uses onAccept.
   */
  onData?(conn: ConnCtx, data: Uint8Array, eof: boolean): ParseResult
  /** Once per worker when it starts (the entry point of client-only mode). */
  onStart?(): Promise<void> | void
  /** One task per bound UDP socket per worker. */
  onUdpBind?(udp: UdpCtx): Promise<void>
  /** After each batch of completions the worker processed. */
  onTick?(ctx: WorkerCtx): void
  /** When another thread woke this worker (server.wakeHandle(id).wake()). */
  onNotify?(ctx: WorkerCtx): void
  /** After a connection has closed. */
  onClose?(conn: ConnCtx): void
}

/** The class a handler module exports. `data` is what RinglineBuilder.handlerData() gave (structured-cloned per worker). */
export interface HandlerClass {
  createForWorker(workerId: number, data?: unknown): AsyncEventHandler
}
