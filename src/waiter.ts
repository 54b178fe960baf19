// The two ways handler code waits on a long-lived owner: Waiter (one pending
// read at a time) and SlotWaiters (callers queued for a freed send slot).
// Waiter: the one pending promise of a long-lived owner (a connection's
// withData, a UDP socket's recvFrom/recvBatch), made again for every wait,
// with what the wait is for (the parser, the batch callback); or plain
// callbacks (listen) where the caller makes no promise per wait (withEachData
// makes one per call, a connection served by onData none).
// Owners wait once per read or datagram, so the promise's resolving functions
// are filed on the Waiter by one executor shared by every wait, instead of a
// waiter object and closures per wait.

const NO_RESOLVE = (_v: unknown) => {}
const NO_REJECT = (_e: Error) => {}

/** The Waiter whose wait() is creating its promise (see Waiter.file). */
let filing: Waiter<unknown, unknown> | null = null

export class Waiter<T, S> {
  /** What the pending wait is for; null while nothing waits. */
  subject: S | null = null
  private resolveFn: (v: T) => void = NO_RESOLVE
  private rejectFn: (e: Error) => void = NO_REJECT

  /** A promise that resolve() or reject() settles. One wait at a time: the owner checks `subject` first. */
  wait(subject: S): Promise<T> {
    this.subject = subject
    filing = this as Waiter<unknown, unknown>
    return new Promise<T>(Waiter.file)
  }

  /** As wait(), with callbacks instead of a promise (called synchronously when it settles). */
  listen(subject: S, resolve: (v: T) => void, reject: (e: Error) => void): void {
    this.subject = subject
    this.resolveFn = resolve
    this.rejectFn = reject
  }

  resolve(value: T): void {
    const resolve = this.resolveFn
    this.clear()
    resolve(value)
  }

  reject(e: Error): void {
    const reject = this.rejectFn
    this.clear()
    reject(e)
  }

  private clear(): void {
    this.subject = null
    this.resolveFn = NO_RESOLVE
    this.rejectFn = NO_REJECT
  }

  private static file<T>(resolve: (v: T) => void, reject: (e: Error) => void): void {
    const w = filing as unknown as Waiter<T, unknown>
    w.resolveFn = resolve
    w.rejectFn = reject
    filing = null
  }
}

/** FIFO of callers waiting for a freed slot (send pool, UDP send slots): a release wakes the oldest. */
export class SlotWaiters {
  private readonly queue: Array<() => void> = []

  get any(): boolean {
    return this.queue.length > 0
  }

  /** Resolves at the next wakeOne() that reaches this caller. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.queue.push(resolve))
  }

  wakeOne(): void {
    if (this.queue.length > 0) this.queue.shift()!()
  }
}
