// Config: every field of the original that applies, camelCased, same defaults,
// plus ours (shutdownTimeoutMs, idleTimeoutMs, wakeupWatchdogMs, quiet, backend). validateConfig
// runs at launch and names the field, the value and the rule it broke.
import { ConfigError } from "./errors"

export type BackendName = "io_uring" | "portable"
export type BackendChoice = "auto" | BackendName

export interface RecvBufferConfig {
  /** Buffers in the provided-buffer ring (power of two). */
  ringSize: number
  /** Bytes per buffer. */
  bufferSize: number
}

export interface WorkerConfig {
  /** Worker threads; 0 = one per CPU. */
  threads: number
  /** Pin worker i to CPU coreOffset + i. */
  pinToCore: boolean
  coreOffset: number
}

export class Config {
  sqEntries = 256
  recvBuffer: RecvBufferConfig = { ringSize: 256, bufferSize: 16384 }
  udpRecvBuffer: RecvBufferConfig = { ringSize: 128, bufferSize: 2048 }
  /** Connections per worker (hard bound). */
  maxConnections = 16000
  /** Send pool slots per worker. */
  sendCopyCount = 1024
  /** Bytes per send pool slot. */
  sendCopySlotSize = 16448
  standaloneTaskCapacity = 256
  timerSlots = 256
  /**
   * UDP datagrams in flight per worker (each a udpRecvBuffer.bufferSize slot until
   * its send completes). 256, as the C reference server: with 64, a flood keeping
   * 512 datagrams in flight had replies refused (PoolExhausted).
   */
  udpSendSlots = 256
  udpRecvQueueCapacity = 1024
  backlog = 1024
  tcpNodelay = true
  /** Unread bytes one connection may hold before its receive pauses / its parser is refused. */
  recvAccumulatorMax = 1024 * 1024 * 1024
  /**
   * Unread bytes at which a connection whose handler is not reading stops
   * receiving (until it has read half of them): the rest waits in the kernel and
   * TCP slows the peer, instead of piling up in the process.
   */
  recvHighWater = 1024 * 1024
  /**
   * Unsent bytes one connection may queue before sendCapacity reports no room
   * (send() and ConnStream writes then wait): the kernel's socket buffer holds
   * the rest of the pipeline, and one connection cannot take the whole pool.
   */
  sendHighWater = 512 * 1024
  worker: WorkerConfig = { threads: 0, pinToCore: true, coreOffset: 0 }
  /** Graceful shutdown's drain deadline. */
  shutdownTimeoutMs = 5000
  /** Close connections with no traffic for this long; 0 = off. */
  idleTimeoutMs = 0
  /**
   * io_uring: a sleeping worker looks at its ring this often without being woken,
   * the longest a wake-up its doorbell missed can wait (counted: missedWakeups).
   * Each look is a turn of the worker's event loop: an idle 2-worker server here
   * spent 2.2–3.0 ms of CPU a second with it at 1,000, 2.1–3.3 at 10,000
   * (`bun bench/idle.ts`), i.e. within the noise.
   */
  wakeupWatchdogMs = 1000
  /** Silence the one-line backend notice on stderr. */
  quiet = false
  backend: BackendChoice = "auto"

  /** A fresh, mutable Config with every default. */
  static default(): Config {
    return new Config()
  }
}

/** A plain-data copy for postMessage (structured clone keeps no class). */
export type ConfigData = Omit<Config, never>

const MAX_U32 = 0xffffffff
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v)
const isPow2 = (v: number) => v > 0 && (v & (v - 1)) === 0

function int(field: string, v: unknown, min: number, max: number): number {
  if (!isInt(v) || v < min || v > max) throw new ConfigError(field, v, `must be an integer in [${min}, ${max}]`)
  return v
}

function pow2(field: string, v: unknown, min: number, max: number): void {
  int(field, v, min, max)
  if (!isPow2(v as number)) throw new ConfigError(field, v, `must be a power of two in [${min}, ${max}]`)
}

function bool(field: string, v: unknown): void {
  if (typeof v !== "boolean") throw new ConfigError(field, v, "must be a boolean")
}

/** Throws ConfigError for the first field that breaks its rule. */
export function validateConfig(cfg: Config): void {
  pow2("sqEntries", cfg.sqEntries, 1, 32768)
  pow2("recvBuffer.ringSize", cfg.recvBuffer?.ringSize, 1, 32768)
  int("recvBuffer.bufferSize", cfg.recvBuffer?.bufferSize, 1, 1 << 20)
  pow2("udpRecvBuffer.ringSize", cfg.udpRecvBuffer?.ringSize, 1, 32768)
  int("udpRecvBuffer.bufferSize", cfg.udpRecvBuffer?.bufferSize, 160, 1 << 18)
  int("maxConnections", cfg.maxConnections, 1, (1 << 24) - 1)
  int("sendCopyCount", cfg.sendCopyCount, 1, 65535)
  int("sendCopySlotSize", cfg.sendCopySlotSize, 1, 1 << 24)
  // One native slab holds the TCP receive buffers, the send pool and the UDP send slots.
  const recvBytes = cfg.recvBuffer.ringSize * cfg.recvBuffer.bufferSize
  if (recvBytes > 1 << 30) {
    throw new ConfigError("recvBuffer.ringSize", cfg.recvBuffer.ringSize, `recvBuffer.ringSize × recvBuffer.bufferSize must stay within 1 GiB, got ${recvBytes} bytes`)
  }
  const slab = recvBytes + cfg.sendCopyCount * cfg.sendCopySlotSize + (cfg.udpSendSlots ?? 0) * cfg.udpRecvBuffer.bufferSize
  if (slab > 1 << 30) {
    throw new ConfigError("sendCopyCount", cfg.sendCopyCount, `sendCopyCount × sendCopySlotSize (+ the receive buffers and UDP send slots) must stay within 1 GiB, got ${slab} bytes`)
  }
  int("standaloneTaskCapacity", cfg.standaloneTaskCapacity, 1, 2 ** 31 - 1)
  int("timerSlots", cfg.timerSlots, 1, 65535)
  int("udpSendSlots", cfg.udpSendSlots, 1, 65535)
  int("udpRecvQueueCapacity", cfg.udpRecvQueueCapacity, 1, 1 << 24)
  int("backlog", cfg.backlog, 1, 65535)
  bool("tcpNodelay", cfg.tcpNodelay)
  int("recvAccumulatorMax", cfg.recvAccumulatorMax, cfg.recvBuffer.bufferSize, Number.MAX_SAFE_INTEGER)
  int("recvHighWater", cfg.recvHighWater, 1, Number.MAX_SAFE_INTEGER)
  int("sendHighWater", cfg.sendHighWater, 1, Number.MAX_SAFE_INTEGER)
  int("worker.threads", cfg.worker?.threads, 0, 1024)
  bool("worker.pinToCore", cfg.worker.pinToCore)
  int("worker.coreOffset", cfg.worker.coreOffset, 0, 1023)
  int("shutdownTimeoutMs", cfg.shutdownTimeoutMs, 0, MAX_U32)
  int("idleTimeoutMs", cfg.idleTimeoutMs, 0, MAX_U32)
  int("wakeupWatchdogMs", cfg.wakeupWatchdogMs, 10, 2 ** 31 - 1) // setInterval's longest delay
  bool("quiet", cfg.quiet)
  if (!["auto", "io_uring", "portable"].includes(cfg.backend as string)) {
    throw new ConfigError("backend", cfg.backend, `must be "auto", "io_uring" or "portable"`)
  }
}
