// RinglineBuilder and Server: the main-thread side. launch() validates the
// Config, picks the backend, starts the workers (worker 0 first so port 0
// resolves once and the others join the same SO_REUSEPORT group), and
// resolves only when every worker listens — or tears them all down.
import { availableParallelism } from "node:os"
import { pathToFileURL } from "node:url"
import { chooseBackend } from "./backend"
import { Config, validateConfig, type BackendName } from "./config"
import type { HandlerClass } from "./handler"
import { checkHandlerClass } from "./handler_module"
import { WorkerHost, type WorkerInit, type WorkerReady, type WorkerReport } from "./host"
import { allocateCounters, renderOpenMetrics, snapshot, type MetricsSnapshot } from "./metrics"
import type { FromWorker, ToWorker } from "./worker"
import { deserializeError } from "./wire"

/** A handler module (URL or path; default export), a [module, exportName] pair, or the class itself (inline). */
export type HandlerSpec = string | URL | [string | URL, string] | HandlerClass

let backendNoticeShown = false

/** One running worker. */
export interface WorkerHandle {
  readonly workerId: number
  /** Resolves when the worker has stopped. */
  join(): Promise<WorkerReport>
}

/** Graceful stop of every worker; idempotent. */
export class ShutdownHandle {
  constructor(private readonly stopAll: () => void) {}
  shutdown(): void {
    this.stopAll()
  }
}

/** Wakes one worker from another thread: its handler's onNotify runs. */
export interface WakeHandle {
  wake(): void
}

interface WorkerLink {
  id: number
  send(msg: ToWorker): void
  stop(): void
  joined: Promise<WorkerReport>
  wake(): void
}

function cloneConfig(cfg: Config): Config {
  return Object.assign(new Config(), structuredClone({ ...cfg }))
}

function handlerLocation(spec: Exclude<HandlerSpec, HandlerClass>): { url: string; exportName: string } {
  const [where, exportName] = Array.isArray(spec) ? spec : [spec, "default"]
  const url = where instanceof URL ? where.href : /^[a-z]+:/i.test(where) ? where : pathToFileURL(where).href
  return { url, exportName }
}

export class Server implements AsyncDisposable {
  readonly shutdown: ShutdownHandle
  /** First bound TCP address ("127.0.0.1:41234"), or null. */
  readonly tcpAddr: string | null
  readonly tcpAddrs: string[]
  readonly udpAddr: string | null
  readonly udpAddrs: string[]

  constructor(
    readonly backend: BackendName,
    private readonly links: WorkerLink[],
    ready: WorkerReady,
    private readonly counters: SharedArrayBuffer,
  ) {
    this.tcpAddrs = ready.tcp
    this.udpAddrs = ready.udp
    this.tcpAddr = ready.tcp[0] ?? null
    this.udpAddr = ready.udp[0] ?? null
    let stopping = false
    this.shutdown = new ShutdownHandle(() => {
      if (stopping) return
      stopping = true
      for (const l of links) l.stop()
    })
  }

  get handles(): WorkerHandle[] {
    return this.links.map((l) => ({ workerId: l.id, join: () => l.joined }))
  }

  wakeHandle(workerId: number): WakeHandle {
    const link = this.links[workerId]
    if (link === undefined) throw new RangeError(`no worker ${workerId} (there are ${this.links.length})`)
    return { wake: () => link.wake() }
  }

  /** Counters summed over every worker. */
  metrics(): MetricsSnapshot {
    return snapshot(this.counters, this.links.map((l) => l.id))
  }

  metricsText(): string {
    return renderOpenMetrics(this.metrics())
  }

  /** Resolves once SIGINT or SIGTERM arrived and every worker has shut down gracefully. */
  async waitOnSignal(): Promise<WorkerReport[]> {
    await new Promise<void>((resolve) => {
      const on = () => {
        process.off("SIGINT", on)
        process.off("SIGTERM", on)
        resolve()
      }
      process.on("SIGINT", on)
      process.on("SIGTERM", on)
    })
    return this.stop()
  }

  /** Shuts down and waits for every worker. */
  async stop(): Promise<WorkerReport[]> {
    this.shutdown.shutdown()
    return Promise.all(this.links.map((l) => l.joined))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

export class RinglineBuilder {
  private readonly tcp: string[] = []
  private readonly udp: string[] = []
  private data: unknown = undefined

  constructor(private readonly config: Config = Config.default()) {}

  /** Listens for TCP (or "unix:/path") on addr in every worker; repeatable. Port 0: the kernel picks. */
  bind(addr: string): this {
    this.tcp.push(addr)
    return this
  }

  /** Binds a UDP socket on addr in every worker (SO_REUSEPORT); repeatable. */
  bindUdp(addr: string): this {
    this.udp.push(addr)
    return this
  }

  /** Data every worker passes to createForWorker(workerId, data) (structured-cloned: plain data only). */
  handlerData(data: unknown): this {
    this.data = data
    return this
  }

  async launch(handler: HandlerSpec, exportName?: string): Promise<Server> {
    const cfg = cloneConfig(this.config)
    validateConfig(cfg)
    const inline = typeof handler === "function"
    if (inline) checkHandlerClass(handler, `launch: ${(handler as { name?: string }).name || "the class given"}`)
    const decision = await chooseBackend(cfg.backend)
    if (!cfg.quiet && !backendNoticeShown) {
      backendNoticeShown = true
      console.error(`ringline: using the ${decision.backend} backend (${decision.reason})`)
    }
    const threads = inline ? 1 : cfg.worker.threads || availableParallelism()
    const counters = allocateCounters(threads)
    const start = (id: number, tcp: string[], udp: string[]): Promise<[WorkerLink, WorkerReady]> => {
      // Inline runs on the caller's thread, which is not ours to pin.
      const pinCpu = cfg.worker.pinToCore && !inline ? (cfg.worker.coreOffset + id) % availableParallelism() : null
      const init: WorkerInit = { workerId: id, config: cfg, backend: decision.backend, tcp, udp, counters, handlerData: this.data, pinCpu }
      if (inline) return startInline(init, handler)
      const { url, exportName: name } = handlerLocation(exportName ? [handler as string | URL, exportName] : (handler as Exclude<HandlerSpec, HandlerClass>))
      return startWorker(init, url, name)
    }
    const links: WorkerLink[] = []
    try {
      const [first, ready] = await start(0, this.tcp, this.udp)
      links.push(first)
      // Unix sockets have no SO_REUSEPORT, nor has Bun.udpSocket: worker 0 alone binds those.
      const sharedTcp = ready.tcp.filter((a) => !a.startsWith("unix:"))
      const sharedUdp = decision.backend === "io_uring" ? ready.udp : []
      const rest = await Promise.allSettled(Array.from({ length: threads - 1 }, (_, i) => start(i + 1, sharedTcp, sharedUdp)))
      for (const r of rest) if (r.status === "fulfilled") links.push(r.value[0])
      const failed = rest.find((r) => r.status === "rejected")
      if (failed) throw (failed as PromiseRejectedResult).reason
      return new Server(decision.backend, links, ready, counters)
    } catch (e) {
      for (const l of links) l.stop()
      await Promise.allSettled(links.map((l) => l.joined))
      throw e
    }
  }
}

async function startInline(init: WorkerInit, handlerClass: HandlerClass): Promise<[WorkerLink, WorkerReady]> {
  const host = new WorkerHost(init, handlerClass)
  const ready = await host.start()
  let joined: Promise<WorkerReport> | null = null
  const stop = () => (joined ??= host.shutdown())
  const link: WorkerLink = {
    id: init.workerId,
    send: () => undefined,
    stop: () => void stop(),
    get joined() {
      return stop()
    },
    wake: () => host.driver.wake(),
  }
  host.onSelfShutdown = () => link.stop()
  return [link, ready]
}

function startWorker(init: WorkerInit, handlerUrl: string, exportName: string): Promise<[WorkerLink, WorkerReady]> {
  const worker = new Worker(new URL("./worker.ts", import.meta.url).href)
  let resolveJoined!: (r: WorkerReport) => void
  let rejectJoined!: (e: Error) => void
  const joined = new Promise<WorkerReport>((res, rej) => {
    resolveJoined = res
    rejectJoined = rej
  })
  joined.catch(() => undefined)
  let stopSent = false
  const link: WorkerLink = {
    id: init.workerId,
    send: (msg) => worker.postMessage(msg),
    stop: () => {
      if (stopSent) return
      stopSent = true
      worker.postMessage({ type: "shutdown" } satisfies ToWorker)
    },
    joined,
    wake: () => worker.postMessage({ type: "notify" } satisfies ToWorker),
  }
  return new Promise((resolve, reject) => {
    let started = false
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const msg = event.data
      if (msg.type === "ready") {
        started = true
        resolve([link, { tcp: msg.tcp, udp: msg.udp }])
      } else if (msg.type === "error") {
        const err = deserializeError(msg.error)
        worker.terminate()
        rejectJoined(err)
        reject(err)
      } else if (msg.type === "self-shutdown") {
        link.stop() // the worker stopped itself (requestShutdown): collect its report
      } else if (msg.type === "exited") {
        worker.terminate()
        resolveJoined(msg.report)
      }
    }
    worker.onerror = (event) => {
      const err = new Error(`ringline worker ${init.workerId} crashed: ${event.message}`)
      if (started) console.error(`ringline: ${err.message}`) // nobody awaits launch any more: say it
      worker.terminate()
      rejectJoined(err)
      if (!started) reject(err)
    }
    worker.postMessage({ type: "init", init, handlerUrl, exportName } satisfies ToWorker)
  })
}
