// The handler model: one instance per worker (createForWorker), one async
// task per accepted connection (onAccept), one per bound UDP socket (onUdpBind).
import type { ConnCtx } from "./conn"
import type { UdpCtx } from "./udp"

/** Passed to onTick / onNotify. */
export interface WorkerCtx {
  readonly workerId: number
}

export interface AsyncEventHandler {
  /** One task per connection; when it returns, queued sends drain and the connection closes. */
  onAccept(conn: ConnCtx): Promise<void>
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
