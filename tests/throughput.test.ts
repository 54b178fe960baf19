// The seed throughput suite (reference/throughput.rs): the same workloads
// through ringline and through a plain Bun baseline server (its own Worker
// thread, as the seed's std::net thread) in the same test.
// Loose bounds only — this flags regressions; bench/ measures performance.
import { expect, test } from "bun:test"
import dgram from "node:dgram"
import { Config, RinglineBuilder, type Server } from "../src/index"
import { baselineServer, Client, fixture, pattern, splitClientAndServerCpus, testConfig } from "./helpers"

const TOTAL = 8 * 1024 * 1024
const CHUNK = 64 * 1024

async function stop(server: Server): Promise<void> {
  server.shutdown.shutdown()
  await Promise.all(server.handles.map((h) => h.join()))
}

/** Writes CHUNK bytes, reads the echo back, repeats: at most one chunk in flight. */
async function chunkedEcho(addr: string, payload: Uint8Array): Promise<[number, Buffer]> {
  // Warm-up (not timed) so both servers meet an equally warm, JIT-compiled client.
  const warm = await Client.connect(addr)
  for (let i = 0; i < 16; i++) {
    await warm.write(payload.subarray(0, CHUNK))
    await warm.readExactly(CHUNK, 30_000)
  }
  warm.end()

  const c = await Client.connect(addr)
  const parts: Buffer[] = []
  const t = performance.now()
  for (let sent = 0; sent < payload.length; sent += CHUNK) {
    const end = Math.min(sent + CHUNK, payload.length)
    await c.write(payload.subarray(sent, end))
    parts.push(await c.readExactly(end - sent, 30_000))
  }
  const ms = performance.now() - t
  c.end()
  return [ms, Buffer.concat(parts)]
}

/**
 * Times `run` against ringline and the baseline in alternating rounds (both
 * servers up at once, client and servers on separate CPUs) and keeps each
 * side's best round.
 */
async function bestOfAlternating(rounds: number, run: (side: 0 | 1) => Promise<number>): Promise<[number, number]> {
  const best: [number, number] = [Infinity, Infinity]
  const unpin = splitClientAndServerCpus()
  try {
    for (let r = 0; r < rounds; r++) {
      for (const side of [0, 1] as const) {
        const ms = await run(side).catch((e: Error) => {
          throw new Error(`${side === 0 ? "ringline" : "the Bun baseline"}, round ${r + 1}: ${e.message}`)
        })
        best[side] = Math.min(best[side], ms)
      }
    }
  } finally {
    unpin()
  }
  return best
}

const ROUNDS = 3

test("tcp_throughput_round_trip_vs_std_net", async () => {
  const payload = pattern(TOTAL)
  const expected = Buffer.from(payload)
  const server = await new RinglineBuilder(testConfig()).bind("127.0.0.1:0").launch(fixture("stream_echo"))
  const baseline = await baselineServer("tcp")
  let rlMs: number, baseMs: number
  try {
    ;[rlMs, baseMs] = await bestOfAlternating(ROUNDS, async (side) => {
      const [ms, got] = await chunkedEcho(side === 0 ? server.tcpAddr! : baseline.addr, payload)
      expect(got.length).toBe(payload.length)
      expect(got.equals(expected)).toBe(true)
      return ms
    })
    expect(server.metrics().missedWakeups).toBe(0) // each round began on a worker asleep after the last: its doorbell woke it
  } finally {
    baseline.stop()
    await stop(server)
  }
  const mbps = (ms: number) => (TOTAL / 1e6 / (ms / 1000)).toFixed(0)
  console.error(`TCP 8 MiB echo (chunked 64 KiB, best of ${ROUNDS}) [${server.backend}]: ringline=${rlMs.toFixed(1)} ms (${mbps(rlMs)} MB/s), Bun.listen=${baseMs.toFixed(1)} ms (${mbps(baseMs)} MB/s), ratio=${(rlMs / baseMs).toFixed(2)}x`)
  expect(rlMs).toBeLessThan(baseMs * 5)
})

test("tcp_fire_and_forget_8mib_survives_kernel_buffer_full", async () => {
  const payload = pattern(TOTAL)
  const server = await new RinglineBuilder(testConfig()).bind("127.0.0.1:0").launch(fixture("stream_echo"))
  try {
    const c = await Client.connect(server.tcpAddr!)
    // Writer shoves everything in (the kernel buffer fills long before), then half-closes;
    // the reader drains concurrently until the server's FIN.
    const written = c.write(payload).then(() => c.end())
    const got = await c.readToEnd(60_000)
    await written
    expect(got.length).toBe(payload.length)
    expect(got.equals(Buffer.from(payload))).toBe(true)
  } finally {
    await stop(server)
  }
})

/** Synchronous request/reply: one datagram in flight at a time. */
async function udpRequestReply(addr: string, count: number, size: number): Promise<number> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))]
  const sock = dgram.createSocket("udp4")
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r))
  let wake: ((b: Buffer) => void) | null = null
  sock.on("message", (m) => wake?.(m))
  const payload = Buffer.alloc(size)
  const warmup = 100 // round trips before the clock starts, so both servers meet a warm client
  let t = performance.now()
  try {
    for (let i = 0; i < warmup + count; i++) {
      if (i === warmup) t = performance.now()
      payload.writeUInt32LE(i, 0)
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`round trip ${i}: no reply within 2 s`)), 2000)
        wake = (b) => (clearTimeout(timer), resolve(b))
        sock.send(payload, port, host)
      })
      if (reply.readUInt32LE(0) !== i) throw new Error(`round trip ${i}: reply out of order`)
    }
    return performance.now() - t
  } finally {
    sock.close()
  }
}

test("udp_throughput_request_reply_vs_std_net", async () => {
  const count = 1000
  const size = 256
  const cfg: Config = testConfig((c) => {
    c.udpSendSlots = 64
    c.udpRecvQueueCapacity = 4096
  })
  const server = await new RinglineBuilder(cfg).bindUdp("127.0.0.1:0").launch(fixture("udp_echo"))
  const baseline = await baselineServer("udp")
  let rlMs: number, baseMs: number
  try {
    ;[rlMs, baseMs] = await bestOfAlternating(ROUNDS, (side) => udpRequestReply(side === 0 ? server.udpAddr! : baseline.addr, count, size))
    expect(server.metrics().missedWakeups).toBe(0) // each round began on a worker asleep after the last: its doorbell woke it
  } finally {
    baseline.stop()
    await stop(server)
  }
  console.error(`UDP ${count} × ${size} B req/reply (best of ${ROUNDS}) [${server.backend}]: ringline=${rlMs.toFixed(1)} ms (${((count * 1000) / rlMs).toFixed(0)} rtt/s), Bun.udpSocket=${baseMs.toFixed(1)} ms (${((count * 1000) / baseMs).toFixed(0)} rtt/s), ratio=${(rlMs / baseMs).toFixed(2)}x`)
  expect(rlMs).toBeLessThan(30_000)
  expect(rlMs).toBeLessThan(baseMs * 5)
})
