// TCP through ringline, named after the original's echo suite; runs on the
// backend RINGLINE_BACKEND selects.
import { afterEach, describe, expect, test } from "bun:test"
import net from "node:net"
import { readdirSync, readlinkSync } from "node:fs"
import { randomBytes } from "node:crypto"
import { Config, ConfigError, ParseResult, RinglineBuilder, SendError, type AsyncEventHandler, type ConnCtx, type HandlerClass, type Server } from "../src/index"
import { RecvBuffer } from "../src/recv"
import type { WorkerHost } from "../src/host"
import { threadRuntime } from "../src/runtime"
import type { UringDriver } from "../src/uring/driver"
import Echo from "../examples/tcp_echo"
import { afterSilences, backendUnderTest, Client, echoOnce, expectNearBaseline, fixture, launch, median, pattern, testConfig, withBaseline } from "./helpers"

let servers: Server[] = []
async function serve(name: string, mutate?: (c: Config) => void): Promise<Server> {
  const s = await launch(fixture(name), mutate)
  servers.push(s)
  return s
}

/** Sends `parts` to the server (20 ms apart, so they arrive separately), half-closes, and returns everything it sent back. */
async function converse(s: Server, ...parts: string[]): Promise<string> {
  const c = await Client.connect(s.tcpAddr!)
  for (const [i, part] of parts.entries()) {
    if (i > 0) await Bun.sleep(20)
    await c.write(part)
  }
  c.end()
  return (await c.readToEnd()).toString()
}

/** Milliseconds for one byte to go to the echo and back. */
async function roundTrip(c: Client): Promise<number> {
  const t = performance.now()
  await c.write("x")
  await c.readExactly(1)
  return performance.now() - t
}

afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  servers = []
})

describe("tcp echo", () => {
  test("small echo", async () => {
    const s = await serve("echo")
    expect((await echoOnce(s.tcpAddr!, new TextEncoder().encode("hello"))).toString()).toBe("hello")
  })

  test("8 KiB echo", async () => {
    const s = await serve("echo")
    const payload = pattern(8192)
    expect((await echoOnce(s.tcpAddr!, payload)).equals(Buffer.from(payload))).toBe(true)
  })

  test("multi-connection echo (8 at once)", async () => {
    const s = await serve("echo")
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => echoOnce(s.tcpAddr!, pattern(4096, i))))
    replies.forEach((r, i) => expect(r.equals(Buffer.from(pattern(4096, i)))).toBe(true))
  })

  test("sequential echo (10 connections one after another)", async () => {
    const s = await serve("echo")
    for (let i = 0; i < 10; i++) expect((await echoOnce(s.tcpAddr!, pattern(100, i))).equals(Buffer.from(pattern(100, i)))).toBe(true)
  })

  test("client disconnect, then the server still serves", async () => {
    const s = await serve("echo")
    const c = await Client.connect(s.tcpAddr!)
    await c.write("partial")
    c.destroy() // abrupt: no reading, no FIN handshake
    expect((await echoOnce(s.tcpAddr!, new TextEncoder().encode("next"))).toString()).toBe("next")
  })

  test("graceful shutdown joins every worker", async () => {
    const s = await serve("echo", (c) => (c.worker.threads = 2))
    expect((await echoOnce(s.tcpAddr!, new TextEncoder().encode("bye"))).toString()).toBe("bye")
    s.shutdown.shutdown()
    s.shutdown.shutdown() // idempotent
    const reports = await Promise.all(s.handles.map((h) => h.join()))
    expect(reports.map((r) => r.abortedConnections)).toEqual([0, 0])
    servers = []
    await expect(Client.connect(s.tcpAddr!)).rejects.toThrow()
  })

  test("shutdown drains queued sends, and reports what its deadline cut off", async () => {
    const s = await serve("echo", (c) => (c.shutdownTimeoutMs = 300))
    const idle = await Client.connect(s.tcpAddr!) // never closes: the deadline must
    await idle.write("x")
    await idle.readExactly(1)
    const reports = await s.stop()
    servers = []
    expect(reports[0]!.abortedConnections).toBe(1)
    await idle.until(() => idle.closed || idle.ended, "the server to close the connection")
  })

  test("the shutdown deadline closes a connection whose queued sends never drain, and reports them", async () => {
    const s = await serve("flood_then_return", (c) => {
      c.sendCopyCount = 2048 // 32 MiB of pool: far more than the kernel's socket buffers take
      c.sendCopySlotSize = 16 * 1024
      c.sendHighWater = 32 << 20 // and no per-connection cap below it
      c.shutdownTimeoutMs = 300
    })
    const c = await Client.connect(s.tcpAddr!)
    c.socket.pause() // never reads
    await Bun.sleep(100)
    const reports = await s.stop()
    servers = []
    expect(reports[0]!.abortedConnections).toBe(1)
    expect(reports[0]!.unsentBytes).toBeGreaterThan(0)
    c.socket.resume()
    await c.until(() => c.closed || c.ended, "the server to close the stuck connection")
  })

  test("a handler that does not read holds about recvHighWater bytes; the rest waits in the kernel and arrives in order", async () => {
    const highWater = 256 * 1024
    const s = await serve("late_reader", (c) => (c.recvHighWater = highWater))
    const c = await Client.connect(s.tcpAddr!)
    const payload = pattern(16 << 20, 3)
    void c.write(payload) // node queues what the kernel does not take yet
    const report = (await c.readExactly("buffered ".length + 1, 5000)).toString()
    expect(report).toStartWith("buffered ")
    const line = report + (await (async () => {
      let rest = ""
      while (!rest.endsWith("\n")) rest += (await c.readExactly(1)).toString()
      return rest
    })())
    const buffered = Number(line.slice("buffered ".length))
    // The pause takes effect after the receives already under way: allow 1 MiB of them.
    expect(buffered).toBeGreaterThanOrEqual(highWater)
    expect(buffered).toBeLessThan(highWater + (1 << 20))
    expect(s.metrics().recvPauses).toBeGreaterThanOrEqual(1)
    c.end()
    let sum = 0
    for (let i = 0; i < payload.length; i++) sum = (sum + payload[i]! * (i % 251)) % 1_000_000_007
    expect((await c.readToEnd(20_000)).toString()).toBe(`total ${payload.length} sum ${sum}\n`)
  })

  test("sendHighWater caps what one connection queues: sendCapacity is 0 there, and waitForSendRoom resumes once the kernel takes bytes", async () => {
    const highWater = 64 * 1024
    const s = await serve("high_water", (c) => (c.sendHighWater = highWater))
    // A reader paused from its first moment at the socket itself, so the kernel's buffers fill and
    // then the queue reaches the high water (node:net's pause() let a whole transfer through once in CI).
    const chunks: Buffer[] = []
    let ended = () => {}
    const stream = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no end of stream within 20 s")), 20_000)
      ended = () => (clearTimeout(timer), resolve(Buffer.concat(chunks)))
    })
    const colon = s.tcpAddr!.lastIndexOf(":")
    const reader = await Bun.connect({
      hostname: s.tcpAddr!.slice(0, colon),
      port: Number(s.tcpAddr!.slice(colon + 1)),
      socket: { open: (sock) => void sock.pause(), data: (_sock, d) => void chunks.push(Buffer.from(d)), end: () => ended(), close: () => ended() },
    })
    await Bun.sleep(200)
    reader.resume()
    const all = await stream
    const at = all.lastIndexOf("MAX ")
    const [, most, , waits, , total] = all.subarray(at).toString().trim().split(" ")
    expect(all.subarray(0, at).equals(Buffer.from(pattern(Number(total))))).toBe(true)
    expect(Number(most)).toBeGreaterThan(0)
    expect(Number(most)).toBeLessThanOrEqual(highWater)
    expect(Number(waits)).toBeGreaterThanOrEqual(1)
  })

  test("the example echo, 32 MiB of random bytes past a stalled reader: byte-exact; most of it sent without a copy (io_uring: out of the receive buffers; portable: from the bytes Bun delivered, the pool taking what the kernel refused)", async () => {
    const s = await launch(new URL("../examples/tcp_echo.ts", import.meta.url))
    servers.push(s)
    const payload = randomBytes(32 << 20)
    const c = await Client.connect(s.tcpAddr!)
    void c.write(payload)
    c.socket.pause() // sends wait on a full socket while more arrives: a buffer given back too early would be overwritten
    await Bun.sleep(200)
    c.socket.resume()
    expect((await c.readExactly(payload.length, 20_000)).equals(payload)).toBe(true)
    c.end()
    const { bytesSent, bytesSentWithoutCopy } = s.metrics()
    expect(bytesSent).toBe(payload.length)
    expect(bytesSentWithoutCopy).toBeLessThanOrEqual(bytesSent)
    // io_uring lends up to sendHighWater of received bytes per connection; portable writes each arrival's echo from Bun's
    // buffer, and copies into the pool only what the kernel refused (then the rest, until drain).
    expect(bytesSentWithoutCopy).toBeGreaterThan(payload.length / 2)
  })

  // On io_uring a worker that has parked (after 4 quiet ms) learns of new data through
  // an eventfd this kernel signals ~16 ms late for sockets (bench/wake_probe.c) unless
  // the ring's doorbell rings it; through a shorter lull it waits in the ring itself.
  test.each([2, 30, 200])("a request after a %i ms silence is answered within 5 ms of a plain Bun server after the same silence", async (silenceMs) => {
    const s = await serve("echo")
    await withBaseline("tcp", async (addr) => {
      const [c, b] = await Promise.all([Client.connect(s.tcpAddr!), Client.connect(addr)])
      expectNearBaseline(await afterSilences(silenceMs, 10, () => roundTrip(c), () => roundTrip(b)), s)
      c.end()
      b.end()
    })
  })

  // On io_uring a worker busy for 100 ms or more takes its sockets out of its doorbell
  // (each of their wake-ups would visit it) and must put every one back before it parks.
  test("after a busy spell and a silence, the busy connection, a quiet one and a new one are each answered within 5 ms of a plain Bun server after the same silence", async () => {
    const s = await serve("echo")
    const quiet = await Client.connect(s.tcpAddr!)
    await roundTrip(quiet)
    const busy = await Client.connect(s.tcpAddr!)
    const spell = async () => {
      const until = performance.now() + 300
      while (performance.now() < until) await roundTrip(busy)
    }
    const fresh = async () => {
      const t = performance.now()
      const c = await Client.connect(s.tcpAddr!)
      await roundTrip(c)
      c.end()
      return performance.now() - t
    }
    await withBaseline("tcp", async (addr) => {
      const reference = await Client.connect(addr)
      const baselineTrip = () => roundTrip(reference)
      expectNearBaseline(await afterSilences(30, 3, () => roundTrip(busy), baselineTrip, spell), s)
      expectNearBaseline(await afterSilences(30, 3, () => roundTrip(quiet), baselineTrip, spell), s)
      expectNearBaseline(await afterSilences(30, 3, fresh, baselineTrip, spell), s)
      reference.end()
    })
    quiet.end()
    busy.end()
  })

  test("a connection after a 200 ms silence is accepted and answered within 5 ms of a plain Bun server, and so is its next request after another", async () => {
    const s = await serve("echo")
    const opened: Client[][] = [[], []]
    const connectAndTrip = (addr: string, into: Client[]) => async () => {
      const t = performance.now()
      const c = await Client.connect(addr)
      await roundTrip(c)
      into.push(c)
      return performance.now() - t
    }
    try {
      await withBaseline("tcp", async (addr) => {
        expectNearBaseline(await afterSilences(200, 6, connectAndTrip(s.tcpAddr!, opened[0]!), connectAndTrip(addr, opened[1]!)), s)
        // Each worker has parked again since, now with these connections in its doorbell.
        expectNearBaseline(await afterSilences(200, 6, () => roundTrip(opened[0]!.shift()!), () => roundTrip(opened[1]!.shift()!)), s)
      })
    } finally {
      for (const c of [...opened[0]!, ...opened[1]!]) c.end()
    }
  })

  // io_uring only by nature: the doorbell and the watchdog behind it are how a parked
  // io_uring worker learns of work (a portable worker waits in Bun's event loop). The
  // test deafens the doorbell (every fd out of its set) to stand in for a wake-up lost in
  // the kernel: the watchdog's look (every wakeupWatchdogMs) must still answer, and count it.
  test.skipIf(backendUnderTest !== "io_uring")("a sleeping worker whose doorbell misses a wake-up answers at its watchdog's next look, and counts the miss [io_uring only, skipped on the portable backend: it has no doorbell or watchdog]", async () => {
    const s = await launch(Echo, (c) => (c.wakeupWatchdogMs = 200)) // inline: its driver is on this thread
    servers.push(s)
    const c = await Client.connect(s.tcpAddr!)
    await roundTrip(c)
    await Bun.sleep(50) // parked (after 4 quiet ms), the connection in the doorbell's set
    const driver = (threadRuntime() as unknown as WorkerHost).driver as UringDriver
    driver.ring.unwatch(Int32Array.from({ length: 4096 }, (_, fd) => fd))
    expect(await roundTrip(c)).toBeLessThan(1_000)
    expect(s.metrics().missedWakeups).toBe(1)
    c.end()
  })

  // On io_uring a worker woken after a lull answers and sleeps again without ticking, until
  // the traffic is back (a sleep under 1 ms, or 16 batches in a row: the long stream) and it
  // waits in the ring again, where its tick must give Bun's event loop its turns: the
  // replies come from setTimeout.
  test("after a lull, a burst on 8 connections at once and then 32 MiB on one are echoed byte-exact from a handler's timers, and requests after the next lulls are answered within 5 ms of a plain Bun server's", async () => {
    const s = await serve("timer_echo")
    const clients = await Promise.all(Array.from({ length: 8 }, () => Client.connect(s.tcpAddr!)))
    for (const c of clients) await roundTrip(c)
    await Bun.sleep(50)
    const payloads = clients.map(() => randomBytes(256 << 10))
    clients.forEach((c, i) => void c.write(payloads[i]!))
    const echoed = await Promise.all(clients.map((c, i) => c.readExactly(payloads[i]!.length, 10_000)))
    echoed.forEach((e, i) => expect(e.equals(payloads[i]!)).toBe(true))
    await Bun.sleep(50)
    const stream = randomBytes(32 << 20)
    void clients[0]!.write(stream)
    expect((await clients[0]!.readExactly(stream.length, 20_000)).equals(stream)).toBe(true)
    await withBaseline("tcp", async (addr) => {
      const reference = await Client.connect(addr)
      expectNearBaseline(await afterSilences(50, 5, () => roundTrip(clients[0]!), () => roundTrip(reference)), s)
      reference.end()
    })
    for (const c of clients) c.end()
  })

  test("a reply after a long await chain goes out at once, not at the worker's next tick", async () => {
    // One-byte round trips to it and to a plain echo, alternated, so that a slow moment
    // of the machine lands on both: waiting for the loop's 1 ms tick would add about
    // 0.5 ms to the median of the differences.
    const [deep, plain] = await Promise.all([serve("deep_await"), serve("echo")].map(async (s) => Client.connect((await s).tcpAddr!)))
    const differences: number[] = []
    for (let i = 0; i < 300; i++) differences.push((await roundTrip(deep!)) - (await roundTrip(plain!)))
    deep!.end()
    plain!.end()
    expect(median(differences)).toBeLessThan(0.25)
  })

  test("shutdownWrite gives the peer EOF while reading goes on", async () => {
    const s = await serve("shutdown_write")
    const c = await Client.connect(s.tcpAddr!)
    expect((await c.readToEnd()).toString()).toBe("greeting")
    expect(c.closed).toBe(false)
    await c.write("still listening")
    c.end()
    for (let i = 0; i < 100 && s.metrics().bytesReceived < 15; i++) await Bun.sleep(10)
    expect(s.metrics().bytesReceived).toBe(15)
  })

  test("100 coalesced sends keep their order", async () => {
    const s = await serve("numbered_lines")
    const c = await Client.connect(s.tcpAddr!)
    const text = (await c.readToEnd()).toString()
    expect(text).toBe(Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join(""))
  })

  test("send pool exhaustion gives SendError ENOBUFS and corrupts nothing", async () => {
    const s = await serve("pool_exhaust", (c) => {
      c.sendCopyCount = 4
      c.sendCopySlotSize = 1024
    })
    const c = await Client.connect(s.tcpAddr!)
    await Bun.sleep(100) // a client that is not reading yet
    const all = await c.readToEnd()
    const trailer = all.subarray(all.lastIndexOf("RESULT")).toString()
    const [, code, count] = trailer.trim().split(" ")
    expect(code).toBe("ENOBUFS")
    expect(Number(count)).toBe(4)
    const body = all.subarray(0, all.lastIndexOf("RESULT"))
    expect(body.length).toBe(4 * 1024)
    for (let i = 0; i < 4; i++) expect(body.subarray(i * 1024, (i + 1) * 1024).every((b) => b === i)).toBe(true)
    expect(s.metrics().sendPoolExhausted).toBeGreaterThanOrEqual(1)
  })

  test("a send larger than the whole pool is refused whole (ENOBUFS), none of it written, and the next send goes out intact", async () => {
    const s = await serve("big_refused", (c) => {
      c.sendCopyCount = 4
      c.sendCopySlotSize = 16 * 1024
    })
    const c = await Client.connect(s.tcpAddr!)
    const all = await c.readToEnd()
    const at = all.lastIndexOf("RESULT")
    expect(all.subarray(at).toString()).toBe("RESULT ENOBUFS\n")
    expect(at).toBe(48 * 1024)
    expect(all.subarray(0, at).every((b) => b === 2)).toBe(true)
  })

  test("buffer ring exhaustion (4 buffers, 8 connections) still echoes byte-exact", async () => {
    const s = await serve("stream_echo", (c) => {
      c.recvBuffer.ringSize = 4
      c.recvBuffer.bufferSize = 1024
    })
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => echoOnce(s.tcpAddr!, pattern(64 * 1024, i))))
    replies.forEach((r, i) => expect(r.equals(Buffer.from(pattern(64 * 1024, i)))).toBe(true))
  })

  test("two workers serve the connections", async () => {
    const s = await serve("worker_id", (c) => (c.worker.threads = 2))
    const seen = new Set<string>()
    const clients = await Promise.all(Array.from({ length: 32 }, () => Client.connect(s.tcpAddr!)))
    for (const c of clients) {
      const line = (await c.readExactly(9)).toString()
      seen.add(line)
      await c.write("ping")
      expect((await c.readExactly(4)).toString()).toBe("ping")
      c.end()
    }
    expect([...seen].sort()).toEqual(["worker:0\n", "worker:1\n"])
  })

  test("requestShutdown from a handler stops only its own worker; the other keeps serving", async () => {
    const s = await serve("worker_id", (c) => (c.worker.threads = 2))
    let onWorker0: Client | null = null
    for (let i = 0; i < 64 && onWorker0 === null; i++) {
      const c = await Client.connect(s.tcpAddr!)
      if ((await c.readExactly(9)).toString() === "worker:0\n") onWorker0 = c
      else c.end()
    }
    expect(onWorker0).not.toBeNull()
    await onWorker0!.write("stop")
    onWorker0!.end()
    const stopped = await Promise.race([s.handles.find((h) => h.workerId === 0)!.join().then(() => true), Bun.sleep(5000).then(() => false)])
    expect(stopped).toBe(true)
    for (let i = 0; i < 8; i++) {
      const c = await Client.connect(s.tcpAddr!)
      expect((await c.readExactly(9)).toString()).toBe("worker:1\n")
      await c.write("ping")
      expect((await c.readExactly(4)).toString()).toBe("ping")
      c.end()
    }
  })

  test("bound port 0 is reported and accepts connections", async () => {
    const s = await serve("echo")
    expect(s.tcpAddr).toMatch(/^127\.0\.0\.1:[1-9]\d*$/)
    expect(s.handles.length).toBe(1)
    expect((await echoOnce(s.tcpAddr!, new TextEncoder().encode("port"))).toString()).toBe("port")
  })

  test("IPv6 listener", async () => {
    const s = await new RinglineBuilder(testConfig()).bind("[::1]:0").launch(fixture("echo"))
    servers.push(s)
    expect(s.tcpAddr).toMatch(/^\[::1\]:\d+$/)
    expect((await echoOnce(s.tcpAddr!, new TextEncoder().encode("v6"))).toString()).toBe("v6")
  })

  test("a handler that throws closes its connection only; the worker lives", async () => {
    const s = await serve("thrower")
    const c = await Client.connect(s.tcpAddr!)
    await c.write("boom")
    await c.until(() => c.closed || c.ended, "the failing connection to close")
    expect((await echoOnce(s.tcpAddr!, new TextEncoder().encode("alive"))).toString()).toBe("alive")
    expect(s.metrics().handlerErrors).toBe(1)
  })

  test("unparsed bytes at EOF are shown once more with eof set", async () => {
    expect(await converse(await serve("line_parser"), "a\nb\npartial")).toBe("line:a\nline:b\neof:partial\n")
  })

  test("withEachData: lines already buffered, split across arrivals and left at EOF, in order from one call", async () => {
    const reply = await converse(await serve("each_lines"), "lines\na\nb", "\nc\nd\ntail")
    expect(reply).toBe("line:a\nline:b\nline:c\nline:d\neof:tail\ncalls:1\n")
  })

  test("withEachData: pause() keeps the unparsed bytes, resolves true, and the next call goes on from them", async () => {
    // A pause before each line after the first: 4 lines, 3 pauses, then the tail (after a pause too) at EOF.
    expect(await converse(await serve("each_lines"), "pause\n1\n2\n3\n4\nend")).toBe("line:1\nline:2\nline:3\nline:4\neof:end\nresumes:4\n")
  })

  test("withEachData: a parser that closes its connection ends the call (false) and drops what follows", async () => {
    const s = await serve("each_lines")
    const c = await Client.connect(s.tcpAddr!)
    await c.write("close\nx\nbye\nnever\n")
    expect((await c.readToEnd()).toString()).toBe("line:x\nline:bye\n")
    const report = await Client.connect(s.tcpAddr!)
    await report.write("report\n")
    expect((await report.readToEnd()).toString()).toBe("resolved:false\n")
  })

  test("an arrival sent back whole as it was received goes out without a copy (io_uring: from the lent receive buffer; portable: from Bun's)", async () => {
    const s = await serve("echo_whole")
    const c = await Client.connect(s.tcpAddr!)
    let sent = 0
    for (let i = 0; i < 20; i++) {
      const request = `request ${i} ${"y".repeat(i * 50)}\n` // one at a time: each arrives alone
      await c.write(request)
      expect((await c.readExactly(request.length)).toString()).toBe(request)
      sent += request.length
    }
    c.end()
    await c.readToEnd() // the server closes once its sends have completed (io_uring counts a send at its completion)
    const { bytesSent, bytesSentWithoutCopy } = s.metrics()
    expect(bytesSent).toBe(sent)
    expect(bytesSentWithoutCopy).toBe(sent)
  })

  test("an arrival sent back whole, then a large send and a close of the handler's own in the same parser call: all in order", async () => {
    const s = await serve("echo_whole")
    const c = await Client.connect(s.tcpAddr!)
    await c.write("abc big\n")
    expect((await c.readExactly(8 + 20_000)).toString()).toBe(`abc big\n${"#".repeat(20_000)}`)
    await c.write("bye\n")
    expect((await c.readToEnd()).toString()).toBe("bye\n|")
  })

  test("withData refuses a parser's pause() with an error that names withEachData", async () => {
    const reply = await converse(await serve("each_lines"), "misuse\nz")
    expect(reply).toStartWith("error:connection")
    expect(reply).toContain("ParseResult.pause() is for withEachData")
  })

  test("sends on a closed connection throw SendError ENOTCONN", async () => {
    const s = await serve("closed_sends")
    const first = await Client.connect(s.tcpAddr!)
    await first.until(() => first.closed || first.ended, "the server to close")
    const second = await Client.connect(s.tcpAddr!)
    expect((await second.readToEnd()).toString()).toBe("code:ENOTCONN\n")
  })

  // A slot's send queue and receive buffer go to its next connection (fresh ones cost
  // more at connection rates); a closed connection that handler code still holds must
  // see none of the next one's bytes, and its calls must not reach the next one's queue.
  test("a closed connection still held by handler code sees nothing of the next connection on its slot, and cannot send into it", async () => {
    const conns: ConnCtx[] = []
    const closed: number[] = []
    let releaseSecond = () => {}
    const secondMayRead = new Promise<void>((r) => (releaseSecond = r))
    class Keeper implements AsyncEventHandler {
      static createForWorker(): Keeper {
        return new Keeper()
      }
      async onAccept(conn: ConnCtx): Promise<void> {
        conns.push(conn)
        if (conns.length === 2) await secondMayRead // its bytes stay buffered meanwhile
        const echo = (d: Uint8Array) => (conn.sendNowait(d), ParseResult.consumed(d.length))
        while ((await conn.withData(echo)) > 0);
      }
      onClose(conn: ConnCtx): void {
        closed.push(conn.id)
      }
    }
    const s = await launch(Keeper) // inline: the test holds the ConnCtx objects
    servers.push(s)
    const a = await Client.connect(s.tcpAddr!)
    await a.write("first")
    expect((await a.readExactly(5)).toString()).toBe("first")
    a.end()
    await a.until(() => a.ended, "the server to close the first connection")
    for (let i = 0; i < 200 && closed.length === 0; i++) await Bun.sleep(5)
    expect(closed).toEqual([conns[0]!.id]) // its slot is free

    const b = await Client.connect(s.tcpAddr!)
    await b.write("second")
    for (let i = 0; i < 200 && (conns.length < 2 || conns[1]!.buffered < 6); i++) await Bun.sleep(5)
    const [first, second] = conns as [ConnCtx, ConnCtx]
    expect(second.slot).toBe(first.slot) // the same slot, so its queues passed on
    expect(second.buffered).toBe(6)
    expect(first.buffered).toBe(0)
    let shown = ""
    expect(await first.withData((d) => ((shown += new TextDecoder().decode(d)), ParseResult.consumed(d.length)))).toBe(0)
    expect(shown).toBe("")
    expect(() => first.sendNowait(new TextEncoder().encode("stale"))).toThrow(SendError)
    expect(first.sendQueued).toBe(0)
    releaseSecond()
    expect((await b.readExactly(6)).toString()).toBe("second")
    b.end()
    expect((await b.readToEnd()).length).toBe(0)
  })

  test("bytes dropped by abort() are returned by it and counted in unsentBytesAtClose: a queued send, and an arrival sent back from inside its parser", async () => {
    const returned: number[] = []
    class Aborter implements AsyncEventHandler {
      static createForWorker(): Aborter {
        return new Aborter()
      }
      async onAccept(conn: ConnCtx): Promise<void> {
        const first = await conn.withData((d) => ParseResult.consumed(d.length))
        if (first === 1) {
          conn.sendNowait(new Uint8Array(100).fill(65)) // small: queued on both backends, not yet written
          returned.push(conn.abort("ECONNABORTED"))
          return
        }
        // A second look: the arrival sent back whole (lent on io_uring, held on portable), then aborted in the parser.
        await conn.withData((d) => (conn.sendNowait(d), returned.push(conn.abort("ECONNABORTED")), ParseResult.consumed(d.length)))
      }
    }
    const s = await launch(Aborter)
    servers.push(s)
    const a = await Client.connect(s.tcpAddr!)
    await a.write("x")
    expect((await a.readToEnd().catch(() => Buffer.alloc(0))).length).toBe(0) // nothing of the 100 bytes
    expect(returned).toEqual([100])
    const b = await Client.connect(s.tcpAddr!)
    await b.write("xx")
    // "xx" has arrived, and the first look consumed it, before "second" is sent: the second look waits for that.
    for (let i = 0; i < 200 && s.metrics().bytesReceived < 3; i++) await Bun.sleep(5)
    await b.write("second")
    expect((await b.readToEnd().catch(() => Buffer.alloc(0))).length).toBe(0)
    for (let i = 0; i < 100 && s.metrics().unsentBytesAtClose < 106; i++) await Bun.sleep(5)
    expect(s.metrics().unsentBytesAtClose).toBe(106)
    expect(returned).toEqual([100, 6]) // abort() returns what it dropped, the held arrival included
  })

  test("send() resolves per send and the bytes arrive in order", async () => {
    const s = await serve("send_tokens")
    const c = await Client.connect(s.tcpAddr!)
    const text = (await c.readToEnd()).toString()
    expect(text).toBe(`${"a".repeat(50_000)}${"b".repeat(50_000)}cdone`)
  })

  test("small and large sends mixed through sendNowait, send() and writeAll arrive in order, byte-exact, past a reader that stalls", async () => {
    const { MIXED_CHUNKS, mixedChunk } = await import("./fixtures/mixed_sends")
    const s = await serve("mixed_sends", (c) => (c.sendHighWater = 64 * 1024))
    const c = await Client.connect(s.tcpAddr!)
    c.socket.pause() // the kernel's buffers fill: later sends queue behind earlier ones
    await Bun.sleep(100)
    c.socket.resume()
    const got = await c.readToEnd(20_000)
    const want = Buffer.concat(Array.from({ length: MIXED_CHUNKS }, (_, i) => mixedChunk(i)))
    expect(got.length).toBe(want.length)
    expect(got.equals(want)).toBe(true)
  })

  test("ConnStream Web Streams echo", async () => {
    const s = await serve("web_streams")
    const payload = pattern(100_000, 3)
    expect((await echoOnce(s.tcpAddr!, payload)).equals(Buffer.from(payload))).toBe(true)
  })

  test("ConnStream for-await echo", async () => {
    const s = await serve("iterate_echo")
    const payload = pattern(100_000, 5)
    expect((await echoOnce(s.tcpAddr!, payload)).equals(Buffer.from(payload))).toBe(true)
  })

  test("a full worker refuses connections and counts them; others keep being served", async () => {
    const s = await serve("echo", (c) => (c.maxConnections = 2))
    const held = await Promise.all([Client.connect(s.tcpAddr!), Client.connect(s.tcpAddr!)])
    for (const h of held) {
      await h.write("x")
      await h.readExactly(1)
    }
    // The third is refused: closed at once (the client may see the reset during connect).
    const [host, port] = [s.tcpAddr!.split(":")[0]!, Number(s.tcpAddr!.split(":")[1])]
    await new Promise<void>((resolve) => {
      const third = net.connect(port, host)
      third.on("error", () => resolve())
      third.on("close", () => resolve())
    })
    for (let i = 0; i < 100 && s.metrics().connectionsRefused < 1; i++) await Bun.sleep(10)
    expect(s.metrics().connectionsRefused).toBe(1)
    held[0]!.end()
    await held[0]!.until(() => held[0]!.closed || held[0]!.ended, "the first connection to close")
    for (let i = 0; i < 100 && s.metrics().connectionsActive > 1; i++) await Bun.sleep(10)
    expect((await echoOnce(s.tcpAddr!, new TextEncoder().encode("room again"))).toString()).toBe("room again")
    held[1]!.end()
  })

  test("sockets go back to the system: no fd the server opened is left after 200 closed connections, nor after a shutdown with paused ones open", async () => {
    // What each fd is (a socket's inode, "anon_inode:[io_uring]", ...) by count: an fd of ours
    // left open shows as one more than before. Other fds of this process closing meanwhile
    // (an earlier test's sockets) must not count, so this is not a plain fd count.
    const fds = () => {
      const open = new Map<string, number>()
      for (const fd of readdirSync("/proc/self/fd")) {
        let target: string
        try {
          target = readlinkSync(`/proc/self/fd/${fd}`)
        } catch {
          continue // the directory's own fd, closed by now
        }
        open.set(target, (open.get(target) ?? 0) + 1)
      }
      return open
    }
    const beyond = (base: Map<string, number>) => [...fds()].filter(([target, n]) => n > (base.get(target) ?? 0)).map(([target]) => target)
    const settle = async (base: Map<string, number>) => {
      for (let i = 0; i < 200 && beyond(base).length > 0; i++) await Bun.sleep(10)
      return beyond(base)
    }
    const before = fds()
    const echo = await serve("echo")
    const launched = fds()
    for (let i = 0; i < 200; i++) expect((await echoOnce(echo.tcpAddr!, pattern(100, i))).length).toBe(100)
    for (let i = 0; i < 200 && echo.metrics().connectionsClosed < 200; i++) await Bun.sleep(10)
    expect(echo.metrics().connectionsClosed).toBe(200)
    expect(await settle(launched)).toEqual([])
    await echo.stop()
    servers = []
    expect(await settle(before)).toEqual([])

    // Paused receives (nothing in flight on those fds) when the shutdown closes them.
    const s = await serve("late_reader", (c) => (c.recvHighWater = 64 * 1024))
    const held = await Promise.all(Array.from({ length: 4 }, () => Client.connect(s.tcpAddr!)))
    for (const h of held) void h.write(pattern(1 << 20))
    for (let i = 0; i < 200 && s.metrics().recvPauses < 4; i++) await Bun.sleep(5)
    expect(s.metrics().recvPauses).toBe(4)
    await s.stop()
    servers = []
    for (const h of held) h.destroy()
    expect(await settle(before)).toEqual([])
  })
})

describe("onData (connections served from the receive path, no task each)", () => {
  /** A server of tests/fixtures/on_data.ts's DataLines, stopped after the test. */
  const linesServer = async (mutate?: (c: Config) => void): Promise<Server> => {
    const s = await new RinglineBuilder(testConfig(mutate)).bind("127.0.0.1:0").launch(fixture("on_data"), "DataLines")
    servers.push(s) // (a test that stops it itself leaves stop() a no-op)
    return s
  }
  /** Sends a line and returns the answer's text. */
  const ask = async (c: Client, line: string): Promise<string> => {
    await c.write(`${line}\n`)
    return (await c.readExactly(`line:${line}\n`.length)).toString()
  }

  test("echo of 8 connections at once, 256 KiB each, byte-exact; each closes after its peer's end of stream", async () => {
    const s = await serve("on_data")
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => echoOnce(s.tcpAddr!, pattern(256 * 1024, i))))
    for (const [i, r] of replies.entries()) expect(r.equals(Buffer.from(pattern(256 * 1024, i)))).toBe(true)
    for (let i = 0; i < 200 && s.metrics().connectionsClosed < 8; i++) await Bun.sleep(5)
    expect(s.metrics().connectionsClosed).toBe(8)
    expect(s.metrics().handlerErrors).toBe(0)
  })

  test("32 MiB past a stalled reader: byte-exact, the parser paused for send room and was called again", async () => {
    const { default: DataEcho } = await import("./fixtures/on_data")
    DataEcho.pauses = 0
    const s = await launch(DataEcho, (c) => (c.sendHighWater = 64 * 1024)) // inline: the test reads DataEcho.pauses
    servers.push(s)
    const payload = randomBytes(32 << 20)
    const c = await Client.connect(s.tcpAddr!)
    void c.write(payload)
    c.socket.pause()
    await Bun.sleep(200)
    c.socket.resume()
    expect((await c.readExactly(payload.length, 20_000)).equals(payload)).toBe(true)
    c.end()
    expect(DataEcho.pauses).toBeGreaterThan(0)
    expect(s.metrics().bytesSent).toBe(payload.length)
  })

  test("unparsed bytes at end of stream get a last look with eof set, and the answer drains before the close", async () => {
    const s = await linesServer()
    expect(await converse(s, "a\nb\npartial")).toBe("line:a\nline:b\neof:partial\n")
  })

  test("a throw, or pause() while it can send, counts a handler error and closes that connection only", async () => {
    const s = await linesServer()
    for (const [line, errors] of [["boom", 1], ["pause", 2]] as const) {
      const c = await Client.connect(s.tcpAddr!)
      await c.write(`${line}\n`)
      await c.until(() => c.closed || c.ended, `the connection that sent "${line}" to close`)
      expect(s.metrics().handlerErrors).toBe(errors)
    }
    expect(await converse(s, "alive\n")).toBe("line:alive\n")
  })

  test("connections reset by their peers give their slots back once each: the full table serves again", async () => {
    const s = await linesServer((c) => (c.maxConnections = 4))
    const settled = async (field: "bytesReceived" | "connectionsClosed", want: number) => {
      for (let j = 0; j < 400 && s.metrics()[field] < want; j++) await Bun.sleep(5)
      expect(s.metrics()[field]).toBe(want)
    }
    for (let i = 1; i <= 6; i++) {
      const c = await Client.connect(s.tcpAddr!)
      await c.write("unterminated")
      await settled("bytesReceived", 12 * i) // served: the connection holds a slot
      c.socket.resetAndDestroy()
      await settled("connectionsClosed", i) // its slot released once
    }
    const clients = await Promise.all(Array.from({ length: 4 }, () => Client.connect(s.tcpAddr!)))
    const answers = await Promise.all(clients.map((c, i) => ask(c, `c${i}`)))
    expect(answers).toEqual(["line:c0\n", "line:c1\n", "line:c2\n", "line:c3\n"])
    for (const c of clients) c.end()
  })

  test("graceful shutdown waits for an onData connection until its peer closes, and it is served meanwhile", async () => {
    const s = await linesServer((c) => (c.shutdownTimeoutMs = 10_000))
    const c = await Client.connect(s.tcpAddr!)
    expect(await ask(c, "before")).toBe("line:before\n")
    s.shutdown.shutdown()
    let joined = false
    const join = Promise.all(s.handles.map((h) => h.join())).then((r) => ((joined = true), r))
    await Bun.sleep(100)
    expect(joined).toBe(false)
    expect(await ask(c, "during")).toBe("line:during\n")
    c.end()
    const reports = await join
    expect(reports.reduce((n, r) => n + r.abortedConnections, 0)).toBe(0)
  })

  test("onData may close its connection: the answer drains first, and shutdown then has nothing to wait for", async () => {
    const s = await linesServer((c) => (c.shutdownTimeoutMs = 10_000))
    const c = await Client.connect(s.tcpAddr!)
    await c.write("hi\nbye\nignored\n")
    expect((await c.readToEnd()).toString()).toBe("line:hi\nline:bye\n")
    for (let i = 0; i < 200 && s.metrics().connectionsClosed < 1; i++) await Bun.sleep(5)
    const t = performance.now()
    s.shutdown.shutdown()
    const reports = await Promise.all(s.handles.map((h) => h.join()))
    expect(performance.now() - t).toBeLessThan(2_000) // not the 10 s deadline: no handler is left running
    expect(reports.reduce((n, r) => n + r.abortedConnections, 0)).toBe(0)
    expect(s.metrics().handlerErrors).toBe(0)
  })

  test("at the shutdown deadline an onData connection is closed and reported; the worker stops", async () => {
    const s = await linesServer((c) => (c.shutdownTimeoutMs = 200))
    const c = await Client.connect(s.tcpAddr!)
    expect(await ask(c, "held")).toBe("line:held\n")
    await c.write("unterminated") // waits in the parser's buffer; its last look, at the abort, finds the connection unable to send
    for (let i = 0; i < 200 && s.metrics().bytesReceived < 17; i++) await Bun.sleep(5)
    s.shutdown.shutdown()
    const reports = await Promise.all(s.handles.map((h) => h.join()))
    expect(reports.reduce((n, r) => n + r.abortedConnections, 0)).toBe(1)
    await c.until(() => c.closed || c.ended, "the aborted connection to close")
    expect(s.metrics().handlerErrors).toBe(0)
  })

  test("a handler class with both onAccept and onData, or neither while TCP is bound, is refused at launch by name", async () => {
    class Both {
      static createForWorker(): Both {
        return new Both()
      }
      async onAccept(): Promise<void> {}
      onData(): ParseResult {
        return ParseResult.needMore()
      }
    }
    class Neither {
      static createForWorker(): Neither {
        return new Neither()
      }
    }
    await expect(launch(Both as unknown as HandlerClass)).rejects.toThrow(/Both defines both onAccept and onData/)
    await expect(launch(Neither as unknown as HandlerClass)).rejects.toThrow(/Neither defines neither onAccept nor onData, and a TCP address is bound/)
  })
})

describe("launch", () => {
  const bad: Array<[string, (c: Config) => void]> = [
    ["sqEntries", (c) => (c.sqEntries = 3)],
    ["recvBuffer.ringSize", (c) => (c.recvBuffer.ringSize = 0)],
    ["recvBuffer.bufferSize", (c) => (c.recvBuffer.bufferSize = 0)],
    ["udpRecvBuffer.bufferSize", (c) => (c.udpRecvBuffer.bufferSize = 100)],
    ["maxConnections", (c) => (c.maxConnections = 0)],
    ["sendCopyCount", (c) => (c.sendCopyCount = 0)],
    ["sendCopySlotSize", (c) => (c.sendCopySlotSize = 0)],
    ["timerSlots", (c) => (c.timerSlots = 0)],
    ["udpSendSlots", (c) => (c.udpSendSlots = 0)],
    ["backlog", (c) => (c.backlog = 0)],
    ["worker.threads", (c) => (c.worker.threads = -1)],
    ["recvAccumulatorMax", (c) => (c.recvAccumulatorMax = 100)],
    ["recvHighWater", (c) => (c.recvHighWater = 0)],
    ["sendHighWater", (c) => (c.sendHighWater = 0)],
    ["shutdownTimeoutMs", (c) => (c.shutdownTimeoutMs = 1.5)],
    ["wakeupWatchdogMs", (c) => (c.wakeupWatchdogMs = 0)],
    ["tcpNodelay", (c) => ((c as unknown as { tcpNodelay: string }).tcpNodelay = "yes")],
    ["backend", (c) => ((c as unknown as { backend: string }).backend = "nope")],
  ]
  for (const [field, breakIt] of bad) {
    test(`a bad ${field} is rejected with a ConfigError naming it`, async () => {
      const cfg = testConfig(breakIt)
      const attempt = new RinglineBuilder(cfg).bind("127.0.0.1:0").launch(fixture("echo"))
      const err = await attempt.then(() => null, (e: unknown) => e)
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).field).toBe(field)
      expect((err as ConfigError).message).toContain(field)
      expect((err as ConfigError).rule.length).toBeGreaterThan(5)
    })
  }

  test("a bind error rejects launch with EADDRINUSE and leaves nothing running", async () => {
    const blocker = net.createServer().listen(0, "127.0.0.1")
    await new Promise((r) => blocker.once("listening", r))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const attempt = new RinglineBuilder(testConfig((c) => (c.worker.threads = 2))).bind(`127.0.0.1:${port}`).launch(fixture("echo"))
      const err = await attempt.then(() => null, (e: unknown) => e)
      expect((err as { code?: string }).code).toBe("EADDRINUSE")
    } finally {
      blocker.close()
    }
  })

  test("a bad bind address names the address", async () => {
    const attempt = new RinglineBuilder(testConfig()).bind("256.0.0.1:80").launch(fixture("echo"))
    await expect(attempt).rejects.toThrow(/256\.0\.0\.1:80/)
  })

  test("a handler class without createForWorker, or a module export that is none, is named in the error", async () => {
    class NoFactory {
      async onAccept(): Promise<void> {}
    }
    const inline = new RinglineBuilder(testConfig()).bind("127.0.0.1:0").launch(NoFactory as unknown as HandlerClass)
    await expect(inline).rejects.toThrow(/launch: NoFactory is not a handler class with a static createForWorker/)
    const exported = new RinglineBuilder(testConfig()).bind("127.0.0.1:0").launch(fixture("echo"), "noSuchExport")
    await expect(exported).rejects.toThrow(/export "noSuchExport" is not a handler class/)
  })
})

describe("receive buffer", () => {
  // The accumulator both backends read through: lent segments (io_uring's provided
  // buffers) and copied ones, consumed by a reader that stays behind the stream.
  test("bytes come out in order and every lent buffer goes back once, with the reader always a few segments behind", () => {
    const released = new Map<number, number>()
    const lender = {
      release: (token: number) => void released.set(token, (released.get(token) ?? 0) + 1),
      retain: () => -1,
      slabOffset: () => 0,
    }
    const rx = new RecvBuffer(lender)
    const sent: number[] = []
    const seen: number[] = []
    let next = 0
    const segment = (n: number) => {
      const bytes = new Uint8Array(n)
      for (let i = 0; i < n; i++) bytes[i] = next++ & 0xff
      sent.push(...bytes)
      return bytes
    }
    const read = (max: number) => {
      const front = rx.front()
      const n = Math.min(max, front.length)
      seen.push(...front.subarray(0, n))
      rx.consume(n)
    }
    let token = 0
    for (let round = 0; round < 1000; round++) {
      rx.push(segment(1 + (round % 7)), round % 3 === 0 ? -1 : token++) // copied every third, else lent
      if (round >= 5) {
        // The oldest segment in two reads (a part, then the rest): five segments behind, never catching up.
        const oldest = rx.front().length
        read(1)
        read(oldest - 1)
      }
    }
    expect(rx.size).toBe(sent.length - seen.length)
    expect(rx.size).toBeGreaterThan(0)
    // Bounded: the segment list stays near what is unread instead of growing with the stream.
    expect((rx as unknown as { segs: unknown[] }).segs.length).toBeLessThan(100)
    rx.all() // what a parser asking for more than one segment sees: the rest, contiguous
    while (rx.size > 0) read(1 << 20)
    read(0) // nothing left: consuming nothing is still allowed
    expect(seen).toEqual(sent)
    expect(released.size).toBe(token)
    expect([...released.values()].every((n) => n === 1)).toBe(true)
  })
})
