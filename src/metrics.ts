// Per-worker counters in shared memory: a worker increments its own row, the
// main thread sums rows whenever asked, without stopping anybody.

export const COUNTERS = [
  "connectionsAccepted",
  "connectionsConnected",
  "connectionsClosed",
  "connectionsRefused",
  "bytesReceived",
  "bytesSent",
  "bytesSentWithoutCopy",
  "sendPoolExhausted",
  "sendEagain",
  "recvEnobufsParks",
  "recvPauses",
  "unsentBytesAtClose",
  "datagramsReceived",
  "datagramsSent",
  "datagramsDropped",
  "udpSendErrors",
  "timerExhausted",
  "cqOverflow",
  "missedWakeups",
  "idleClosed",
  "handlerErrors",
] as const

export type CounterName = (typeof COUNTERS)[number]
export type MetricsSnapshot = Record<CounterName, number> & { connectionsActive: number }

export const C = Object.fromEntries(COUNTERS.map((name, i) => [name, i])) as Record<CounterName, number>

/** One worker's row of counters inside a shared buffer. */
export function workerCounters(shared: SharedArrayBuffer | ArrayBuffer, workerId: number): Float64Array {
  return new Float64Array(shared, workerId * COUNTERS.length * 8, COUNTERS.length)
}

export function allocateCounters(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, workers) * COUNTERS.length * 8)
}

/** Sums the rows of the given workers. */
export function snapshot(shared: SharedArrayBuffer | ArrayBuffer, workerIds: number[]): MetricsSnapshot {
  const out = Object.fromEntries(COUNTERS.map((n) => [n, 0])) as MetricsSnapshot
  for (const w of workerIds) {
    const row = workerCounters(shared, w)
    COUNTERS.forEach((name, i) => (out[name] += row[i]!))
  }
  out.connectionsActive = out.connectionsAccepted + out.connectionsConnected - out.connectionsClosed
  return out
}

/** OpenMetrics text exposition of a snapshot. */
export function renderOpenMetrics(s: MetricsSnapshot): string {
  const lines: string[] = []
  for (const name of [...COUNTERS, "connectionsActive" as const]) {
    const metric = `ringline_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`
    const type = name === "connectionsActive" ? "gauge" : "counter"
    lines.push(`# TYPE ${metric} ${type}`)
    lines.push(`${metric}${type === "counter" ? "_total" : ""} ${s[name]}`)
  }
  lines.push("# EOF")
  return `${lines.join("\n")}\n`
}
