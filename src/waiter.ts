// Waiter: the one pending promise of a long-lived owner (a connection's
// withData, a UDP socket's recvFrom/recvBatch), made again for every wait.
// Owners wait once per read or datagram, so the promise's resolving functions
// are filed on the Waiter by one executor shared by every wait, instead of a
// waiter object and closures per wait.

const NO_RESOLVE = (_v: unknown) => {}
const NO_REJECT = (_e: Error) => {}

/** The Waiter whose wait() is creating its promise (see Waiter.file). */
let filing: Waiter<unknown> | null = null

export class Waiter<T> {
  private resolveFn: (v: T) => void = NO_RESOLVE
  private rejectFn: (e: Error) => void = NO_REJECT

  /** A promise that resolve() or reject() settles. The owner keeps one wait at a time. */
  wait(): Promise<T> {
    filing = this as Waiter<unknown>
    return new Promise<T>(Waiter.file)
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
    this.resolveFn = NO_RESOLVE
    this.rejectFn = NO_REJECT
  }

  private static file<T>(resolve: (v: T) => void, reject: (e: Error) => void): void {
    const w = filing as unknown as Waiter<T>
    w.resolveFn = resolve
    w.rejectFn = reject
    filing = null
  }
}
