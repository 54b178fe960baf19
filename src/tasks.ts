// Task scopes: each handler task (onAccept, onStart, spawn) runs in a scope
// that remembers the outbound connections it opened, so the runtime can close
// the ones the task forgot when it ends (the original leaked them).
import { AsyncLocalStorage } from "node:async_hooks"
import type { ConnCtx } from "./conn"
import { abortError, TaskCapacityError } from "./errors"

export class TaskScope {
  /** Made on the first outbound connection: most tasks (accepted connections) open none. */
  private outbound: Set<ConnCtx> | null = null
  private ended = false

  /** Closes connections this task opened and left open. */
  closeLeftovers(): void {
    this.ended = true
    if (this.outbound === null) return
    for (const c of this.outbound) c.close()
    this.outbound = null
  }

  /** A connection this task opened; one that completes after the task ended is closed at once. */
  adopt(conn: ConnCtx): void {
    if (this.ended) conn.close()
    else (this.outbound ??= new Set()).add(conn)
  }
}

const scopes = new AsyncLocalStorage<TaskScope>()

/**
 * Starts fn as a task in a fresh scope, after the caller's turn (as a
 * microtask). Once it settles, the connections it left open close, then
 * onDone or onFailed runs. The only promise hop is one reaction on fn's own
 * promise: at connection rates every hop counts (a `Promise.resolve().then(fn)`
 * start, which adopts fn's promise, cost two more microtasks and three promises,
 * ~0.7 µs per connection in the sequential storm).
 */
export function startTask<T>(fn: () => Promise<T> | T, onDone: (value: T) => void, onFailed: (e: unknown) => void): void {
  const scope = new TaskScope()
  const done = (value: T) => {
    scope.closeLeftovers()
    onDone(value)
  }
  const failed = (e: unknown) => {
    scope.closeLeftovers()
    onFailed(e)
  }
  queueMicrotask(() =>
    scopes.run(scope, () => {
      let result: Promise<T> | T
      try {
        result = fn()
      } catch (e) {
        return failed(e)
      }
      void Promise.resolve(result).then(done, failed) // a native promise is used as it is
    }),
  )
}

/** Runs fn as a task in a fresh scope; settles as it does, after its leftovers are closed. */
export function runTask<T>(fn: () => Promise<T> | T): Promise<T> {
  return new Promise<T>((resolve, reject) => startTask(fn, resolve, reject))
}

/** Records an outbound connection against the task that opened it. */
export function adoptOutbound(conn: ConnCtx): void {
  scopes.getStore()?.adopt(conn)
}

/** A standalone task started by spawn(). */
export interface TaskHandle<T> {
  /** Settles with the task's outcome (AbortError after abort()). */
  join(): Promise<T>
  /** Signals the task to stop and frees its slot at once. */
  abort(reason?: unknown): void
  readonly signal: AbortSignal
}

/** Bounded set of standalone tasks (Config.standaloneTaskCapacity). */
export class TaskTable {
  private live = 0
  private readonly running = new Set<Promise<unknown>>()
  private readonly controllers = new Set<AbortController>()

  constructor(private readonly capacity: number) {}

  spawn<T>(fn: (signal: AbortSignal) => Promise<T> | T): TaskHandle<T> {
    if (this.live >= this.capacity) throw new TaskCapacityError(this.capacity)
    this.live++
    const controller = new AbortController()
    let freed = false
    this.controllers.add(controller)
    const free = () => {
      if (!freed) {
        freed = true
        this.live--
        this.controllers.delete(controller)
      }
    }
    const task = runTask(() => fn(controller.signal))
    const aborted = new Promise<never>((_, reject) =>
      controller.signal.addEventListener("abort", () => reject(abortError(controller.signal, "task")), { once: true }),
    )
    const outcome = Promise.race([task, aborted]).finally(free)
    outcome.catch(() => undefined)
    this.running.add(outcome)
    void outcome.finally(() => this.running.delete(outcome)).catch(() => undefined)
    return {
      join: () => outcome,
      abort: (reason?: unknown) => controller.abort(reason),
      signal: controller.signal,
    }
  }

  get size(): number {
    return this.live
  }

  /** Settles when every task now running has finished. */
  settled(): Promise<unknown> {
    return Promise.allSettled([...this.running])
  }

  /** Aborts every running task (the shutdown deadline passed). */
  abortAll(reason: Error): void {
    for (const c of [...this.controllers]) c.abort(reason)
  }
}
