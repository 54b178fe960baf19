// WorkerHost: one worker — its handler instance, its driver, its tasks — and
// the graceful shutdown that drains them. Runs inside a Bun Worker, or inline
// on the launching thread.
import type { BackendName, Config } from "./config"
import type { ConnCtx, DataParser } from "./conn"
import type { ConnectOptions, Driver, DriverHost } from "./driver"
import type { AsyncEventHandler, HandlerClass, WorkerCtx } from "./handler"
import { C, snapshot, workerCounters, type MetricsSnapshot } from "./metrics"
import { setThreadRuntime, threadRuntime, type ThreadRuntime } from "./runtime"
import { adoptOutbound, startTask, TaskTable, type TaskHandle } from "./tasks"
import type { UdpCtx } from "./udp"

export interface WorkerInit {
  workerId: number
  config: Config
  backend: BackendName
  tcp: string[]
  udp: string[]
  counters: SharedArrayBuffer
  /** RinglineBuilder.handlerData(): the second argument of createForWorker. */
  handlerData: unknown
  /** CPU to pin this worker's thread to (Config.worker.pinToCore), or null. */
  pinCpu: number | null
}

export interface WorkerReady {
  tcp: string[]
  udp: string[]
}

/** What a worker says when it has stopped. */
export interface WorkerReport {
  workerId: number
  /** Connections still open at the drain deadline, closed without finishing. */
  abortedConnections: number
  /** Bytes that were queued but never sent because the deadline passed. */
  unsentBytes: number
}

async function createDriver(backend: BackendName, host: DriverHost): Promise<Driver> {
  if (backend === "io_uring") {
    const { UringDriver } = await import("./uring/driver")
    return new UringDriver(host)
  }
  const { PortableDriver } = await import("./portable/driver")
  return new PortableDriver(host)
}

export class WorkerHost implements DriverHost, ThreadRuntime, WorkerCtx {
  readonly workerId: number
  readonly config: Config
  readonly counters: Float64Array
  readonly pinCpu: number | null
  driver!: Driver
  private handler!: AsyncEventHandler
  /** Running tasks: those shutdown waits for (connections, onStart), and UDP readers (they loop forever, so apart). */
  private readonly liveTasks = { handler: 0, udp: 0 }
  /** Ends shutdown's last wait once no task of either kind is running. */
  private allTasksSettled: (() => void) | null = null
  private readonly standalone: TaskTable
  private idleSweep: ReturnType<typeof setInterval> | null = null
  private stopping = false
  private stopped: Promise<WorkerReport> | null = null
  /** Called when the worker decides by itself to stop (requestShutdown). */
  onSelfShutdown: (() => void) | null = null

  constructor(
    private readonly init: WorkerInit,
    private readonly handlerClass: HandlerClass,
  ) {
    this.workerId = init.workerId
    this.config = init.config
    this.counters = workerCounters(init.counters, init.workerId)
    this.pinCpu = init.pinCpu
    this.standalone = new TaskTable(init.config.standaloneTaskCapacity)
  }

  async start(): Promise<WorkerReady> {
    if (threadRuntime() !== null) throw new Error("a ringline worker is already running on this thread (inline launch runs one per thread)")
    this.handler = this.handlerClass.createForWorker(this.workerId, this.init.handlerData)
    this.checkConnectionHandler()
    this.driver = await createDriver(this.init.backend, this)
    setThreadRuntime(this)
    try {
      const tcp: string[] = []
      for (const addr of this.init.tcp) tcp.push(await this.driver.bindTcp(addr))
      const udp: string[] = []
      for (const addr of this.init.udp) udp.push(await this.driver.bindUdp(addr))
      this.driver.start()
      if (this.config.idleTimeoutMs > 0) this.idleSweep = setInterval(() => this.sweepIdle(), Math.max(1, this.config.idleTimeoutMs / 2))
      if (this.handler.onStart) this.track(() => this.handler.onStart!(), () => "onStart", "handler")
      return { tcp, udp }
    } catch (e) {
      setThreadRuntime(null)
      await this.driver.destroy().catch(() => undefined)
      throw e
    }
  }

  /** Accepted connections need exactly one of onAccept and onData. */
  private checkConnectionHandler(): void {
    const { onAccept, onData } = this.handler
    const name = (this.handlerClass as { name?: string }).name || "the handler class"
    if (onAccept !== undefined && onData !== undefined) {
      throw new TypeError(`${name} defines both onAccept and onData: a connection is served by one of them`)
    }
    if (onAccept === undefined && onData === undefined && this.init.tcp.length > 0) {
      throw new TypeError(`${name} defines neither onAccept nor onData, and a TCP address is bound: its connections need one`)
    }
  }

  /** Runs a task, counts it for shutdown, and reports (once) if it fails; then `after`. */
  private track(fn: () => unknown, what: () => string, kind: "handler" | "udp", after?: () => void): void {
    this.liveTasks[kind]++
    const settled = () => {
      after?.()
      this.taskEnded(kind)
    }
    startTask(fn, settled, (e: unknown) => {
      // (UDP sockets close under their readers at shutdown: not a failure.)
      if (!(this.stopping && kind === "udp")) this.reportFailure(what(), e)
      settled()
    })
  }

  private taskEnded(kind: "handler" | "udp"): void {
    this.liveTasks[kind]--
    if (this.liveTasks.handler + this.liveTasks.udp === 0) this.allTasksSettled?.()
  }

  private reportFailure(what: string, e: unknown): void {
    this.counters[C.handlerErrors]!++
    console.error(`ringline: worker ${this.workerId}: ${what} failed:`, e)
  }

  onConnection(conn: ConnCtx): void {
    if (this.handler.onData !== undefined) return this.serveData(conn)
    this.track(() => this.handler.onAccept!(conn), () => `handler for connection ${conn.id}`, "handler", () => conn.close())
  }

  /**
   * AsyncEventHandler.onData: the connection's bytes go to the handler's parser
   * from the receive path (ConnCtx.eachData), with no task or promise unless it
   * pauses for send room. It counts as a running handler until it ends.
   */
  private serveData(conn: ConnCtx): void {
    this.liveTasks.handler++
    const parse: DataParser = (data, eof) => this.handler.onData!(conn, data, eof)
    const ended = (e: Error | null) => {
      if (e !== null) this.reportFailure(`handler for connection ${conn.id}`, e)
      conn.close()
      this.taskEnded("handler")
    }
    const settled = (paused: boolean) => {
      if (!paused) return ended(null)
      if (conn.sendCapacity > 0) {
        return ended(new Error(`onData returned ParseResult.pause() while connection ${conn.id} can send (sendCapacity ${conn.sendCapacity}): pause() waits for send room`))
      }
      let room: Promise<void>
      try {
        room = conn.waitForSendRoom()
      } catch (e) {
        return ended(e as Error) // the connection can no longer send
      }
      room.then(() => conn.eachData(parse, settled, ended), ended)
    }
    conn.eachData(parse, settled, ended)
  }

  /** Closes connections without traffic for Config.idleTimeoutMs (swept every half period, so 1–1.5 periods). */
  private sweepIdle(): void {
    for (const conn of this.driver.liveConnections()) {
      if (++conn.idleTicks < 3 || conn.isClosed) continue
      this.counters[C.idleClosed]!++
      conn.close()
    }
  }

  spawn<T>(fn: (signal: AbortSignal) => Promise<T> | T): TaskHandle<T> {
    return this.standalone.spawn(fn)
  }

  async connect(addr: string, options: ConnectOptions): Promise<ConnCtx> {
    const conn = await this.driver.connect(addr, options)
    adoptOutbound(conn)
    return conn
  }

  onConnectionClosed(conn: ConnCtx): void {
    try {
      this.handler.onClose?.(conn)
    } catch (e) {
      console.error(`ringline: worker ${this.workerId}: onClose for connection ${conn.id} failed:`, e)
    }
  }

  onUdpSocket(udp: UdpCtx): void {
    if (this.handler.onUdpBind) this.track(() => this.handler.onUdpBind!(udp), () => `UDP handler on ${udp.localAddr}`, "udp")
  }

  onTick(): void {
    this.handler.onTick?.(this)
  }

  get wantsTicks(): boolean {
    return this.handler.onTick !== undefined
  }

  onNotify(): void {
    this.handler.onNotify?.(this)
  }

  requestShutdown(): void {
    void this.shutdown()
    this.onSelfShutdown?.()
  }

  metrics(): MetricsSnapshot {
    return snapshot(this.init.counters, [this.workerId])
  }

  /**
   * Graceful stop: no new connections, handlers run to completion and queued
   * sends drain until Config.shutdownTimeoutMs; what is left then is closed
   * and reported. Idempotent.
   */
  shutdown(): Promise<WorkerReport> {
    return (this.stopped ??= this.drain())
  }

  private async drain(): Promise<WorkerReport> {
    this.stopping = true
    if (this.idleSweep !== null) clearInterval(this.idleSweep)
    const driver = this.driver
    driver.stopAccepting()
    const deadline = Date.now() + this.config.shutdownTimeoutMs
    // Connection handlers finish when their peers close; UDP readers never do, so they don't hold shutdown.
    // Handlers finish, and what they queued drains, until the deadline.
    const busy = () => this.liveTasks.handler > 0 || this.standalone.size > 0 || driver.liveConnections().some((c) => c.sendQueue.queuedBytes > 0)
    while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    if (this.standalone.size > 0) this.standalone.abortAll(new Error("worker shutdown deadline passed"))
    let abortedConnections = 0
    let unsentBytes = 0
    for (const conn of driver.liveConnections()) {
      if (conn.isClosed && conn.sendQueue.queuedBytes === 0) continue
      abortedConnections++
      unsentBytes += conn.abort("ETIMEDOUT")
    }
    if (abortedConnections > 0) {
      console.error(`ringline: worker ${this.workerId}: shutdown deadline (${this.config.shutdownTimeoutMs} ms) closed ${abortedConnections} connection(s) with ${unsentBytes} byte(s) unsent`)
    }
    await driver.destroy()
    for (const u of driver.udpSockets()) u.shutdown()
    if (this.liveTasks.handler + this.liveTasks.udp > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100)
        this.allTasksSettled = () => (clearTimeout(timer), resolve())
      })
    }
    setThreadRuntime(null)
    return { workerId: this.workerId, abortedConnections, unsentBytes }
  }
}
