// The seam between the shared runtime (WorkerHost, ConnCtx, UdpCtx) and a
// backend (src/uring/, src/portable/). One driver per worker thread.
import type { BackendName, Config } from "./config"
import type { ConnCtx } from "./conn"
import type { UdpCtx } from "./udp"

/** What a driver reports to the worker that owns it. */
export interface DriverHost {
  readonly workerId: number
  readonly config: Config
  readonly counters: Float64Array
  /** CPU to pin the worker thread to, or null (io_uring only: pinning needs the native library). */
  readonly pinCpu: number | null
  /** A connection was accepted (or adopted); start its handler task. */
  onConnection(conn: ConnCtx): void
  /** A connection's socket is closed and its slot free. */
  onConnectionClosed(conn: ConnCtx): void
  /** A UDP socket is bound; start its handler task. */
  onUdpSocket(udp: UdpCtx): void
  /** A batch of completions/events was processed. */
  onTick(): void
  /** onTick does something (the handler has an onTick): a driver that must schedule a call to it may skip that otherwise. */
  readonly wantsTicks: boolean
  /** Another thread woke this worker. */
  onNotify(): void
}

export interface ConnectOptions {
  /** Give up (ETIMEDOUT) after this long; 0 = no limit. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface Driver {
  readonly backend: BackendName
  /** Binds and listens; resolves to the bound "host:port" (port 0 resolved). */
  bindTcp(addr: string): Promise<string>
  /** Binds a UDP socket; resolves to the bound "host:port". */
  bindUdp(addr: string): Promise<string>
  /** Starts the event loop. */
  start(): void
  /** Opens an outbound connection; rejects with a node-style code (ECONNREFUSED, ETIMEDOUT) or AbortError. */
  connect(addr: string, options: ConnectOptions): Promise<ConnCtx>
  /** Stops accepting: listeners close; live connections go on. */
  stopAccepting(): void
  /** Connections not yet closed. */
  liveConnections(): ConnCtx[]
  /** UDP sockets bound here. */
  udpSockets(): UdpCtx[]
  /** Resolves after ms (bounded by Config.timerSlots on io_uring). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
  /** Cross-thread wake of this worker (onNotify runs). */
  wake(): void
  /** Closes everything left and frees the backend's resources. */
  destroy(): Promise<void>
}
