// The portable backend: the same runtime over Bun's own sockets (Bun.listen,
// Bun.connect, Bun.udpSocket), for machines where io_uring or libringline.so is
// unavailable. It keeps the io_uring backend's bounds and timing:
//
// - Sends are copied into a send pool of the same size and written at the end of
//   the current turn, so a burst coalesces and a full pool refuses (ENOBUFS) as
//   it does on io_uring, where bytes leave the pool only after the ring runs.
//   Three exceptions skip the wait or the copy (sendDirect): what a parser queues
//   while `data` delivers is written when deliver returns (still inside Bun's
//   callback); the delivered bytes sent back as they are, on an empty queue, are
//   written from Bun's buffer then, without a copy (as io_uring sends from its
//   lent receive buffers); and a large send on an empty queue goes straight to
//   the socket. The pool takes only what the kernel refused, with room kept for
//   it meanwhile.
// - Bun's socket.write copies what it accepts and returns that count; it keeps
//   nothing else (measured on Bun 1.4.4: bytes received == sum of returns, also
//   inside callbacks). A short write therefore waits for `drain` and resumes at
//   the first byte Bun refused.
// - Because write() copies synchronously, no pool byte is ever referenced after
//   the call: sendQueue.inFlight stays 0 and ConnCtx may keep appending to the
//   tail slot while a connection waits for drain (the state bits below keep
//   transmit() idempotent instead).
import type { Socket, SocketHandler, TCPSocketListenOptions } from "bun"
import { statSync, unlinkSync } from "node:fs"
import { isIP } from "node:net"
import type { Config } from "../config"
import { ConnCtx, SlotQueues, type ConnBackend } from "../conn"
import type { ConnectOptions, Driver, DriverHost } from "../driver"
import { abortError, ConnectError, NativeError, ShutdownError, TimerExhaustedError } from "../errors"
import { C } from "../metrics"
import { SendPool } from "../send"
import type { UdpCtx } from "../udp"
import { PortableUdp, UdpSendSlots } from "./udp"

/** What each Bun socket carries. */
interface SockData {
  /** The connection's slot; -1 when it has none (refused, or a connect that was given up). */
  slot: number
  /** The path of a unix socket (null for TCP). */
  unix: string | null
  outbound: boolean
}

type BunSocket = Socket<SockData>

interface PendingConnect {
  addr: string
  resolve: (conn: ConnCtx) => void
  reject: (e: Error) => void
  /** Clears the timeout and the abort listener. */
  settle: () => void
}

// Per-slot state bits.
const DIRTY = 1 // queued for the end-of-turn write
const AWAIT_DRAIN = 2 // Bun took less than offered; the rest goes on `drain`
const SHUTWR_PENDING = 4
const CLOSE_PENDING = 8
const CLOSING = 16 // end() was called; Bun's close callback frees the slot

const EINVAL = 22
/** Sends at least this long, on an empty queue, go straight to the socket (sendDirect); shorter ones coalesce in the queue. */
const DIRECT_WRITE_MIN = 16 * 1024
/** setTimeout's limit (2^31 − 1 ms); longer sleeps are chained. */
const MAX_TIMEOUT_MS = 0x7fffffff

/** "a.b.c.d:port" / "[v6]:port" / "localhost:port" / "unix:/path"; null if it is none of these. */
function splitAddr(addr: string): { unix: string } | { hostname: string; port: number } | null {
  if (addr.startsWith("unix:")) return addr.length > 5 ? { unix: addr.slice(5) } : null
  const v6 = addr.startsWith("[")
  const sep = v6 ? addr.indexOf("]:") : addr.lastIndexOf(":")
  if (sep < 0) return null
  const host = v6 ? addr.slice(1, sep) : addr.slice(0, sep)
  const portText = addr.slice(sep + (v6 ? 2 : 1))
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : -1
  if (port < 0 || port > 65535) return null
  if (!v6 && host === "localhost") return { hostname: "127.0.0.1", port }
  return isIP(host) === (v6 ? 6 : 4) ? { hostname: host, port } : null
}

function joinAddr(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`
}

/** A unix socket file nobody listens on is stale (as on io_uring: only a socket, only on ECONNREFUSED). */
async function removeStaleUnixSocket(path: string): Promise<void> {
  let isSocket = false
  try {
    isSocket = statSync(path).isSocket()
  } catch {
    return // nothing there
  }
  if (!isSocket) return
  const refused = await Bun.connect({ unix: path, socket: { data() {} } }).then(
    (probe) => (probe.terminate(), false),
    (e: unknown) => (e as { code?: string }).code === "ECONNREFUSED",
  )
  if (refused) unlinkSync(path)
}

/** Bun's socket errors carry a node-style code and errno (its sign varies by call). */
function bunErrno(e: unknown): { code: string | undefined; errno: number } {
  const { code, errno } = e as { code?: string; errno?: number }
  return { code, errno: typeof errno === "number" && errno !== 0 ? Math.abs(errno) : 5 /* EIO */ }
}

export class PortableDriver implements Driver, ConnBackend {
  readonly backend = "portable" as const
  readonly pool: SendPool
  readonly recvAccumulatorMax: number
  readonly recvHighWater: number
  readonly slotQueues: SlotQueues
  /**
   * No lending: ConnCtx copies what `data` delivers. (Bun 1.4.4 does hand each callback
   * a fresh buffer, but nothing promises it, and lending it measured no clear gain.)
   */
  readonly lender = null
  private readonly cfg: Config
  private readonly counters: Float64Array

  // Connection table, indexed by slot: the same bound (Config.maxConnections) as io_uring.
  private readonly conns: Array<ConnCtx | undefined>
  private readonly sockets: Array<BunSocket | undefined>
  private readonly gens: Uint32Array
  private readonly state: Uint8Array
  private readonly freeSlots: Int32Array
  private freeCount: number
  private nextConnId = 1
  private dirty: number[] = []
  /** The other dirty list, swapped in while one is flushed (no new array per flush). */
  private flushing: number[] = []
  private flushScheduled = false
  private readonly flushNow = () => this.flush()
  /** The slot whose `data` callback is delivering: its sends are written when deliver returns (see `data`). */
  private delivering = -1
  /** The bytes that callback is delivering. */
  private deliveringData: Uint8Array | null = null
  /**
   * deliveringData sent back as it is, with nothing queued: written without a copy
   * when deliver returns (writeHeld). Pool slots for all of it (heldSlots) stay
   * reserved for what the kernel may not take of it.
   */
  private held: Uint8Array | null = null

  private readonly connecting = new Map<number, PendingConnect>()
  private readonly listeners: Array<{ stop(closeActiveConnections?: boolean): void }> = []
  private accepting = true

  private readonly udpSlots: UdpSendSlots
  private readonly udps: PortableUdp[] = []

  /** Pending sleeps, each as the function that cancels it with an error (bounded by timerSlots). */
  private readonly sleeps = new Set<(e: Error) => void>()

  private tickScheduled = false
  private notifyScheduled = false
  private destroying = false
  private destroyed = false

  constructor(private readonly host: DriverHost) {
    const cfg = (this.cfg = host.config)
    this.counters = host.counters
    this.pool = new SendPool(new Uint8Array(cfg.sendCopyCount * cfg.sendCopySlotSize), 0, cfg.sendCopySlotSize, cfg.sendCopyCount, host.counters)
    this.recvAccumulatorMax = cfg.recvAccumulatorMax
    this.recvHighWater = Math.min(cfg.recvHighWater, cfg.recvAccumulatorMax)
    this.udpSlots = new UdpSendSlots(cfg.udpSendSlots)
    const max = cfg.maxConnections
    this.slotQueues = new SlotQueues(max, this.pool, this.lender, cfg.sendHighWater)
    this.conns = new Array(max)
    this.sockets = new Array(max)
    this.gens = new Uint32Array(max)
    this.state = new Uint8Array(max)
    this.freeSlots = new Int32Array(max)
    for (let i = 0; i < max; i++) this.freeSlots[i] = max - 1 - i
    this.freeCount = max
  }

  // ── events from Bun ────────────────────────────────────────────────────

  /** Callbacks shared by accepted and outbound sockets; `open` differs. */
  private handlers(open: (socket: BunSocket) => void): SocketHandler<SockData> {
    return {
      open,
      data: (socket, data) => {
        const conn = this.connOf(socket)
        if (conn === undefined) return
        const slot = conn.slot
        this.counters[C.bytesReceived]! += data.length
        // What a parser queues for this connection during deliver goes out when it returns, inside this
        // callback: no flush microtask per read (a request/response exchange's reply is sent in its parser).
        this.delivering = slot
        this.deliveringData = data
        try {
          conn.deliver(data)
        } finally {
          this.delivering = -1
          this.deliveringData = null
        }
        if (this.held !== null) this.writeHeld(conn)
        const st = this.state[slot]!
        if (st & DIRTY) {
          this.state[slot] = st & ~DIRTY
          if (!(st & AWAIT_DRAIN)) this.writeOut(slot) // (else drain writes it)
        }
        this.eventsHappened()
      },
      drain: (socket) => {
        // Bun also calls drain when nothing was refused (e.g. after the peer's FIN): act only when waiting.
        const slot = socket.data.slot
        if (slot < 0 || !(this.state[slot]! & AWAIT_DRAIN)) return
        this.state[slot]! &= ~AWAIT_DRAIN
        this.writeOut(slot)
        this.eventsHappened()
      },
      end: (socket) => {
        this.connOf(socket)?.deliverEof()
        this.eventsHappened()
      },
      // A reset arrives here as `error` (ECONNRESET); Bun's `error` callback is for exceptions thrown by callbacks.
      close: (socket, error) => this.onClosed(socket, error),
    }
  }

  private connOf(socket: BunSocket): ConnCtx | undefined {
    const slot = socket.data.slot
    return slot >= 0 ? this.conns[slot] : undefined
  }

  private accepted(socket: BunSocket, unix: string | null): void {
    socket.data = { slot: -1, unix, outbound: false } // one object per socket (a listener's `data` would be shared)
    if (!this.accepting || this.freeCount === 0) {
      // Table full: close at once, as io_uring does.
      this.counters[C.connectionsRefused]!++
      socket.end()
      return
    }
    const conn = this.openConn(this.freeSlots[--this.freeCount]!, socket)
    this.counters[C.connectionsAccepted]!++
    this.host.onConnection(conn)
    this.eventsHappened()
  }

  private connected(socket: BunSocket): void {
    const slot = socket.data.slot
    const pending = slot >= 0 ? this.connecting.get(slot) : undefined
    if (pending === undefined) {
      socket.terminate() // the caller gave up (timeout, abort, shutdown) before the connect completed
      return
    }
    this.connecting.delete(slot)
    pending.settle()
    const conn = this.openConn(slot, socket)
    this.counters[C.connectionsConnected]!++
    pending.resolve(conn)
    this.eventsHappened()
  }

  private openConn(slot: number, socket: BunSocket): ConnCtx {
    socket.data.slot = slot
    this.sockets[slot] = socket
    this.state[slot] = 0
    if (socket.data.unix === null) socket.setNoDelay(this.cfg.tcpNodelay)
    const conn = new ConnCtx(this, slot, this.gens[slot]!, this.nextConnId++)
    this.conns[slot] = conn
    return conn
  }

  /**
   * Bun closed the socket (after our end(), a reset, or both halves shut): sends
   * fail and the reader sees end of stream. The slot stays with the connection
   * until its handler has closed it too, as on io_uring, where the descriptor
   * lives until close: the table bounds live handlers, not just live sockets.
   */
  private onClosed(socket: BunSocket, error: Error | undefined): void {
    const slot = socket.data.slot
    const conn = slot >= 0 ? this.conns[slot] : undefined
    if (conn === undefined) return
    socket.data.slot = -1
    this.sockets[slot] = undefined
    this.state[slot] = 0
    const code = error === undefined ? null : ((error as { code?: string }).code ?? "EIO")
    conn.failSends(code ?? "ENOTCONN")
    conn.deliverEof(code)
    if (conn.isClosed || this.destroying) this.release(slot, conn)
    this.eventsHappened()
  }

  /** Gives the connection's slot back; once only (a reader that closed the connection inside onClosed's deliverEof has released it already). */
  private release(slot: number, conn: ConnCtx): void {
    if (this.conns[slot] !== conn) return
    conn.detach()
    this.conns[slot] = undefined
    this.releaseSlot(slot)
    this.counters[C.connectionsClosed]!++
    this.host.onConnectionClosed(conn)
  }

  /** host.onTick once per event-loop turn that processed events (Bun runs setImmediate after the turn's I/O). */
  private eventsHappened(): void {
    if (this.tickScheduled || this.destroyed || !this.host.wantsTicks) return
    this.tickScheduled = true
    setImmediate(this.tick)
  }

  private readonly tick = () => {
    this.tickScheduled = false
    if (!this.destroyed) this.host.onTick()
  }

  // ── listen / bind ──────────────────────────────────────────────────────

  async bindTcp(addr: string): Promise<string> {
    const where = splitAddr(addr)
    if (where === null) throw new NativeError("parse address", -EINVAL, `"${addr}" is not host:port, [v6]:port or unix:/path`)
    try {
      if ("unix" in where) {
        const path = where.unix
        await removeStaleUnixSocket(path)
        const socket = this.handlers((s) => this.accepted(s, path))
        this.listeners.push(Bun.listen<SockData>({ unix: path, allowHalfOpen: true, socket }))
        return `unix:${path}`
      }
      // allowHalfOpen: without it Bun closes the socket when the peer half-closes, and the tail of an echo is lost.
      // reusePort: every worker listens on the same port, as io_uring does with SO_REUSEPORT
      // (Bun.listen honours it; its typings only declare it for connect).
      const options = { hostname: where.hostname, port: where.port, allowHalfOpen: true, reusePort: true, socket: this.handlers((s) => this.accepted(s, null)) }
      const listener = Bun.listen<SockData>(options as TCPSocketListenOptions<SockData>)
      this.listeners.push(listener)
      return joinAddr(where.hostname, listener.port)
    } catch (e) {
      const { errno } = bunErrno(e)
      throw new NativeError("listen", -errno, addr)
    }
  }

  async bindUdp(addr: string): Promise<string> {
    const where = splitAddr(addr)
    if (where === null || "unix" in where) throw new NativeError("parse address", -EINVAL, `"${addr}" is not host:port or [v6]:port`)
    let udp: PortableUdp
    try {
      udp = await PortableUdp.bind(where.hostname, where.port, this.cfg, this.counters, this.udpSlots, () => this.eventsHappened())
    } catch (e) {
      const { errno } = bunErrno(e)
      throw new NativeError("bind udp", -errno, addr)
    }
    this.udps.push(udp)
    const local = udp.localAddr()
    this.host.onUdpSocket(udp.ctx)
    return local
  }

  /** Listeners are live from bind on; Bun's event loop is the loop. */
  start(): void {}

  // ── send ───────────────────────────────────────────────────────────────

  transmit(conn: ConnCtx): void {
    if (this.conns[conn.slot] === conn) this.schedule(conn.slot)
  }

  /**
   * ConnBackend.sendDirect (the connection's queue is empty, and the pool could take
   * all of `bytes`): while its `data` callback delivers, the delivered bytes sent
   * back are held (hold); a large send is written at once; anything else goes
   * through the queue, after what is held.
   */
  sendDirect(conn: ConnCtx, bytes: Uint8Array): number {
    if (this.writableSocket(conn) === undefined) return 0
    if (conn.slot === this.delivering) {
      if (this.hold(bytes)) return bytes.length
      this.queueHeld(conn) // what follows it goes after it
    }
    return bytes.length >= DIRECT_WRITE_MIN && conn.sendQueue.segmentCount === 0 ? this.writeNow(conn, bytes) : 0
  }

  /** Holds `bytes` if they are the bytes being delivered (the arrival echoed whole), with pool room reserved. */
  private hold(bytes: Uint8Array): boolean {
    // By identity only: a look at .buffer costs ~0.2 µs on the fresh array Bun delivers (bench/micro.ts).
    if (bytes !== this.deliveringData || this.held !== null || !this.pool.reserve(this.heldSlots(bytes))) return false
    this.held = bytes
    return true
  }

  /** The pool slots reserved for `held`. */
  private heldSlots(held: Uint8Array): number {
    return Math.ceil(held.length / this.pool.slotSize)
  }

  /** Drops what is held, returning its reserved slots; returns the bytes. */
  private takeHeld(): Uint8Array | null {
    const held = this.held
    if (held !== null) this.pool.unreserve(this.heldSlots(held))
    this.held = null
    return held
  }

  /** ConnBackend.queueHeld: copies what is held into the connection's queue (the room was reserved for it). */
  queueHeld(conn: ConnCtx): void {
    if (conn.slot !== this.delivering) return // only the connection being delivered to has anything held
    const held = this.takeHeld()
    if (held !== null) conn.sendQueue.enqueue(held)
  }

  /** deliver returned: what is held is written, and the pool takes what the kernel did not. */
  private writeHeld(conn: ConnCtx): void {
    const held = this.takeHeld()!
    const n = this.writeNow(conn, held)
    if (n === held.length) return
    // Short: the kernel's buffer is full (AWAIT_DRAIN: drain writes the rest), or the socket failed: nothing
    // more goes out, and the rest is counted as queued bytes would be. (failSends, as in an abort, moves what is held into the queue first.)
    if (this.state[conn.slot]! & AWAIT_DRAIN) conn.sendQueue.enqueue(held.subarray(n))
    else this.pool.noteUnsent(held.length - n)
  }

  /** The connection's socket if a write may go to it now (it is open, not closing, not waiting for drain). */
  private writableSocket(conn: ConnCtx): BunSocket | undefined {
    const slot = conn.slot
    return this.conns[slot] === conn && !(this.state[slot]! & (AWAIT_DRAIN | CLOSING)) ? this.sockets[slot] : undefined
  }

  /** Bun's write sends at once and copies nothing it does not send. */
  private writeNow(conn: ConnCtx, bytes: Uint8Array): number {
    const slot = conn.slot
    const socket = this.writableSocket(conn)
    if (socket === undefined) return 0
    const n = socket.write(bytes)
    if (n < 0) {
      conn.failSends("EPIPE") // as in writeOut
      return 0
    }
    this.counters[C.bytesSent]! += n
    this.counters[C.bytesSentWithoutCopy]! += n
    if (n < bytes.length) {
      // The kernel buffer is full: what the connection queues now waits for drain.
      this.counters[C.sendEagain]!++
      this.state[slot]! |= AWAIT_DRAIN
    }
    return n
  }

  /** Writes (then ends / half-closes as asked) at the end of this turn, unless drain will. */
  private schedule(slot: number): void {
    if (this.state[slot]! & (DIRTY | AWAIT_DRAIN | CLOSING) || this.sockets[slot] === undefined) return
    this.state[slot]! |= DIRTY
    if (slot === this.delivering) return
    this.dirty.push(slot)
    if (this.flushScheduled) return
    this.flushScheduled = true
    queueMicrotask(this.flushNow)
  }

  private flush(): void {
    this.flushScheduled = false
    const dirty = this.dirty
    this.dirty = this.flushing
    for (const slot of dirty) {
      if (!(this.state[slot]! & DIRTY)) continue // closed (and possibly reused) since
      this.state[slot]! &= ~DIRTY
      this.writeOut(slot)
    }
    dirty.length = 0
    this.flushing = dirty
  }

  /** Writes queued segments until Bun takes less than offered (then waits for drain); then a pending shutdown/close. */
  private writeOut(slot: number): void {
    const conn = this.conns[slot]!
    const socket = this.sockets[slot]!
    const q = conn.sendQueue
    while (q.segmentCount > 0) {
      // Segments in adjacent pool slots go out in one write (a poor man's sendmsg).
      const off = q.segmentOffset(0)
      let len = q.segmentLength(0)
      for (let i = 1; i < q.segmentCount && q.segmentOffset(i) === off + len; i++) len += q.segmentLength(i)
      const n = socket.write(this.pool.slab, off, len)
      if (n < 0) {
        // The kernel refused the send (e.g. the peer reset). Bun gives no reason and keeps the
        // socket open until it is closed; EPIPE is what send(2) reports on a broken connection.
        conn.failSends("EPIPE")
        return
      }
      if (n > 0) {
        this.counters[C.bytesSent]! += n
        q.consume(n)
      }
      if (n < len) {
        this.counters[C.sendEagain]!++
        this.state[slot]! |= AWAIT_DRAIN
        return
      }
    }
    const st = this.state[slot]!
    if (st & CLOSE_PENDING) {
      this.state[slot] = CLOSING
      socket.end() // on Bun 1.4 a full close: the close callback runs (often at once) and frees the slot
    } else if (st & SHUTWR_PENDING) {
      this.state[slot] = st & ~SHUTWR_PENDING
      socket.shutdown() // SHUT_WR: the peer sees EOF, reading goes on (shutdown(true) would be SHUT_RD)
    }
  }

  shutdownWrite(conn: ConnCtx): void {
    const slot = conn.slot
    if (this.conns[slot] !== conn) return
    this.state[slot]! |= SHUTWR_PENDING
    this.schedule(slot)
  }

  /**
   * Graceful: end once the queue is written. Abort: drop the queue and end now.
   * Both close the descriptor like io_uring's close (FIN; bytes the kernel already
   * took still arrive). terminate() would reset the connection and lose those
   * bytes, which bytesSent and resolved send() calls already report as sent.
   */
  close(conn: ConnCtx, abort: boolean): void {
    const slot = conn.slot
    if (this.conns[slot] !== conn) return
    const socket = this.sockets[slot]
    if (socket === undefined) return this.release(slot, conn) // Bun closed the socket already
    if (this.state[slot]! & CLOSING) return
    if (!abort) {
      this.state[slot]! |= CLOSE_PENDING
      this.schedule(slot)
      return
    }
    conn.failSends("ENOTCONN")
    this.state[slot] = CLOSING
    socket.end()
  }

  // ── receive ────────────────────────────────────────────────────────────

  pauseRecv(conn: ConnCtx): void {
    if (this.conns[conn.slot] !== conn) return
    this.counters[C.recvPauses]!++
    this.sockets[conn.slot]?.pause() // Bun stops reading the socket: the kernel buffer fills and TCP pushes back
  }

  resumeRecv(conn: ConnCtx): void {
    if (this.conns[conn.slot] === conn) this.sockets[conn.slot]?.resume()
  }

  address(conn: ConnCtx, peer: boolean): string {
    const s = this.conns[conn.slot] === conn ? this.sockets[conn.slot] : undefined
    if (s === undefined) return ""
    const { unix, outbound } = s.data
    // Bun reports no addresses for unix sockets; the named end is the listener's path (as getsockname/getpeername give).
    if (unix !== null) return peer === outbound ? `unix:${unix}` : "unix:"
    return peer ? joinAddr(s.remoteAddress, s.remotePort) : joinAddr(s.localAddress, s.localPort)
  }

  // ── connect ────────────────────────────────────────────────────────────

  connect(addr: string, options: ConnectOptions): Promise<ConnCtx> {
    const { timeoutMs = 0, signal } = options
    if (signal?.aborted) return Promise.reject(abortError(signal, `connect ${addr}`))
    if (this.destroying) return Promise.reject(new ConnectError("ECANCELED", addr, `connect ${addr}: the worker has shut down`))
    const where = splitAddr(addr)
    if (where === null) return Promise.reject(new ConnectError("EINVAL", addr, `"${addr}" is not host:port, [v6]:port or unix:/path`))
    if (this.freeCount === 0) {
      return Promise.reject(new ConnectError("EMFILE", addr, `connect ${addr}: all ${this.conns.length} connection slots (Config.maxConnections) are in use`))
    }
    // The slot is held from now on, as on io_uring; the `open` callback turns it into a connection.
    const slot = this.freeSlots[--this.freeCount]!
    const data: SockData = { slot, unix: "unix" in where ? where.unix : null, outbound: true }
    return new Promise<ConnCtx>((resolve, reject) => {
      // Bun cannot cancel a connect in progress: giving up frees the slot at once, and a late
      // success finds no pending entry and is terminated (see connected()).
      const giveUp = (e: Error) => {
        if (this.connecting.get(slot) !== pending) return
        this.connecting.delete(slot)
        pending.settle()
        data.slot = -1
        this.releaseSlot(slot)
        reject(e)
      }
      const timer = timeoutMs > 0 ? setTimeout(() => giveUp(new ConnectError("ETIMEDOUT", addr, `connect ETIMEDOUT ${addr} (no answer within ${timeoutMs} ms)`)), timeoutMs) : undefined
      const onAbort = () => giveUp(abortError(signal, `connect ${addr}`))
      signal?.addEventListener("abort", onAbort, { once: true })
      const pending: PendingConnect = {
        addr,
        resolve,
        reject: giveUp,
        settle: () => {
          clearTimeout(timer)
          signal?.removeEventListener("abort", onAbort)
        },
      }
      this.connecting.set(slot, pending)
      const socket = this.handlers((s) => this.connected(s))
      const attempt = "unix" in where
        ? Bun.connect<SockData>({ unix: where.unix, allowHalfOpen: true, data, socket })
        : Bun.connect<SockData>({ hostname: where.hostname, port: where.port, allowHalfOpen: true, data, socket })
      attempt.catch((e: unknown) => {
        const code = bunErrno(e).code ?? "ECONNREFUSED"
        giveUp(new ConnectError(code, addr, `connect ${code} ${addr}`))
      })
    })
  }

  /** Gives a slot back without a ConnCtx ever having lived on it. */
  private releaseSlot(slot: number): void {
    this.state[slot] = 0
    this.gens[slot] = (this.gens[slot]! + 1) >>> 0
    this.freeSlots[this.freeCount++] = slot
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
    // stop(false) closes the listening socket (new connections are refused) and keeps live ones.
    for (const l of this.listeners.splice(0)) l.stop(false)
  }

  /** setTimeout bounded by Config.timerSlots live timers, like the ring's timer table. */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.destroying) return Promise.reject(new ShutdownError("sleep"))
    if (this.sleeps.size >= this.cfg.timerSlots) {
      this.counters[C.timerExhausted]!++
      return Promise.reject(new TimerExhaustedError(this.cfg.timerSlots))
    }
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout>
      const fail = (e: Error) => {
        clearTimeout(timer)
        free()
        reject(e)
      }
      const free = () => {
        this.sleeps.delete(fail)
        signal?.removeEventListener("abort", onAbort)
      }
      const arm = (left: number) => {
        timer = setTimeout(() => {
          if (left > MAX_TIMEOUT_MS) return arm(left - MAX_TIMEOUT_MS)
          free()
          resolve()
          this.eventsHappened()
        }, Math.min(left, MAX_TIMEOUT_MS))
      }
      const onAbort = () => fail(signal!.reason)
      this.sleeps.add(fail)
      signal?.addEventListener("abort", onAbort, { once: true })
      arm(Math.max(0, Math.ceil(ms) || 0))
    })
  }

  /** Called on this worker's thread (the notify message); wakes that arrive together run onNotify once, like the eventfd. */
  wake(): void {
    if (this.notifyScheduled) return
    this.notifyScheduled = true
    setTimeout(() => {
      this.notifyScheduled = false
      if (this.destroyed) return
      this.host.onNotify()
      this.eventsHappened()
    }, 0)
  }

  async destroy(): Promise<void> {
    this.destroying = true // from now on a closed socket releases its slot without waiting for its handler
    this.stopAccepting()
    for (const p of [...this.connecting.values()]) p.reject(new ConnectError("ECANCELED", p.addr, `connect ${p.addr}: the worker shut down`))
    for (const conn of this.liveConnections()) this.close(conn, true)
    for (const u of this.udps) u.close()
    for (const fail of [...this.sleeps]) fail(new ShutdownError("sleep"))
    // Bun delivers close callbacks at once or within a turn; wait for the slots (bounded).
    for (let i = 0; i < 100 && this.freeCount < this.conns.length; i++) await new Promise((r) => setImmediate(r))
    this.destroyed = true
  }
}
