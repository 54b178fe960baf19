// The portable backend: the same runtime over Bun's own sockets (Bun.listen,
// Bun.connect, Bun.udpSocket), for machines without io_uring. It keeps the
// io_uring backend's bounds and timing: sends are copied into the same
// fixed-size pool and written at the end of the current turn (so a burst
// coalesces and a full pool refuses exactly as on io_uring); a short write waits
// for `drain` and resumes where it stopped.
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun"
import { existsSync, unlinkSync } from "node:fs"
import { connect as netConnect } from "node:net"
import type { Config } from "../config"
import { ConnCtx, type ConnBackend } from "../conn"
import type { ConnectOptions, Driver, DriverHost } from "../driver"
import { abortError, ConnectError, NativeError, TimerExhaustedError } from "../errors"
import { errnoNumber } from "../native/errno"
import { C } from "../metrics"
import { SendPool } from "../send"
import type { UdpCtx } from "../udp"
import { PortableUdp } from "./udp"

/** Per-socket data: the connection's slot, or -1 before it has one. */
interface SlotRef {
  slot: number
  outbound: boolean
}

type BunSocket = Socket<SlotRef>
type Listener = TCPSocketListener<SlotRef> | UnixSocketListener<SlotRef>

/** Splits "host:port" / "[v6]:port" / "unix:/path"; throws ConnectError EINVAL. */
export function splitAddr(addr: string): { unix: string } | { hostname: string; port: number } {
  if (addr.startsWith("unix:")) {
    if (addr.length <= 5) throw new ConnectError("EINVAL", addr, `"${addr}" names no path`)
    return { unix: addr.slice(5) }
  }
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(addr) ?? /^((?:\d{1,3}\.){3}\d{1,3}|localhost):(\d{1,5})$/.exec(addr)
  const port = m ? Number(m[2]) : -1
  const octetsOk = m === null || m[1]!.includes(":") || m[1] === "localhost" || m[1]!.split(".").every((o) => Number(o) <= 255)
  if (m === null || port > 65535 || !octetsOk) throw new ConnectError("EINVAL", addr, `"${addr}" is not host:port, [v6]:port or unix:/path`)
  return { hostname: m[1] === "localhost" ? "127.0.0.1" : m[1]!, port }
}

export function joinAddr(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`
}

/** A unix socket file that nobody listens on is stale: remove it so bind succeeds. */
async function removeStaleUnixSocket(path: string): Promise<void> {
  if (!existsSync(path)) return
  const live = await new Promise<boolean>((resolve) => {
    const probe = netConnect(path)
    probe.once("connect", () => (probe.destroy(), resolve(true)))
    probe.once("error", () => resolve(false))
  })
  if (!live) unlinkSync(path)
}

const errorCode = (e: unknown, fallback: string) => ((e as { code?: string }).code ?? fallback)

// Per-slot send state.
const DIRTY = 1 // queued for the end-of-turn flush
const AWAIT_DRAIN = 2 // Bun took part of a write; the rest waits for `drain`
const CLOSE_PENDING = 4
const SHUTWR_PENDING = 8

export class PortableDriver implements Driver, ConnBackend {
  readonly backend = "portable" as const
  readonly pool: SendPool
  readonly recvAccumulatorMax: number
  /** Bun may reuse a data callback's buffer after it returns: received bytes are always copied. */
  readonly lender = null
  private readonly cfg: Config
  private readonly counters: Float64Array

  private readonly conns: Array<ConnCtx | undefined>
  private readonly sockets: Array<BunSocket | undefined>
  private readonly gens: Uint32Array
  private readonly state: Uint8Array
  private readonly freeSlots: number[] = []
  private readonly closeCodes: Array<string | undefined>
  private nextConnId = 1
  private dirty: number[] = []
  private flushScheduled = false
  private tickScheduled = false

  private readonly listeners: Listener[] = []
  private accepting = true
  private readonly udps: PortableUdp[] = []
  private liveTimers = 0
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()

  constructor(private readonly host: DriverHost) {
    const cfg = (this.cfg = host.config)
    this.counters = host.counters
    this.pool = new SendPool(new Uint8Array(cfg.sendCopyCount * cfg.sendCopySlotSize), 0, cfg.sendCopySlotSize, cfg.sendCopyCount, host.counters)
    this.recvAccumulatorMax = cfg.recvAccumulatorMax
    const max = cfg.maxConnections
    this.conns = new Array(max)
    this.sockets = new Array(max)
    this.closeCodes = new Array(max)
    this.gens = new Uint32Array(max)
    this.state = new Uint8Array(max)
    for (let i = max - 1; i >= 0; i--) this.freeSlots.push(i)
  }

  // ── sockets from Bun ───────────────────────────────────────────────────

  /** The callbacks every TCP/unix socket shares, accepted or outbound. */
  private readonly handlers = {
    open: (socket: BunSocket) => {
      if (socket.data?.outbound) return // connect() takes it from here
      socket.data = { slot: -1, outbound: false } // accepted: each socket gets its own
      if (!this.accepting || this.freeSlots.length === 0) {
        this.counters[C.connectionsRefused]!++
        socket.terminate()
        return
      }
      const conn = this.openConn(socket)
      this.counters[C.connectionsAccepted]!++
      this.host.onConnection(conn)
      this.scheduleTick()
    },
    data: (socket: BunSocket, data: Buffer) => {
      const conn = this.connOf(socket)
      if (conn === undefined) return
      this.counters[C.bytesReceived]! += data.length
      conn.deliver(data)
      this.scheduleTick()
    },
    drain: (socket: BunSocket) => {
      const slot = socket.data.slot
      if (slot < 0 || !(this.state[slot]! & AWAIT_DRAIN)) return
      this.state[slot]! &= ~AWAIT_DRAIN
      this.writeOut(slot)
    },
    end: (socket: BunSocket) => {
      this.connOf(socket)?.deliverEof()
      this.scheduleTick()
    },
    error: (socket: BunSocket, error: Error) => {
      const slot = socket.data.slot
      if (slot >= 0) this.closeCodes[slot] = errorCode(error, "ECONNRESET")
    },
    close: (socket: BunSocket) => this.onClosed(socket),
  }

  private connOf(socket: BunSocket): ConnCtx | undefined {
    const slot = socket.data.slot
    return slot >= 0 ? this.conns[slot] : undefined
  }

  private openConn(socket: BunSocket): ConnCtx {
    const slot = this.freeSlots.pop()!
    socket.data.slot = slot
    this.sockets[slot] = socket
    this.state[slot] = 0
    this.closeCodes[slot] = undefined
    if (this.cfg.tcpNodelay) socket.setNoDelay(true)
    const conn = new ConnCtx(this, slot, this.gens[slot]!, this.nextConnId++)
    this.conns[slot] = conn
    return conn
  }

  private onClosed(socket: BunSocket): void {
    const slot = socket.data.slot
    const conn = slot >= 0 ? this.conns[slot] : undefined
    if (conn === undefined) return
    socket.data.slot = -1
    // We closed it: later sends are ENOTCONN; the peer went away: EPIPE, or the socket's error.
    const code = this.closeCodes[slot] ?? (conn.isClosed ? "ENOTCONN" : "EPIPE")
    this.counters[C.unsentBytesAtClose]! += conn.sendQueue.queuedBytes
    conn.failSends(code)
    conn.deliverEof(this.closeCodes[slot] ?? null)
    this.conns[slot] = undefined
    this.sockets[slot] = undefined
    this.state[slot] = 0
    this.gens[slot] = (this.gens[slot]! + 1) >>> 0
    this.freeSlots.push(slot)
    this.counters[C.connectionsClosed]!++
    this.host.onConnectionClosed(conn)
    this.scheduleTick()
  }

  /** One onTick per event-loop turn that delivered events. */
  private scheduleTick(): void {
    if (this.tickScheduled) return
    this.tickScheduled = true
    setImmediate(() => {
      this.tickScheduled = false
      this.host.onTick()
    })
  }

  // ── listen / bind ──────────────────────────────────────────────────────

  async bindTcp(addr: string): Promise<string> {
    try {
      return await this.listen(addr)
    } catch (e) {
      const code = errorCode(e, "EINVAL")
      throw new NativeError("listen", -errnoNumber(code), `${addr}: ${(e as Error).message}`)
    }
  }

  private async listen(addr: string): Promise<string> {
    const where = splitAddr(addr)
    const options = { allowHalfOpen: true, socket: this.handlers }
    if ("unix" in where) {
      await removeStaleUnixSocket(where.unix)
      this.listeners.push(Bun.listen<SlotRef>({ ...options, unix: where.unix }))
      return `unix:${where.unix}`
    }
    // reusePort: each worker listens on the same port and the kernel spreads connections.
    const reusePort: object = { reusePort: true } // accepted by Bun.listen, missing from its typings
    const listener = Bun.listen<SlotRef>({ ...options, hostname: where.hostname, port: where.port, ...reusePort })
    this.listeners.push(listener)
    return joinAddr(where.hostname, listener.port)
  }

  async bindUdp(addr: string): Promise<string> {
    const where = splitAddr(addr)
    if ("unix" in where) throw new ConnectError("EINVAL", addr, "UDP needs host:port")
    const udp = await PortableUdp.bind(where.hostname, where.port, this.cfg, this.counters)
    this.udps.push(udp)
    this.host.onUdpSocket(udp.ctx)
    return udp.localAddr()
  }

  start(): void {}

  // ── send ───────────────────────────────────────────────────────────────

  transmit(conn: ConnCtx): void {
    const slot = conn.slot
    if (this.conns[slot] !== conn || this.state[slot]! & (DIRTY | AWAIT_DRAIN)) return
    this.state[slot]! |= DIRTY
    conn.sendQueue.inFlight = 1 // written at the end of this turn, like a submission
    this.dirty.push(slot)
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(() => this.flush())
    }
  }

  private flush(): void {
    this.flushScheduled = false
    const dirty = this.dirty
    this.dirty = []
    for (const slot of dirty) {
      this.state[slot]! &= ~DIRTY
      this.writeOut(slot)
    }
  }

  /** Writes queued segments until Bun takes less than offered; then waits for drain. */
  private writeOut(slot: number): void {
    const conn = this.conns[slot]
    const socket = this.sockets[slot]
    if (conn === undefined || socket === undefined) return
    const q = conn.sendQueue
    const slab = this.pool.slab
    while (q.segmentCount > 0) {
      const off = q.segmentOffset(0)
      const len = q.segmentLength(0)
      const n = socket.write(slab.subarray(off, off + len))
      if (n < 0) {
        conn.failSends(this.closeCodes[slot] ?? "EPIPE")
        break
      }
      if (n > 0) {
        this.counters[C.bytesSent]! += n
        q.consume(n)
      }
      if (n < len) {
        this.counters[C.sendEagain]!++
        this.state[slot]! |= AWAIT_DRAIN
        q.inFlight = 1
        return
      }
    }
    q.inFlight = 0
    const st = this.state[slot]!
    if (st & SHUTWR_PENDING) {
      this.state[slot] = st & ~SHUTWR_PENDING
      socket.shutdown()
    }
    if (st & CLOSE_PENDING) socket.end()
  }

  private sendIdle(slot: number): boolean {
    return !(this.state[slot]! & (DIRTY | AWAIT_DRAIN)) && this.conns[slot]!.sendQueue.segmentCount === 0
  }

  shutdownWrite(conn: ConnCtx): void {
    const slot = conn.slot
    if (this.conns[slot] !== conn) return
    if (this.sendIdle(slot)) this.sockets[slot]!.shutdown()
    else this.state[slot]! |= SHUTWR_PENDING
  }

  close(conn: ConnCtx, abort: boolean): void {
    const slot = conn.slot
    const socket = this.sockets[slot]
    if (this.conns[slot] !== conn || socket === undefined) return
    if (abort) socket.terminate()
    else if (this.sendIdle(slot)) socket.end()
    else this.state[slot]! |= CLOSE_PENDING
  }

  pauseRecv(conn: ConnCtx): void {
    this.counters[C.recvPauses]!++
    this.sockets[conn.slot]?.pause()
  }

  resumeRecv(conn: ConnCtx): void {
    if (this.conns[conn.slot] === conn) this.sockets[conn.slot]?.resume()
  }

  address(conn: ConnCtx, peer: boolean): string {
    const s = this.conns[conn.slot] === conn ? this.sockets[conn.slot] : undefined
    if (s === undefined) return ""
    if (!s.remoteAddress && !s.localPort) return "unix:"
    return peer ? joinAddr(s.remoteAddress, s.remotePort) : joinAddr(s.localAddress, s.localPort)
  }

  // ── connect ────────────────────────────────────────────────────────────

  async connect(addr: string, options: ConnectOptions): Promise<ConnCtx> {
    const { timeoutMs = 0, signal } = options
    if (signal?.aborted) throw abortError(signal, `connect ${addr}`)
    const where = splitAddr(addr)
    if (this.freeSlots.length === 0) {
      throw new ConnectError("EMFILE", addr, `connect ${addr}: all ${this.conns.length} connection slots (Config.maxConnections) are in use`)
    }
    const data: SlotRef = { slot: -1, outbound: true }
    const attempt = "unix" in where
      ? Bun.connect<SlotRef>({ unix: where.unix, allowHalfOpen: true, data, socket: this.handlers })
      : Bun.connect<SlotRef>({ hostname: where.hostname, port: where.port, allowHalfOpen: true, data, socket: this.handlers })
    let failure: Error | null = null
    const settled = new Promise<never>((_, reject) => {
      const fail = (e: Error) => ((failure = e), reject(e))
      const timer = timeoutMs > 0 ? setTimeout(() => fail(new ConnectError("ETIMEDOUT", addr, `connect ETIMEDOUT ${addr} (no answer within ${timeoutMs} ms)`)), timeoutMs) : undefined
      const onAbort = () => fail(abortError(signal, `connect ${addr}`))
      signal?.addEventListener("abort", onAbort, { once: true })
      void attempt.finally(() => {
        clearTimeout(timer)
        signal?.removeEventListener("abort", onAbort)
      }).catch(() => undefined)
    })
    settled.catch(() => undefined)
    let socket: BunSocket
    try {
      socket = await Promise.race([attempt, settled])
    } catch (e) {
      // A late success after a timeout/abort is closed, never leaked.
      if (failure !== null) void attempt.then((s) => s.terminate()).catch(() => undefined)
      if (e instanceof ConnectError || (e as Error).name === "AbortError" || e === failure) throw e
      throw new ConnectError(errorCode(e, "ECONNREFUSED"), addr, `connect ${errorCode(e, "ECONNREFUSED")} ${addr}`)
    }
    if (this.freeSlots.length === 0) {
      socket.terminate()
      throw new ConnectError("EMFILE", addr, `connect ${addr}: all connection slots are in use`)
    }
    const conn = this.openConn(socket)
    this.counters[C.connectionsConnected]!++
    return conn
  }

  // ── the rest of the Driver ─────────────────────────────────────────────

  liveConnections(): ConnCtx[] {
    return this.conns.filter((c): c is ConnCtx => c !== undefined)
  }

  udpSockets(): UdpCtx[] {
    return this.udps.map((u) => u.ctx)
  }

  stopAccepting(): void {
    this.accepting = false
    for (const l of this.listeners) l.stop(false)
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal, "sleep"))
    if (this.liveTimers >= this.cfg.timerSlots) {
      this.counters[C.timerExhausted]!++
      return Promise.reject(new TimerExhaustedError(this.cfg.timerSlots))
    }
    this.liveTimers++
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.liveTimers--
        this.timers.delete(timer)
        signal?.removeEventListener("abort", onAbort)
      }
      const timer = setTimeout(() => (done(), resolve()), ms)
      const onAbort = () => {
        clearTimeout(timer)
        done()
        reject(abortError(signal, "sleep"))
      }
      this.timers.add(timer)
      signal?.addEventListener("abort", onAbort, { once: true })
    })
  }

  wake(): void {
    setImmediate(() => this.host.onNotify())
  }

  async destroy(): Promise<void> {
    this.stopAccepting()
    for (const s of this.sockets) s?.terminate()
    for (const u of this.udps) u.close()
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    for (let i = 0; i < 100 && this.liveConnections().length > 0; i++) await new Promise((r) => setImmediate(r))
  }
}
