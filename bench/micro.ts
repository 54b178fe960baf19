// Costs of single JavaScript operations on the hot path, as the comments in
// src/ and bench/README.md quote them (ns per operation, the best of 8 rounds;
// a shared VM moves them by ±30 %):
//
//   bun bench/micro.ts
//
// Not part of `bun test`: it times, it asserts nothing.
import { drainMicrotasks } from "bun:jsc"
import { ConnCtx, ParseResult, SlotQueues, type ConnBackend } from "../src/conn"
import { SendPool } from "../src/send"
import { startTask } from "../src/tasks"

const ROUNDS = 8

/** Time inside `body` that time() does not count (coldCaches below). */
let excludedNs = 0

/** ns per call of `body`, the best of ROUNDS rounds of n calls. */
function time(name: string, n: number, body: (i: number) => void): void {
  let best = Infinity
  for (let r = 0; r < ROUNDS; r++) {
    excludedNs = 0
    const t0 = performance.now()
    for (let i = 0; i < n; i++) body(i)
    best = Math.min(best, ((performance.now() - t0) * 1e6 - excludedNs) / n)
  }
  console.log(`${name.padEnd(58)} ${best.toFixed(1)} ns`)
}

const slab = new Uint8Array(256 * 4096)
const views = Array.from({ length: 256 }, (_, i) => slab.subarray(i * 4096, i * 4096 + 64))
let sink = 0

time("a receive view: subarray of the provided buffers", 1e6, (i) => {
  sink += slab.subarray((i & 255) * 4096, (i & 255) * 4096 + 64).length
})
time("the view made once, looked up again", 1e6, (i) => {
  sink += views[i & 255]!.length
})
time(".buffer of a view (bufferOf before the identity check)", 1e6, (i) => {
  sink += views[i & 255]!.buffer === slab.buffer ? 1 : 0
})
// Portable: what Bun's `data` callback hands over is a fresh 1 KiB array, whose .buffer
// makes it give up its fast form (the portable driver knows it by identity instead).
time("a fresh 1 KiB array (Buffer.allocUnsafe)", 2e5, () => {
  sink += Buffer.allocUnsafe(1024).length
})
time("a fresh 1 KiB array and its .buffer", 2e5, () => {
  sink += Buffer.allocUnsafe(1024).buffer.byteLength
})

// A UDP datagram's steps (256 B, from one of 8 senders): its sender's sockaddr looked up,
// the address and the payload copied into the send slot, the copy a queued datagram needed.
const senders = Array.from({ length: 8 }, (_, i) => Object.freeze({ address: "127.0.0.1", port: 1000 + i, family: "IPv4" }))
const sockaddrOf = new WeakMap(senders.map((p) => [p, new Uint8Array(16)]))
const payload = new Uint8Array(256)
time("the sender's sockaddr from a WeakMap", 1e6, (i) => {
  sink += sockaddrOf.get(senders[i & 7]!)!.length
})
time("a 16-byte address copied (set) into a msg descriptor", 1e6, (i) => {
  slab.set(sockaddrOf.get(senders[0]!)!, (i & 255) * 4096 + 128)
})
time("a 256-byte datagram copied (set) into a send slot", 1e6, (i) => {
  slab.set(payload, (i & 255) * 4096)
})
time("a 256-byte datagram copied out (slice)", 1e6, (i) => {
  sink += slab.slice((i & 255) * 4096, (i & 255) * 4096 + 256).length
})

const a: number[] = [], b: number[] = [], c: number[] = []
time("three segment lists: push, then truncate (length = 0)", 1e6, () => {
  a.push(1), b.push(2), c.push(3)
  a.length = b.length = c.length = 0
})
let end = 0
time("three segment lists: write at an end index, reset it", 1e6, () => {
  a[end] = 1
  b[end] = 2
  c[end++] = 3
  end = 0
})

// withData's cycle: a pending promise made, awaited by a coroutine, resolved, the coroutine
// resumed. `pending` makes the promise; `resolver` is its resolve function.
function promiseCycle(name: string, pending: () => Promise<number>, resolver: () => (n: number) => void): void {
  void (async () => {
    for (;;) sink += await pending()
  })()
  drainMicrotasks()
  time(name, 2e5, () => {
    resolver()(1)
    drainMicrotasks()
  })
}
// The shared executor src/waiter.ts uses, and Promise.withResolvers() (slower: not used).
let resolveLast: (n: number) => void = () => {}
const file = (resolve: (n: number) => void) => void (resolveLast = resolve)
promiseCycle("a promise made, awaited, resolved, its coroutine resumed", () => new Promise<number>(file), () => resolveLast)
promiseCycle(
  "the same cycle through Promise.withResolvers()",
  () => {
    const { promise, resolve } = Promise.withResolvers<number>()
    resolveLast = resolve
    return promise
  },
  () => resolveLast,
)
time("drainMicrotasks with nothing queued", 2e5, () => drainMicrotasks())

// A connection's JavaScript without its I/O (what the sequential storm runs per connection
// above the driver): ConnCtx made, the handler started (in a task scope, as WorkerHost does,
// or as a bare async call), one byte echoed into the send queue, end of stream, task settled.
const pool = new SendPool(new Uint8Array(1 << 20), 0, 4096, 256, new Float64Array(64))
const fakeBackend: ConnBackend = {
  pool, slotQueues: new SlotQueues(256, pool, null, 1 << 20), lender: null, sendDirect: null, recvHighWater: 1 << 20, recvAccumulatorMax: 1 << 20,
  transmit: () => {}, close: () => {}, shutdownWrite: () => {}, pauseRecv: () => {}, resumeRecv: () => {}, address: () => "",
}
const oneByte = new Uint8Array([7])
const noop = () => {}
async function echoHandler(conn: ConnCtx): Promise<void> {
  const echo = (d: Uint8Array) => {
    conn.sendNowait(d)
    return ParseResult.consumed(d.length)
  }
  while ((await conn.withData(echo)) > 0);
}
// Slot 0 every time, as a sequential storm's connections each take the slot the last one released.
const connectionLife = (inScope: boolean, between = noop) => (i: number) => {
  const conn = new ConnCtx(fakeBackend, 0, i, i)
  if (inScope) startTask(() => echoHandler(conn), noop, noop)
  else void echoHandler(conn)
  drainMicrotasks()
  between()
  conn.deliver(oneByte)
  drainMicrotasks()
  between()
  conn.failSends("ENOTCONN") // gives the send slot back, as the send's completion would
  conn.deliverEof()
  drainMicrotasks()
  conn.detach() // the slot released: its queues go to the next connection on it
  between()
}
// In the server, the kernel's work between a connection's completions (~15 µs of it per step in
// the sequential storm) evicts what the JavaScript uses, so each step starts with cold caches.
const otherMemory = new Uint8Array(2 << 20)
/** Touches 2 MiB of other memory (the L2 of this machine's two cores together); not timed. */
const coldCaches = () => {
  const t = Bun.nanoseconds()
  for (let i = 0; i < otherMemory.length; i += 64) otherMemory[i]!++
  excludedNs += Bun.nanoseconds() - t
}
time("new ConnCtx (its slot's send queue and receive buffer reused)", 2e5, (i) => void new ConnCtx(fakeBackend, i & 255, i, i))
time("a connection's life in JS: bare async handler", 1e5, connectionLife(false))
time("a connection's life in JS: in a task scope (startTask)", 1e5, connectionLife(true))
time("the same, 2 MiB of other memory touched between steps", 1e4, connectionLife(true, coldCaches))

// A turn of Bun's event loop, as the io_uring loop gives it one per tick: CPU (user +
// kernel: each turn is an epoll_pwait2) per setImmediate hop, the best of ROUNDS rounds.
let bestTurnNs = Infinity
for (let r = 0; r < ROUNDS; r++) {
  const hops = 20_000
  const before = process.cpuUsage()
  await new Promise<void>((resolve) => {
    let i = 0
    const hop = () => (++i >= hops ? resolve() : setImmediate(hop))
    setImmediate(hop)
  })
  const used = process.cpuUsage(before)
  bestTurnNs = Math.min(bestTurnNs, ((used.user + used.system) * 1000) / hops)
}
console.log(`${"a turn of Bun's event loop (a setImmediate hop), CPU".padEnd(58)} ${bestTurnNs.toFixed(1)} ns`)

if (sink === -1) console.log(sink) // keeps the work observable
