// The io_uring backend: one ring per worker, multishot accept and recv with a
// provided-buffer ring, sends from the native slab (one sendmsg in flight per
// connection, everything queued behind it coalesced), timers on the ring.
//
// The loop waits in the ring while there is traffic and, once idle, sleeps in
// Bun's event loop until the ring's doorbell rings (a byte on its socket, at
// once when a socket stirs), so timers and postMessage in handlers keep
// working and an idle worker costs almost no CPU.
import type { Config } from "../config"
import { ConnCtx, SlotQueues, type ConnBackend } from "../conn"
import type { ConnectOptions, Driver, DriverHost } from "../driver"
import { C } from "../metrics"
import { check, errnoName, Errno, NativeError } from "../native/errno"
import { CLOSE_QUIET, CQE, CQE_F_MORE, KIND_OVERFLOW, KIND_WAKE, MSG, Notify, Opcode, SockFlag, WAIT_UNBOUNDED } from "../native/layout"
import type { Socket } from "bun"
import { drainMicrotasks } from "bun:jsc"
import { cString, decodeCString, native } from "../native/lib"
import { abortError, ConnectError, ShutdownError, TimerExhaustedError } from "../errors"
import type { BufferLender } from "../recv"
import { SendPool } from "../send"
import { udpMaxDatagram, type UdpCtx } from "../udp"
import { Kind } from "./kinds"
import { BufferRing, Ring } from "./ring"
import { UdpRecvBuffers, UdpSendSlots, UringUdp } from "./udp"


// Per-slot state bits.
const RECV_ARMED = 1 << 0
const RECV_PAUSED = 1 << 1
const RECV_PARKED = 1 << 2
const SEND_INFLIGHT = 1 << 3
const SEND_DIRTY = 1 << 4
const CLOSE_PENDING = 1 << 5
const CLOSING = 1 << 6
const SHUTWR_PENDING = 1 << 7
const POLLOUT_ARMED = 1 << 8
const CONNECTING = 1 << 9
/** The ring's own CLOSE op closes the fd (nothing was in flight on it). */
const RING_CLOSES_FD = 1 << 10

const TCP_BGID = 0
const UDP_BGID = 1
const POLLOUT = 4
const SHUT_WR = 1
const MAX_TIMER_MS = 0xffffffff

interface PendingConnect {
  addr: string
  timeoutMs: number
  resolve: (c: ConnCtx) => void
  reject: (e: Error) => void
  /** Why the attempt was cancelled before the kernel answered (timeout/abort), if it was. */
  failure: "ETIMEDOUT" | "ABORT" | null
  timer: ReturnType<typeof setTimeout> | undefined
  signal: AbortSignal | undefined
  onAbort: () => void
}

/**
 * Period of the loop's tick, a TIMEOUT op kept in flight while the loop waits in
 * the kernel: each tick gives Bun's event loop a full turn (timers, postMessage),
 * and PARK_AFTER_QUIET_TICKS ticks in a row with nothing else completed park the worker.
 */
const TICK_MS = 1

/**
 * Consecutive ticks with nothing else completed before the worker parks: a
 * lull of a few ms keeps it waiting in the ring, which answers the next
 * completion without a turn of Bun's event loop; a longer one stops the ticks,
 * which cost CPU (50 of them were most of what a request after a long silence
 * cost: `bun bench/lull.ts`, bench/README "Sparse traffic").
 *
 * A parked worker sleeps until the ring's doorbell rings (csrc/doorbell.c): as
 * soon as a watched socket stirs, every socket the worker had when it last slept
 * (watchNewSockets), its listeners, UDP sockets and the ring's wake eventfd from
 * the start; and for a pending handler timer, when the ring signals its own
 * completions (for a socket's, this kernel signals that ~16 ms late on a
 * DEFER_TASKRUN ring: bench/wake_probe.c).
 */
const PARK_AFTER_QUIET_TICKS = 4

/**
 * Sparse traffic: a worker woken after sleeping at least SPARSE_AFTER_SLEEP_MS answers
 * what woke it and sleeps again as soon as the ring has nothing ready, without ticking:
 * an isolated request then costs one wake-up, not one more per tick until the worker
 * parks. A shorter sleep, or SPARSE_PASSES batches in a row without a chance to sleep,
 * mean the traffic is back: the loop waits in the ring with its tick again.
 */
const SPARSE_AFTER_SLEEP_MS = 1
const SPARSE_PASSES = 16

/**
 * A worker that ticks BUSY_SPELL_TICKS times without parking, and at least one tick
 * per SOCKETS_PER_SPELL_TICK sockets it has, takes its sockets out of the doorbell's
 * set until it parks: in the set, every wake-up of a socket (a datagram in, a sent
 * one freed) also visits the set's entry, ~3 % of the CPU per datagram of a UDP
 * flood (bench/README "Where the misses come from"). Out of it, the spell costs an
 * epoll_ctl per socket each way (~1 µs together here: bench/watch_cost.c), so it
 * must be long enough for that to stay under ~0.4 % of it, however many idle
 * connections the worker holds. Sparse traffic never gets here.
 */
const BUSY_SPELL_TICKS = 100
const SOCKETS_PER_SPELL_TICK = 4

const hop = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Parses "host:port" / "[v6]:port" / "unix:/path" into sockaddr bytes (throws EINVAL with the text). */
export function parseAddr(addr: string, sym = native().sym): Uint8Array {
  const out = new Uint8Array(MSG.sockaddrMax)
  const len = sym.ringline_addr_parse(cString(addr), out, out.length)
  if (len < 0) throw new NativeError("parse address", len, `"${addr}" is not host:port, [v6]:port or unix:/path`)
  return out.subarray(0, len)
}

export function formatAddr(sa: Uint8Array, sym = native().sym): string {
  const out = new Uint8Array(160)
  const n = check("format address", sym.ringline_addr_format(sa, sa.length, out, out.length))
  return decodeCString(out, n)
}

export class UringDriver implements Driver, ConnBackend {
  readonly backend = "io_uring" as const
  readonly ring: Ring
  readonly pool: SendPool
  readonly recvAccumulatorMax: number
  readonly recvHighWater: number
  readonly slotQueues: SlotQueues
  /** Sends go through the ring only. */
  readonly sendDirect = null
  /**
   * Connections keep provided buffers until their parser has consumed them and
   * the sends made from them have completed (no copy either way), within a
   * budget of half the ring so one slow reader cannot starve the rest; beyond
   * it, received bytes are copied and the buffer goes back.
   */
  readonly lender: BufferLender = {
    release: (bid: number) => {
      if (--this.bufferRefs[bid]! > 0) return
      this.heldBuffers--
      if (!this.destroyed) this.recvRing.giveBack(bid) // after destroy the ring's memory is gone
    },
    retain: (bytes: Uint8Array) => {
      const bid = this.recvRing.bufferOf(bytes)
      if (bid < 0 || this.bufferRefs[bid] === 0) return -1 // not lent (any more): copy
      this.bufferRefs[bid]!++
      return bid
    },
    slabOffset: (bytes: Uint8Array) => this.recvRing.slabOffsetOf(bytes),
  }
  /** Per provided buffer: references held (its receive buffer's, plus one per send segment); 0 = with the kernel. */
  private readonly bufferRefs: Int32Array
  private heldBuffers = 0
  private readonly holdBudget: number
  /** destroy() has begun: no new connects (one begun now would outlive the teardown's closes). */
  private destroying = false
  private destroyed = false
  private readonly cfg: Config
  private readonly counters: Float64Array
  private readonly recvRing: BufferRing
  private udpBuffers: UdpRecvBuffers | null = null
  private readonly udpSlots: UdpSendSlots

  // Connection table, indexed by slot.
  private readonly conns: Array<ConnCtx | undefined>
  private readonly fds: Int32Array
  private readonly gens: Uint32Array
  private readonly state: Uint16Array
  private readonly freeSlots: Int32Array
  private freeCount: number
  private nextConnId = 1
  private readonly dirty: number[] = []
  private parked: number[] = []

  private readonly connecting = new Map<number, PendingConnect>()
  /** open: still accepting; fd is -1 once closed. */
  private readonly listeners: Array<{ fd: number; open: boolean }> = []
  private accepting = true

  private readonly udps: UringUdp[] = []

  // Timers: slot → resolver, generation for cancellation.
  private readonly timerResolve: Array<(() => void) | undefined>
  private readonly timerReject: Array<((e: Error) => void) | undefined>
  private readonly timerGen: Uint32Array
  private readonly timerFree: Int32Array
  private timerFreeCount: number

  // The loop's tick (TICK_MS): a TIMEOUT op on the timer slot after the handlers' ones.
  private readonly tickSlot: number
  private tickFired = false
  /** Completions reaped since the tick was armed (the tick's own included). */
  private sinceTick = 0

  private stopped = false
  /** Asleep until the doorbell rings: run is not scheduled; a kick or the doorbell runs unpark. */
  private sleeping = false
  /** Completions the unpark reaped, for run to dispatch. */
  private unparked = 0
  /** Ticks in a row with nothing else completed (PARK_AFTER_QUIET_TICKS). */
  private quietTicks = 0
  /** When the worker last went to sleep (performance.now()). */
  private sleptAt = 0
  /** Passes left before the loop ticks again after a long sleep (SPARSE_PASSES); 0: it ticks (no sleep without a quiet tick). */
  private sparsePasses = 0
  /** Slots whose socket the doorbell may not watch yet (listed once each: `listedForWatch`), and the fds handed over. */
  private readonly unwatched: Int32Array
  private unwatchedCount = 0
  private readonly listedForWatch: Uint8Array
  private readonly watchFds: Int32Array
  /** The doorbell could not watch some socket: said once, and from then on the ring's own signal is on while asleep. */
  private watchRefused = false
  /** Ticks since the worker last went to sleep (BUSY_SPELL_TICKS). */
  private ticksAwake = 0
  /** The sockets are out of the doorbell's set for a busy spell: watched again on the way to sleep. */
  private outOfDoorbell = false
  private loopEnded: { resolve: () => void; reject: (e: Error) => void } = { resolve: () => {}, reject: () => {} }
  private doorbell: Promise<Socket> | null = null
  private watchdog: Timer | null = null
  private loopDone: Promise<void> = Promise.resolve()

  constructor(private readonly host: DriverHost) {
    const cfg = (this.cfg = host.config)
    this.counters = host.counters
    if (host.pinCpu !== null) {
      const rc = native().sym.ringline_thread_pin(host.pinCpu)
      if (rc < 0) console.error(`ringline: worker ${host.workerId}: pinning to CPU ${host.pinCpu} failed (${errnoName(rc)}); running unpinned`)
    }
    // The slab: TCP receive buffers (so sends can go out of them), the send pool, UDP send slots.
    const recvBytes = cfg.recvBuffer.ringSize * cfg.recvBuffer.bufferSize
    const tcpSlab = cfg.sendCopyCount * cfg.sendCopySlotSize
    const udpSlotSize = udpMaxDatagram(cfg.udpRecvBuffer.bufferSize)
    const udpSlab = cfg.udpSendSlots * udpSlotSize
    this.ring = new Ring({
      sqEntries: cfg.sqEntries,
      slabBytes: recvBytes + tcpSlab + udpSlab,
      msgSlots: cfg.maxConnections + cfg.udpSendSlots,
      timerSlots: cfg.timerSlots + 1, // + the loop's tick
    })
    this.tickSlot = cfg.timerSlots
    this.recvRing = new BufferRing(this.ring, TCP_BGID, cfg.recvBuffer.ringSize, cfg.recvBuffer.bufferSize, 0)
    this.bufferRefs = new Int32Array(cfg.recvBuffer.ringSize)
    this.pool = new SendPool(this.ring.slab, recvBytes, cfg.sendCopySlotSize, cfg.sendCopyCount, this.counters)
    this.udpSlots = new UdpSendSlots(cfg.udpSendSlots, udpSlotSize, recvBytes + tcpSlab, cfg.maxConnections)
    this.recvAccumulatorMax = cfg.recvAccumulatorMax
    this.recvHighWater = Math.min(cfg.recvHighWater, cfg.recvAccumulatorMax)
    this.holdBudget = cfg.recvBuffer.ringSize >> 1

    const max = cfg.maxConnections
    this.conns = new Array(max)
    this.fds = new Int32Array(max).fill(-1)
    this.gens = new Uint32Array(max)
    this.state = new Uint16Array(max)
    this.freeSlots = new Int32Array(max)
    for (let i = 0; i < max; i++) this.freeSlots[i] = max - 1 - i
    this.freeCount = max
    this.slotQueues = new SlotQueues(max, this.pool, this.lender, cfg.sendHighWater)
    this.unwatched = new Int32Array(max)
    this.listedForWatch = new Uint8Array(max)
    this.watchFds = new Int32Array(max)

    this.timerResolve = new Array(cfg.timerSlots)
    this.timerReject = new Array(cfg.timerSlots)
    this.timerGen = new Uint32Array(cfg.timerSlots)
    this.timerFree = new Int32Array(cfg.timerSlots)
    for (let i = 0; i < cfg.timerSlots; i++) this.timerFree[i] = cfg.timerSlots - 1 - i
    this.timerFreeCount = cfg.timerSlots
  }

  // ── setup ──────────────────────────────────────────────────────────────

  async bindTcp(addr: string): Promise<string> {
    const sym = this.ring.sym
    const sa = parseAddr(addr, sym)
    const fd = sym.ringline_socket_listen(sa, sa.length, this.cfg.backlog, SockFlag.REUSEPORT | SockFlag.UNLINK)
    if (fd < 0) throw new NativeError("listen", fd, addr)
    if (this.cfg.tcpNodelay && !addr.startsWith("unix:")) sym.ringline_socket_nodelay(fd, 1)
    this.watch(Int32Array.of(fd))
    const index = this.listeners.length
    this.listeners.push({ fd, open: true })
    this.ring.push(Opcode.ACCEPT_MULTI, Kind.ACCEPT, index, 0, fd)
    return this.socketName(fd, false)
  }

  async bindUdp(addr: string): Promise<string> {
    const sym = this.ring.sym
    const sa = parseAddr(addr, sym)
    const fd = sym.ringline_socket_udp(sa, sa.length, SockFlag.REUSEPORT)
    if (fd < 0) throw new NativeError("bind udp", fd, addr)
    this.watch(Int32Array.of(fd))
    this.udpBuffers ??= new UdpRecvBuffers(this.ring, UDP_BGID, this.cfg.udpRecvBuffer)
    const udp = new UringUdp(this.ring, this.udps.length, fd, this.udpBuffers, this.udpSlots, this.cfg, this.counters, () => this.kick(), (f) => this.socketName(f, false))
    this.udps.push(udp)
    const local = this.socketName(fd, false)
    this.host.onUdpSocket(udp.ctx)
    return local
  }

  socketName(fd: number, peer: boolean): string {
    const out = new Uint8Array(MSG.sockaddrMax)
    const n = this.ring.sym.ringline_socket_name(fd, peer ? 1 : 0, out, out.length)
    if (n < 0) return ""
    return formatAddr(out.subarray(0, n), this.ring.sym)
  }

  start(): void {
    this.loopDone = new Promise((resolve, reject) => (this.loopEnded = { resolve, reject }))
    // Bun's event loop watches the doorbell's socket for the sleeping worker (one recv per ring).
    const options: Bun.FdSocketOptions = { fd: this.ring.openNotifyFd(), socket: { data: this.onDoorbell } }
    // bun-types 1.4 declares FdSocketOptions but no Bun.connect overload taking it; the runtime does.
    const doorbell = Bun.connect(options as unknown as Bun.UnixSocketOptions)
    doorbell.catch((e: Error) => this.loopEnded.reject(e))
    this.doorbell = doorbell
    this.watchdog = setInterval(this.lookWhileAsleep, this.cfg.wakeupWatchdogMs)
    this.watchdog.unref() // it never keeps a worker's event loop alive on its own
    this.armTick()
    setImmediate(this.run)
  }

  // ── the loop ───────────────────────────────────────────────────────────

  /** The doorbell rang (a byte on its socket): a sleeping worker runs from here, no hop through setImmediate. */
  private readonly onDoorbell = (): void => {
    if (!this.sleeping) return // a ring from before it woke
    this.sleeping = false
    this.unpark()
  }

  /**
   * The watchdog (every Config.wakeupWatchdogMs) looks at a sleeping worker's ring as
   * the doorbell would have it: completions found there were a missed wake-up. Nothing
   * should ever be (the doorbell fences what it drops: csrc/doorbell.c); this bounds
   * what a miss costs if something is.
   */
  private readonly lookWhileAsleep = (): void => {
    if (!this.sleeping) return
    this.sleeping = false
    this.wakeAndRun(true)
  }

  /** Wakes the loop if it is parked (an op was queued from outside a completion). */
  kick(): void {
    if (!this.sleeping) return
    this.sleeping = false
    setImmediate(this.unpark)
  }

  /** Queues what handlers asked for: coalesced sends, returned buffers, re-armed receives. */
  private stage(): void {
    this.flushSends()
    // Parked receives re-arm after every dispatch, not only when buffers came back in
    // this step: an -ENOBUFS reaped after the last give-back would otherwise park for
    // good. It cannot spin: at this point at most half the ring is lent out (holdBudget),
    // and UDP lends nothing, so the kernel has buffers again.
    this.recvRing.flush()
    this.rearmParked()
    if (this.udpBuffers !== null) {
      this.udpBuffers.ring.flush()
      for (const u of this.udps) u.unpark()
    }
  }

  /**
   * The loop, run from Bun's event loop until its next tick. One ring syscall
   * per step: submit what is queued and wait for the next completion in the
   * same call. The wait sets no timer of its own (arming one per wait is what
   * costs, in a VM); the tick in flight bounds it to TICK_MS. After each batch,
   * the handlers it resumed run until they await I/O again (drainMicrotasks:
   * however long their await chains), so what they queue goes out with the next
   * call. On each tick Bun's event loop gets a turn, or, once nothing but the
   * tick completed during PARK_AFTER_QUIET_TICKS periods in a row, the worker
   * parks until the doorbell rings (~0 % CPU however long it stays idle).
   */
  private readonly run = (): void => {
    const ring = this.ring
    let n = this.unparked
    this.unparked = 0
    try {
      while (!this.stopped) {
        if (n === 0) {
          this.stage()
          // Sparse, with nothing to submit: no look here, sleepUnlessReady looks after arming the doorbell.
          n = this.sparsePasses > 0 && !ring.hasQueued ? 0 : ring.reap(this.sparsePasses === 0 ? 1 : 0, WAIT_UNBOUNDED)
          if (n === 0 && this.sparsePasses > 0) {
            if (!this.sleepUnlessReady()) return
            n = this.unparked
            this.unparked = 0
            continue
          }
        }
        if (this.sparsePasses > 0 && --this.sparsePasses === 0) this.armTick() // traffic is back: wait in the ring again
        this.sinceTick += n
        this.dispatch(n)
        n = 0
        this.host.onTick()
        drainMicrotasks()
        if (!this.tickFired) continue
        this.tickFired = false
        this.ticksAwake++
        if (!this.outOfDoorbell && this.busySpellLongEnough()) this.leaveDoorbell()
        this.quietTicks = this.sinceTick === 1 ? this.quietTicks + 1 : 0
        if (this.quietTicks >= PARK_AFTER_QUIET_TICKS) return this.park()
        this.armTick()
        setImmediate(this.run)
        return
      }
      this.loopEnded.resolve()
    } catch (e) {
      this.loopEnded.reject(e as Error)
    }
  }

  private armTick(): void {
    this.sinceTick = 0
    // Cannot fail: only the tick takes the op record push() keeps free, and the last one was reaped.
    this.ring.pushReserved(Opcode.TIMEOUT, Kind.TICK, this.tickSlot, 0, -1, this.tickSlot, TICK_MS)
  }

  /** At a quiet tick: what the last batch queued goes in, then the worker sleeps unless something came meanwhile. */
  private park(): void {
    this.quietTicks = 0
    this.stage()
    // Run on the next turn, not from here: run → park → run would nest for as long as completions keep coming.
    if (this.sleepUnlessReady()) setImmediate(this.run)
  }

  /** A notification or a kick while asleep: runs what came, or sleeps again if nothing did (a kick that completed nothing). */
  private readonly unpark = (): void => this.wakeAndRun(false)

  /** unpark's work; `byWatchdog`: what the look finds is counted as a missed wake-up. */
  private wakeAndRun(byWatchdog: boolean): void {
    try {
      this.sparsePasses = performance.now() - this.sleptAt >= SPARSE_AFTER_SLEEP_MS ? SPARSE_PASSES : 0
      this.stage()
      const n = this.ring.reap(0, 0)
      if (n > 0 && byWatchdog) this.counters[C.missedWakeups]!++
      if (n > 0 || this.stopped) this.wakeWith(n)
      else if (!this.sleepUnlessReady()) return
    } catch (e) {
      return this.loopEnded.reject(e as Error)
    }
    this.run()
  }

  /**
   * Arms the doorbell, then looks at the ring once more (arming drops the doorbell's
   * stale edges, so the look comes after it). False: asleep until the doorbell rings.
   * The ring's own signal is on only for a pending handler timer, or once a socket
   * could not be watched (else nothing would wake the worker for it): for sockets
   * it comes ~16 ms after the doorbell's, a spare wake-up. The doorbell is armed
   * only here, on the way to sleep: armed while the loop runs, it would ring at the
   * next busy moment and cost a read.
   */
  private sleepUnlessReady(): boolean {
    this.ticksAwake = 0
    if (this.outOfDoorbell) this.rejoinDoorbell()
    this.watchNewSockets()
    const ownSignal = this.watchRefused || this.timerFreeCount < this.timerFree.length
    this.ring.notify(Notify.DOORBELL | (ownSignal ? Notify.CQ : 0))
    const n = this.ring.reap(0, 0)
    if (n === 0 && !this.stopped) {
      this.sleeping = true
      this.sleptAt = performance.now()
      return false
    }
    this.wakeWith(n)
    return true
  }

  private wakeWith(completions: number): void {
    this.sleeping = false
    this.ring.notify(0)
    this.unparked = completions
    if (this.sparsePasses === 0) this.armTick()
  }

  /** Lists a slot's new socket for the doorbell (watched from the next park on). */
  private listForWatch(slot: number): void {
    if (this.listedForWatch[slot]) return // listed already (for the socket it had before): its current one gets watched
    this.listedForWatch[slot] = 1
    this.unwatched[this.unwatchedCount++] = slot
  }

  private watchNewSockets(): void {
    let n = 0
    for (let i = 0; i < this.unwatchedCount; i++) {
      const slot = this.unwatched[i]!
      this.listedForWatch[slot] = 0
      if (this.fds[slot]! >= 0) this.watchFds[n++] = this.fds[slot]!
    }
    this.unwatchedCount = 0
    if (n > 0) this.watch(this.watchFds.subarray(0, n))
  }

  /** BUSY_SPELL_TICKS awake, and a tick for every SOCKETS_PER_SPELL_TICK connections held. */
  private busySpellLongEnough(): boolean {
    const connections = this.conns.length - this.freeCount
    return this.ticksAwake >= BUSY_SPELL_TICKS && this.ticksAwake * SOCKETS_PER_SPELL_TICK >= connections
  }

  /** A long busy spell: every socket leaves the doorbell's set; its connections are listed to be watched again. */
  private leaveDoorbell(): void {
    this.outOfDoorbell = true
    this.ring.unwatch(this.ownSockets())
    let n = 0
    for (let slot = 0; slot < this.fds.length; slot++) {
      if (this.fds[slot]! < 0) continue
      this.watchFds[n++] = this.fds[slot]!
      this.listForWatch(slot)
    }
    this.ring.unwatch(this.watchFds.subarray(0, n))
  }

  /** On the way to sleep after a busy spell: the listeners and UDP sockets rejoin (connections through watchNewSockets). */
  private rejoinDoorbell(): void {
    this.outOfDoorbell = false
    this.watch(this.ownSockets())
  }

  /** The worker's listening and UDP sockets. */
  private ownSockets(): Int32Array {
    return Int32Array.from([...this.listeners.filter((l) => l.open).map((l) => l.fd), ...this.udps.map((u) => u.fd)])
  }

  /** A socket the doorbell cannot watch still works, only its first bytes after a park wait for the ring's late signal: said once, never thrown. */
  private watch(fds: Int32Array): void {
    const rc = this.ring.watch(fds)
    if (rc === 0 || this.watchRefused) return
    this.watchRefused = true
    const limit = rc === -Errno.ENOSPC ? " (the kernel's fs.epoll.max_user_watches)" : ""
    console.error(`ringline: worker ${this.host.workerId}: the doorbell could not watch a socket: ${errnoName(rc)}${limit}; after an idle spell such sockets are answered up to ~16 ms late`)
  }

  /** Handles a batch of completions (the handlers they resume run after it). */
  private dispatch(n: number): void {
    const cq = this.ring.cqes
    for (let i = 0; i < n; i++) {
      const o = i * CQE.words
      const kind = cq[o + CQE.kind]!
      const slot = cq[o + CQE.slot]!
      const gen = cq[o + CQE.gen]! >>> 0
      const res = cq[o + CQE.res]!
      const flags = cq[o + CQE.flags]!
      const bid = cq[o + CQE.bid]!
      switch (kind) {
        case Kind.SEND:
          this.onSend(slot, gen, res)
          break
        case Kind.UDP_SEND:
          this.udpSend(slot, res)
          break
        case Kind.POLLOUT:
          this.onPollOut(slot, gen)
          break
        case Kind.LISTENER_CLOSE:
          this.onListenerCancelled(slot)
          break
        case Kind.TICK:
          this.tickFired = true
          break
        case Kind.CANCEL:
        case Kind.SHUTDOWN:
          break
        case KIND_OVERFLOW:
          this.counters[C.cqOverflow]! += cq[o + CQE.extra]!
          console.error(`ringline: worker ${this.host.workerId}: the kernel dropped ${cq[o + CQE.extra]} completions (CQ overflow)`)
          break
        default:
          this.dispatchResuming(kind, slot, gen, res, flags, bid)
      }
    }
  }

  /** Completions that hand something to handler code. */
  private dispatchResuming(kind: number, slot: number, gen: number, res: number, flags: number, bid: number): void {
    switch (kind) {
      case Kind.RECV:
        return this.onRecv(slot, gen, res, flags, bid)
      case Kind.ACCEPT:
        return this.onAccept(slot, res, flags)
      case Kind.CLOSE:
        return this.onClosed(slot, gen)
      case Kind.TIMER:
        return this.onTimer(slot, gen)
      case Kind.CONNECT:
        return this.onConnect(slot, gen, res)
      case Kind.UDP_RECV:
        return this.udps[slot]?.onRecv(res, flags, bid)
      case KIND_WAKE:
        return this.host.onNotify()
    }
  }

  // ── accept ─────────────────────────────────────────────────────────────

  private onAccept(index: number, res: number, flags: number): void {
    const listener = this.listeners[index]
    if (res >= 0) this.adopt(res)
    if (listener === undefined || !listener.open || flags & CQE_F_MORE) return
    if (res < 0 && res !== -Errno.ECANCELED) {
      console.error(`ringline: worker ${this.host.workerId}: accept failed: ${errnoName(res)}; retrying`)
      setTimeout(() => this.armAccept(index), 10)
      return
    }
    this.armAccept(index)
  }

  private armAccept(index: number): void {
    const listener = this.listeners[index]
    if (listener === undefined || !listener.open || !this.accepting) return
    this.ring.push(Opcode.ACCEPT_MULTI, Kind.ACCEPT, index, 0, listener.fd)
    this.kick()
  }

  /** Takes ownership of a connected socket fd; refuses (closes) it when the table is full. */
  adopt(fd: number): ConnCtx | null {
    const sym = this.ring.sym
    if (this.freeCount === 0) {
      sym.ringline_socket_close(fd)
      this.counters[C.connectionsRefused]!++
      return null
    }
    const slot = this.freeSlots[--this.freeCount]!
    this.fds[slot] = fd
    this.listForWatch(slot)
    const conn = this.openConn(slot)
    this.counters[C.connectionsAccepted]!++
    this.host.onConnection(conn)
    return conn
  }

  /** The socket on `slot` is connected: give it a ConnCtx and start receiving. */
  private openConn(slot: number): ConnCtx {
    const gen = this.gens[slot]!
    const fd = this.fds[slot]!
    this.state[slot] = RECV_ARMED
    const conn = new ConnCtx(this, slot, gen, this.nextConnId++)
    this.conns[slot] = conn
    this.ring.push(Opcode.RECV_MULTI, Kind.RECV, slot, gen, fd, TCP_BGID)
    this.kick()
    return conn
  }

  /** Gives a slot back without a ConnCtx ever having lived on it (failed connect). */
  private releaseSlot(slot: number): void {
    this.ring.sym.ringline_socket_close(this.fds[slot]!)
    this.fds[slot] = -1
    this.state[slot] = 0
    this.gens[slot] = (this.gens[slot]! + 1) >>> 0
    this.freeSlots[this.freeCount++] = slot
  }

  // ── connect ────────────────────────────────────────────────────────────

  connect(addr: string, options: ConnectOptions): Promise<ConnCtx> {
    const { timeoutMs = 0, signal } = options
    if (signal?.aborted) return Promise.reject(abortError(signal, `connect ${addr}`))
    if (this.destroying) return Promise.reject(new ConnectError("ECANCELED", addr, `connect ${addr}: the worker has shut down`))
    const sym = this.ring.sym
    let sa: Uint8Array
    try {
      sa = parseAddr(addr, sym)
    } catch (e) {
      return Promise.reject(new ConnectError("EINVAL", addr, (e as Error).message))
    }
    if (this.freeCount === 0) {
      return Promise.reject(new ConnectError("EMFILE", addr, `connect ${addr}: all ${this.conns.length} connection slots (Config.maxConnections) are in use`))
    }
    const fd = sym.ringline_socket_stream(sa, sa.length)
    if (fd < 0) return Promise.reject(new ConnectError(errnoName(fd), addr))
    // Accepted sockets inherit TCP_NODELAY from their listener; outbound ones get it here.
    if (this.cfg.tcpNodelay && !addr.startsWith("unix:")) sym.ringline_socket_nodelay(fd, 1)
    const slot = this.freeSlots[--this.freeCount]!
    const gen = this.gens[slot]!
    this.fds[slot] = fd
    this.listForWatch(slot)
    this.state[slot] = CONNECTING
    const w = this.ring.msgWordIndex(slot)
    this.ring.msgWords[w + MSG.iovCount] = 0
    this.ring.msgWords[w + MSG.nameLen] = sa.length
    this.ring.msgBytes.set(sa, slot * MSG.bytes + MSG.nameByte)
    this.ring.push(Opcode.CONNECT, Kind.CONNECT, slot, gen, fd, slot)
    this.kick()
    return new Promise<ConnCtx>((resolve, reject) => {
      const cancel = (failure: "ETIMEDOUT" | "ABORT") => {
        if (pending.failure !== null) return
        pending.failure = failure
        this.ring.push(Opcode.CANCEL, Kind.CANCEL, slot, gen, -1, Kind.CONNECT, slot, gen)
        this.kick()
      }
      const pending: PendingConnect = {
        addr, timeoutMs, resolve, reject, failure: null, signal,
        timer: timeoutMs > 0 ? setTimeout(() => cancel("ETIMEDOUT"), timeoutMs) : undefined,
        onAbort: () => cancel("ABORT"),
      }
      signal?.addEventListener("abort", pending.onAbort, { once: true })
      this.connecting.set(slot, pending)
    })
  }

  private onConnect(slot: number, gen: number, res: number): void {
    const p = this.connecting.get(slot)
    if (p === undefined || this.gens[slot] !== gen) return
    this.connecting.delete(slot)
    clearTimeout(p.timer)
    p.signal?.removeEventListener("abort", p.onAbort)
    if (res === 0 && p.failure === null) {
      const conn = this.openConn(slot)
      this.counters[C.connectionsConnected]!++
      return p.resolve(conn)
    }
    this.releaseSlot(slot)
    if (p.failure === "ABORT") p.reject(abortError(p.signal, `connect ${p.addr}`))
    else if (p.failure === "ETIMEDOUT") p.reject(new ConnectError("ETIMEDOUT", p.addr, `connect ETIMEDOUT ${p.addr} (no answer within ${p.timeoutMs} ms)`))
    else p.reject(new ConnectError(errnoName(res), p.addr))
  }

  private live(slot: number, gen: number): ConnCtx | undefined {
    const conn = this.conns[slot]
    return conn !== undefined && conn.gen === gen ? conn : undefined
  }

  // ── receive ────────────────────────────────────────────────────────────

  private onRecv(slot: number, gen: number, res: number, flags: number, bid: number): void {
    const conn = this.live(slot, gen)
    if (bid >= 0) {
      if (conn !== undefined && res > 0 && !(this.state[slot]! & CLOSING)) {
        this.counters[C.bytesReceived]! += res
        if (this.heldBuffers < this.holdBudget) {
          this.heldBuffers++
          this.bufferRefs[bid] = 1
          conn.deliver(this.recvRing.view(bid, res), bid) // lent: it comes back through lender.release
        } else {
          conn.deliver(this.recvRing.view(bid, res)) // over budget: copied during the call
          this.recvRing.giveBack(bid)
        }
      } else {
        this.recvRing.giveBack(bid)
      }
    }
    if (flags & CQE_F_MORE || conn === undefined) return
    // The multishot recv ended: decide whether it comes back.
    const st = (this.state[slot]! &= ~RECV_ARMED)
    if (res === 0) return conn.deliverEof()
    if (res === -Errno.ENOBUFS) {
      this.counters[C.recvEnobufsParks]!++
      this.state[slot]! |= RECV_PARKED
      this.parked.push(slot)
      return
    }
    if (res < 0 && res !== -Errno.ECANCELED) return conn.deliverEof(errnoName(res))
    if (!(st & (RECV_PAUSED | CLOSING))) this.armRecv(slot)
  }

  private armRecv(slot: number): void {
    const st = this.state[slot]!
    if (st & (RECV_ARMED | CLOSING)) return
    this.state[slot] = (st | RECV_ARMED) & ~RECV_PARKED
    this.ring.push(Opcode.RECV_MULTI, Kind.RECV, slot, this.gens[slot]!, this.fds[slot]!, TCP_BGID)
    this.kick()
  }

  /** Buffers went back to the kernel: connections that ran out get their recv again. */
  private rearmParked(): void {
    if (this.parked.length === 0) return
    const parked = this.parked
    this.parked = []
    for (const slot of parked) {
      const st = this.state[slot]!
      if (st & RECV_PARKED && !(st & RECV_PAUSED) && this.conns[slot] !== undefined) this.armRecv(slot)
    }
  }

  pauseRecv(conn: ConnCtx): void {
    const slot = conn.slot
    this.state[slot]! |= RECV_PAUSED
    this.counters[C.recvPauses]!++
    if (this.state[slot]! & RECV_ARMED) {
      this.ring.push(Opcode.CANCEL, Kind.CANCEL, slot, conn.gen, -1, Kind.RECV, slot, conn.gen)
      this.kick()
    }
  }

  resumeRecv(conn: ConnCtx): void {
    const slot = conn.slot
    if (this.live(slot, conn.gen) === undefined) return
    this.state[slot]! &= ~RECV_PAUSED
    this.armRecv(slot)
  }

  // ── send ───────────────────────────────────────────────────────────────

  transmit(conn: ConnCtx): void {
    const slot = conn.slot
    const st = this.state[slot]!
    if (st & (SEND_DIRTY | SEND_INFLIGHT | POLLOUT_ARMED) || this.live(slot, conn.gen) === undefined) return
    this.state[slot] = st | SEND_DIRTY
    this.dirty.push(slot)
    this.kick()
  }

  /** One send per dirty connection covering as much of its queue as one sendmsg takes. */
  private flushSends(): void {
    const dirty = this.dirty
    if (dirty.length === 0) return
    const ring = this.ring
    const words = ring.msgWords
    for (let d = 0; d < dirty.length; d++) {
      const slot = dirty[d]!
      this.state[slot]! &= ~SEND_DIRTY
      const conn = this.conns[slot]
      if (conn === undefined) continue
      const q = conn.sendQueue
      const count = Math.min(q.segmentCount, MSG.maxIov)
      if (count === 0) continue
      q.inFlight = count
      this.state[slot]! |= SEND_INFLIGHT
      if (count === 1) {
        ring.push(Opcode.SEND, Kind.SEND, slot, conn.gen, this.fds[slot]!, q.segmentOffset(0), q.segmentLength(0))
        continue
      }
      const w = ring.msgWordIndex(slot)
      words[w + MSG.iovCount] = count
      words[w + MSG.nameLen] = 0
      for (let i = 0; i < count; i++) {
        words[w + MSG.iovWord + 2 * i] = q.segmentOffset(i)
        words[w + MSG.iovWord + 2 * i + 1] = q.segmentLength(i)
      }
      ring.push(Opcode.SENDMSG, Kind.SEND, slot, conn.gen, this.fds[slot]!, slot)
    }
    dirty.length = 0
  }

  private onSend(slot: number, gen: number, res: number): void {
    const conn = this.live(slot, gen)
    if (conn === undefined || !(this.state[slot]! & SEND_INFLIGHT)) return
    this.state[slot]! &= ~SEND_INFLIGHT
    const q = conn.sendQueue
    q.inFlight = 0
    if (res > 0) {
      this.counters[C.bytesSent]! += res
      q.consume(res)
    } else if (res === -Errno.EAGAIN) {
      // Kernel buffer full: wait for POLLOUT, then resend the same bytes.
      this.counters[C.sendEagain]!++
      this.state[slot]! |= POLLOUT_ARMED
      this.ring.push(Opcode.POLL_ADD, Kind.POLLOUT, slot, gen, this.fds[slot]!, POLLOUT)
      return
    } else if (res < 0) {
      conn.failSends(errnoName(res))
    }
    this.afterSend(conn)
  }

  private onPollOut(slot: number, gen: number): void {
    const conn = this.live(slot, gen)
    if (conn === undefined) return
    this.state[slot]! &= ~POLLOUT_ARMED
    this.afterSend(conn)
  }

  /** The send path is idle: send more, or carry out a deferred shutdown/close. */
  private afterSend(conn: ConnCtx): void {
    const slot = conn.slot
    if (conn.sendQueue.segmentCount > 0) return this.transmit(conn)
    const st = this.state[slot]!
    if (st & SHUTWR_PENDING) {
      this.state[slot] = st & ~SHUTWR_PENDING
      this.ring.push(Opcode.SHUTDOWN, Kind.SHUTDOWN, slot, conn.gen, this.fds[slot]!, SHUT_WR)
    }
    if (st & CLOSE_PENDING) this.closeNow(slot)
  }

  private sendIdle(slot: number): boolean {
    return !(this.state[slot]! & (SEND_INFLIGHT | SEND_DIRTY | POLLOUT_ARMED)) && this.conns[slot]!.sendQueue.segmentCount === 0
  }

  shutdownWrite(conn: ConnCtx): void {
    const slot = conn.slot
    if (this.live(slot, conn.gen) === undefined) return
    if (this.sendIdle(slot)) {
      this.ring.push(Opcode.SHUTDOWN, Kind.SHUTDOWN, slot, conn.gen, this.fds[slot]!, SHUT_WR)
      this.kick()
    } else {
      this.state[slot]! |= SHUTWR_PENDING
    }
  }

  // ── close ──────────────────────────────────────────────────────────────

  close(conn: ConnCtx, abort: boolean): void {
    const slot = conn.slot
    if (this.live(slot, conn.gen) === undefined || this.state[slot]! & CLOSING) return
    if (abort || this.sendIdle(slot)) this.closeNow(slot)
    else this.state[slot]! |= CLOSE_PENDING
  }

  /**
   * Closes the socket through the ring. With nothing in flight or waiting to be
   * sent on it (the usual end: EOF seen, sends drained), one quiet CLOSE op: it
   * goes in after every op already queued for the fd, and the slot is released
   * now rather than on its completion (there is none on success), which saves a
   * ring round trip per connection. Otherwise everything on the fd is cancelled
   * first and the fd closed when the cancel completes.
   */
  private closeNow(slot: number): void {
    const conn = this.conns[slot]!
    const st = this.state[slot]!
    conn.failSends("ENOTCONN")
    // SEND_DIRTY: the slot is still in the dirty list; released now, a new connection on it would be listed twice.
    if (!(st & (RECV_ARMED | SEND_INFLIGHT | SEND_DIRTY | POLLOUT_ARMED | CONNECTING))) {
      this.state[slot] = CLOSING | RING_CLOSES_FD
      this.ring.push(Opcode.CLOSE, Kind.CLOSE, slot, conn.gen, this.fds[slot]!, CLOSE_QUIET)
      this.kick()
      // After the caller's turn, as a completion would be: onClose never runs inside conn.close().
      queueMicrotask(() => this.onClosed(slot, conn.gen))
      return
    }
    this.state[slot] = CLOSING
    this.ring.push(Opcode.CANCEL_FD, Kind.CLOSE, slot, conn.gen, this.fds[slot]!)
    this.kick()
  }

  private onClosed(slot: number, gen: number): void {
    const conn = this.live(slot, gen)
    if (conn === undefined) return
    if (!(this.state[slot]! & RING_CLOSES_FD)) this.ring.sym.ringline_socket_close(this.fds[slot]!)
    conn.detach()
    this.conns[slot] = undefined
    this.fds[slot] = -1
    this.state[slot] = 0
    this.gens[slot] = (gen + 1) >>> 0
    this.freeSlots[this.freeCount++] = slot
    this.counters[C.connectionsClosed]!++
    conn.deliverEof()
    this.host.onConnectionClosed(conn)
  }

  address(conn: ConnCtx, peer: boolean): string {
    const fd = this.live(conn.slot, conn.gen) ? this.fds[conn.slot]! : -1
    return fd < 0 ? "" : this.socketName(fd, peer)
  }

  liveConnections(): ConnCtx[] {
    return this.conns.filter((c): c is ConnCtx => c !== undefined)
  }

  udpSockets(): UdpCtx[] {
    return this.udps.map((u) => u.ctx)
  }

  stopAccepting(): void {
    this.accepting = false
    this.listeners.forEach((l, index) => {
      if (!l.open) return
      l.open = false
      this.ring.push(Opcode.CANCEL_FD, Kind.LISTENER_CLOSE, index, 0, l.fd)
    })
    this.kick()
  }

  /** The listener's accept is cancelled: close it now, so new connections are refused. */
  private onListenerCancelled(index: number): void {
    const l = this.listeners[index]
    if (l === undefined || l.fd < 0) return
    this.ring.sym.ringline_socket_close(l.fd)
    l.fd = -1
  }

  // ── timers ─────────────────────────────────────────────────────────────

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.destroyed) return Promise.reject(new ShutdownError("sleep"))
    if (this.timerFreeCount === 0) {
      this.counters[C.timerExhausted]!++
      return Promise.reject(new TimerExhaustedError(this.cfg.timerSlots))
    }
    const slot = this.timerFree[--this.timerFreeCount]!
    const gen = this.timerGen[slot]!
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        // The slot is free at once: the kernel copied the timespec at submission, and the
        // cancelled timeout's completion carries the old generation, so it is ignored.
        this.releaseTimer(slot)
        this.ring.push(Opcode.CANCEL, Kind.CANCEL, slot, gen, -1, Kind.TIMER, slot, gen)
        this.kick()
        reject(signal!.reason)
      }
      signal?.addEventListener("abort", onAbort, { once: true })
      this.timerResolve[slot] = () => {
        signal?.removeEventListener("abort", onAbort)
        resolve()
      }
      this.timerReject[slot] = (e) => {
        signal?.removeEventListener("abort", onAbort)
        reject(e)
      }
      this.ring.push(Opcode.TIMEOUT, Kind.TIMER, slot, gen, -1, slot, Math.min(Math.max(0, Math.ceil(ms)), MAX_TIMER_MS))
      this.kick()
    })
  }

  private onTimer(slot: number, gen: number): void {
    if (this.timerGen[slot] !== gen) return
    const resolve = this.timerResolve[slot]
    this.releaseTimer(slot)
    resolve?.()
  }

  private releaseTimer(slot: number): void {
    this.timerGen[slot] = (this.timerGen[slot]! + 1) >>> 0
    this.timerResolve[slot] = undefined
    this.timerReject[slot] = undefined
    this.timerFree[this.timerFreeCount++] = slot
  }

  /** A datagram send completed: its slot (shared by the worker's sockets) is free again. */
  private udpSend(slot: number, res: number): void {
    this.udpSlots.release(slot)
    this.counters[res >= 0 ? C.datagramsSent : C.udpSendErrors]!++
  }

  // ── cross-thread wake and teardown ─────────────────────────────────────

  wake(): void {
    this.ring.sym.ringline_ring_wake(this.ring.handle)
  }

  async destroy(): Promise<void> {
    this.destroying = true
    for (const [slot, p] of [...this.connecting]) {
      this.connecting.delete(slot)
      clearTimeout(p.timer)
      p.signal?.removeEventListener("abort", p.onAbort)
      this.releaseSlot(slot)
      p.reject(new ConnectError("ECANCELED", p.addr, `connect ${p.addr}: the worker shut down`))
    }
    for (let slot = 0; slot < this.conns.length; slot++) {
      if (this.conns[slot] !== undefined && !(this.state[slot]! & CLOSING)) this.closeNow(slot)
    }
    // Let the closes complete (bounded: the ring answers cancels at once).
    for (let i = 0; i < 100 && (this.freeCount < this.conns.length || this.listeners.some((l) => l.fd >= 0)); i++) await hop()
    this.stopped = true
    clearInterval(this.watchdog ?? undefined)
    this.kick()
    await this.loopDone
    ;(await this.doorbell?.catch(() => null))?.terminate()
    // Tearing the ring down cancels what is still in flight; then the fds it no longer holds close.
    // Nothing may name its memory afterwards: sockets refuse sends, pending sleeps reject.
    this.destroyed = true
    for (const u of this.udps) u.close()
    for (let slot = 0; slot < this.timerReject.length; slot++) {
      const reject = this.timerReject[slot]
      if (reject === undefined) continue
      this.releaseTimer(slot)
      reject(new ShutdownError("sleep"))
    }
    this.ring.reap(0, 0) // submits quiet CLOSEs queued since the loop's last pass: their slots are free already
    this.ring.destroy()
    const close = (fd: number) => fd >= 0 && this.ring.sym.ringline_socket_close(fd)
    for (const l of this.listeners) close(l.fd)
    for (const u of this.udps) close(u.fd)
    // (A CLOSE op the ring already took may have closed its fd: never close that number twice.)
    for (let slot = 0; slot < this.fds.length; slot++) if (!(this.state[slot]! & RING_CLOSES_FD)) close(this.fds[slot]!)
  }
}

