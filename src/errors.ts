// Errors the public API throws. Each carries what a caller needs to act:
// the field and rule (ConfigError), a node-style `code` (SendError), a `kind`
// (UdpSendError).
export { NativeError, errnoName } from "./native/errno"

/** A Config value broke a rule; `field` is its dotted path ("recvBuffer.ringSize"). */
export class ConfigError extends Error {
  readonly code = "ERR_RINGLINE_CONFIG"
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly rule: string,
  ) {
    super(`Config.${field} = ${JSON.stringify(value)}: ${rule}`)
    this.name = "ConfigError"
  }
}

/**
 * A send could not be queued or did not reach the kernel. `code` is
 * "ENOBUFS" (send pool full: nothing of this call was queued), "ENOTCONN"
 * (connection closed), or the socket error ("EPIPE", "ECONNRESET", ...).
 */
export class SendError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = "SendError"
  }
}

export type UdpSendErrorKind = "PoolExhausted" | "SubmissionQueueFull" | "InvalidInput" | "Closed"

/** A datagram was not queued: no free send slot, no submission room, bad input, or the socket is closed. */
export class UdpSendError extends Error {
  constructor(
    readonly kind: UdpSendErrorKind,
    message: string,
  ) {
    super(message)
    this.name = "UdpSendError"
  }
}

/** Rejection of `timeout(ms, promise)` when the deadline passes first. */
export class TimeoutError extends Error {
  readonly code = "ETIMEDOUT"
  constructor(ms: number) {
    super(`timed out after ${ms} ms`)
    this.name = "TimeoutError"
  }
}

/** A connection's receive buffer passed Config.recvAccumulatorMax while its parser wanted more. */
export class RecvError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = "RecvError"
  }
}

/** A bounded table (Config field `field`) is full: the call is refused, never silently degraded. */
abstract class CapacityError extends Error {
  constructor(
    readonly code: string,
    readonly capacity: number,
    what: string,
    field: string,
  ) {
    super(`all ${capacity} ${what} are in use (raise Config.${field})`)
  }
}

/** All Config.timerSlots timers are in use (a sleep is refused rather than completed early). */
export class TimerExhaustedError extends CapacityError {
  constructor(slots: number) {
    super("TimerExhausted", slots, "timer slots", "timerSlots")
    this.name = "TimerExhausted"
  }
}

/** spawn() found Config.standaloneTaskCapacity tasks already running. */
export class TaskCapacityError extends CapacityError {
  constructor(capacity: number) {
    super("TaskCapacity", capacity, "standalone task slots", "standaloneTaskCapacity")
    this.name = "TaskCapacityError"
  }
}

/** A connect() that did not complete: `code` is ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ... */
export class ConnectError extends Error {
  constructor(
    readonly code: string,
    readonly address: string,
    message?: string,
  ) {
    super(message ?? `connect ${code} ${address}`)
    this.name = "ConnectError"
  }
}

/** The rejection of an operation cancelled through its AbortSignal. */
export function abortError(signal: AbortSignal | undefined, what: string): Error {
  const reason: unknown = signal?.reason
  if (reason instanceof Error) return reason
  const e = new Error(`${what} was aborted`)
  e.name = "AbortError"
  return e
}

/** A timer or other worker resource was asked for after the worker shut down (code ESHUTDOWN). */
export class ShutdownError extends Error {
  readonly code = "ESHUTDOWN"
  constructor(what: string) {
    super(`${what}: the worker has shut down`)
    this.name = "ShutdownError"
  }
}
