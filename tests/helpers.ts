// Shared test helpers: the seed's test config, launching fixtures, and
// node:net clients that fail (not hang) when something is wrong.
import { expect } from "bun:test"
import net from "node:net"
import { availableParallelism } from "node:os"
import { readdirSync } from "node:fs"
import { chooseBackend } from "../src/backend"
import { Config, RinglineBuilder, type HandlerSpec, type Server } from "../src/index"

/** The backend this run of the suite gets (RINGLINE_BACKEND, or what "auto" finds). */
export const backendUnderTest = (await chooseBackend("auto").catch(() => ({ backend: "portable" as const }))).backend

/** The seed's test_config(), plus quiet output and a short shutdown deadline. */
export function testConfig(mutate?: (c: Config) => void): Config {
  const cfg = Config.default()
  cfg.worker.threads = 1
  cfg.worker.pinToCore = false
  cfg.sqEntries = 2048
  cfg.recvBuffer.ringSize = 512
  cfg.recvBuffer.bufferSize = 16 * 1024
  cfg.maxConnections = 64
  cfg.sendCopyCount = 2048
  cfg.standaloneTaskCapacity = 32
  cfg.quiet = true
  cfg.shutdownTimeoutMs = 2000
  mutate?.(cfg)
  return cfg
}

export const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url)

export async function launch(handler: HandlerSpec, mutate?: (c: Config) => void, bind = "127.0.0.1:0"): Promise<Server> {
  return new RinglineBuilder(testConfig(mutate)).bind(bind).launch(handler)
}

/** The baseline: a plain Bun echo server in its own Worker thread (as the seed's std::net thread). */
export async function baselineServer(kind: "tcp" | "udp"): Promise<{ addr: string; stop: () => void }> {
  const worker = new Worker(new URL("./fixtures/baseline_worker.ts", import.meta.url).href)
  const port = await new Promise<number>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ port: number }>) => resolve(e.data.port)
    worker.onerror = (e) => reject(new Error(e.message))
    worker.postMessage({ kind })
  })
  return { addr: `127.0.0.1:${port}`, stop: () => worker.terminate() }
}

/** Runs `fn` with a baseline echo server of `kind` up (fn gets its address), and stops it however fn ends. */
export async function withBaseline<T>(kind: "tcp" | "udp", fn: (addr: string) => Promise<T>): Promise<T> {
  const base = await baselineServer(kind)
  try {
    return await fn(base.addr)
  } finally {
    base.stop()
  }
}

/**
 * How soon ringline answers after `silenceMs` of silence, and how soon the baseline
 * server does after the same silence, alternated `count` times (each pair after
 * `before`, a busy spell say): the median of each. A VM's idle vCPUs can add
 * milliseconds to any wake-up after a silence, a plain Bun server's too (Bun.listen's
 * round trip after 200 ms: 0.74 ms median, 2.7 ms at worst, against 0.02 after 2 ms:
 * `bun bench/lull.ts 2,200 Bun.listen`), so the tests bound ringline by the
 * baseline plus WAKE_SLACK_MS (expectNearBaseline); the late wake-ups they guard against
 * (a parked worker hearing of a socket only through a DEFER_TASKRUN ring's eventfd,
 * ~16 ms, or not at all) are ringline's alone.
 */
export async function afterSilences(silenceMs: number, count: number, trip: () => Promise<number>, baselineTrip: () => Promise<number>, before?: () => Promise<void>): Promise<{ ringline: number; baseline: number }> {
  const ringline: number[] = []
  const baseline: number[] = []
  for (let i = 0; i < count; i++) {
    await before?.()
    await Bun.sleep(silenceMs)
    ringline.push(await trip())
    await Bun.sleep(silenceMs)
    baseline.push(await baselineTrip())
  }
  return { ringline: median(ringline), baseline: median(baseline) }
}

/** How much later than the baseline ringline may answer after a silence (median, ms). */
const WAKE_SLACK_MS = 5

/**
 * afterSilences' medians: ringline answered within WAKE_SLACK_MS of the baseline, and
 * every wake-up came from the doorbell (an io_uring worker's watchdog, which recovers
 * a missed one, found none: the median alone would hide one late answer).
 */
export function expectNearBaseline(m: { ringline: number; baseline: number }, server: Server): void {
  expect(m.ringline).toBeLessThan(m.baseline + WAKE_SLACK_MS)
  expect(server.metrics().missedWakeups).toBe(0)
}

/** The middle value (upper middle for an even count); sorts `xs` in place. */
export function median(xs: number[]): number {
  return xs.sort((a, b) => a - b)[xs.length >> 1]!
}

/** A payload whose byte i is (i + offset) & 0xff. */
export function pattern(n: number, offset = 0): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i + offset) & 0xff
  return b
}

/** A connected client that collects everything it receives. */
export class Client {
  private chunks: Buffer[] = []
  received = 0
  ended = false
  closed = false
  private waiters: Array<() => void> = []

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d: Buffer) => {
      this.chunks.push(d)
      this.received += d.length
      this.notify()
    })
    socket.on("end", () => {
      this.ended = true
      this.notify()
    })
    socket.on("close", () => {
      this.closed = true
      this.notify()
    })
    socket.on("error", () => undefined)
  }

  static connect(addr: string): Promise<Client> {
    const i = addr.lastIndexOf(":")
    // allowHalfOpen: after the server's FIN the client may still send (shutdownWrite tests).
    const socket = net.connect({ port: Number(addr.slice(i + 1)), host: addr.slice(0, i).replace(/^\[|\]$/g, ""), allowHalfOpen: true })
    socket.setNoDelay(true)
    return new Promise((resolve, reject) => {
      socket.once("connect", () => resolve(new Client(socket)))
      socket.once("error", reject)
    })
  }

  private notify(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Waits until cond() holds; rejects after ms with `what`. */
  async until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!cond()) {
      if (this.closed && !cond()) throw new Error(`connection closed before ${what} (have ${this.received} bytes)`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what} (have ${this.received} bytes)`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => (clearTimeout(t), resolve()))
      })
    }
  }

  /** Everything received so far, consumed. */
  take(): Buffer {
    const all = Buffer.concat(this.chunks)
    this.chunks = []
    this.received = 0
    return all
  }

  async readExactly(n: number, ms?: number): Promise<Buffer> {
    await this.until(() => this.received >= n, `${n} bytes`, ms)
    const all = this.take()
    if (all.length > n) {
      this.chunks = [all.subarray(n)]
      this.received = all.length - n
    }
    return all.subarray(0, n)
  }

  /** Reads until the peer ends the stream; returns everything. */
  async readToEnd(ms?: number): Promise<Buffer> {
    await this.until(() => this.ended || this.closed, "end of stream", ms)
    return this.take()
  }

  write(data: Uint8Array | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (e) => (e ? reject(e) : resolve())))
  }

  end(): void {
    this.socket.end()
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** Echo round trip of `payload` over one connection; returns what came back. */
export async function echoOnce(addr: string, payload: Uint8Array): Promise<Buffer> {
  const c = await Client.connect(addr)
  try {
    await c.write(payload)
    return await c.readExactly(payload.length)
  } finally {
    c.end()
  }
}

/**
 * Puts this test process's main thread (the client) on CPU 0 and every other
 * thread (the servers' Workers) on CPU 1, so single-flight round trips measure
 * the servers rather than where the scheduler happened to place them (on this
 * 2-vCPU VM a same-CPU and a cross-CPU wake-up differ ~6×). Returns the undo.
 * A no-op with fewer than 2 CPUs.
 */
export function splitClientAndServerCpus(): () => void {
  if (availableParallelism() < 2) return () => {}
  const pin = (tid: string, cpus: string) => Bun.spawnSync(["taskset", "-pc", cpus, tid], { stdout: "ignore", stderr: "ignore" })
  const tids = () => readdirSync("/proc/self/task")
  for (const tid of tids()) pin(tid, tid === String(process.pid) ? "0" : "1")
  return () => {
    for (const tid of tids()) pin(tid, `0-${availableParallelism() - 1}`)
  }
}
