// The worker runtime of the current thread, for the free functions handlers
// call (sleep, timeout, spawn, requestShutdown, metrics).
import type { ConnCtx } from "./conn"
import type { ConnectOptions, Driver } from "./driver"
import { TimeoutError } from "./errors"
import type { MetricsSnapshot } from "./metrics"
import type { TaskHandle } from "./tasks"

export interface ThreadRuntime {
  readonly workerId: number
  readonly driver: Driver
  requestShutdown(): void
  metrics(): MetricsSnapshot
  spawn<T>(fn: (signal: AbortSignal) => Promise<T> | T): TaskHandle<T>
  connect(addr: string, options: ConnectOptions): Promise<ConnCtx>
}

let current: ThreadRuntime | null = null

export function setThreadRuntime(rt: ThreadRuntime | null): void {
  current = rt
}

export function threadRuntime(): ThreadRuntime | null {
  return current
}

function requireRuntime(what: string): ThreadRuntime {
  if (current === null) throw outsideWorker(what)
  return current
}

function outsideWorker(what: string): Error {
  return new Error(`${what}() must be called inside a ringline worker (a handler or a task it spawned)`)
}

/** Resolves after `ms` (on the ring's timers in an io_uring worker); rejects with the signal's reason on abort. */
export function sleep(ms: number, options: { signal?: AbortSignal } = {}): Promise<void> {
  if (current !== null) return current.driver.sleep(ms, options.signal)
  const { signal } = options
  if (signal?.aborted) return Promise.reject(signal.reason)
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(signal!.reason)
    }
    signal?.addEventListener("abort", onAbort, { once: true })
  })
}

/** Resolves at `deadline` (a Date or ms since the epoch). */
export function sleepUntil(deadline: Date | number, options: { signal?: AbortSignal } = {}): Promise<void> {
  const at = typeof deadline === "number" ? deadline : deadline.getTime()
  return sleep(Math.max(0, at - Date.now()), options)
}

/** Settles like `promise`, or rejects with TimeoutError after `ms`; the timer is released either way. */
export async function timeout<T>(ms: number, promise: Promise<T>): Promise<T> {
  const abort = new AbortController()
  const timer = sleep(ms, { signal: abort.signal }).then(
    () => {
      throw new TimeoutError(ms)
    },
    (e: unknown) => {
      if (abort.signal.aborted) return new Promise<never>(() => undefined) // the race is already settled
      throw e // no timer could be had (TimerExhausted): say so rather than never time out
    },
  )
  try {
    return await Promise.race([promise, timer])
  } finally {
    abort.abort()
  }
}

/** Stops this worker only (graceful, as server.shutdown does for all). */
export function requestShutdown(): void {
  requireRuntime("requestShutdown").requestShutdown()
}

/** This worker's counters. */
export function metrics(): MetricsSnapshot {
  return requireRuntime("metrics").metrics()
}

/**
 * Starts a standalone task in this worker; returns its handle at once. Throws
 * TaskCapacityError when Config.standaloneTaskCapacity tasks are live. Shutdown
 * waits for standalone tasks up to its deadline, then aborts them.
 */
export function spawn<T>(fn: (signal: AbortSignal) => Promise<T> | T): TaskHandle<T> {
  return requireRuntime("spawn").spawn(fn)
}

/**
 * Opens a TCP ("host:port", "[v6]:port") or unix ("unix:/path") connection from
 * this worker. Rejects with a ConnectError whose `code` is ECONNREFUSED,
 * ETIMEDOUT (after timeoutMs), ... or with the signal's AbortError. A connection
 * its task leaves open is closed when the task ends.
 */
export function connect(addr: string, options: ConnectOptions = {}): Promise<ConnCtx> {
  // Outside a worker it rejects like every other failure of connect, rather than throwing.
  return current === null ? Promise.reject(outsideWorker("connect")) : current.connect(addr, options)
}
