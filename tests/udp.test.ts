// UDP through ringline on whichever backend RINGLINE_BACKEND selects.
import { afterEach, describe, expect, test } from "bun:test"
import { afterSilences, backendUnderTest, expectNearBaseline, testConfig, withBaseline } from "./helpers"
import { Config, RinglineBuilder, sleep, UdpSendError, type AsyncEventHandler, type DatagramFn, type PeerAddress, type Server, type UdpCtx } from "../src/index"
import { UdpClient } from "./udp_client"

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url)
let servers: Server[] = []
let clients: UdpClient[] = []

function udpConfig(mutate?: (c: Config) => void): Config {
  return testConfig((c) => {
    c.shutdownTimeoutMs = 1000
    mutate?.(c)
  })
}

async function launchUdp(name: string, addr = "127.0.0.1:0", mutate?: (c: Config) => void): Promise<Server> {
  const server = await new RinglineBuilder(udpConfig(mutate)).bindUdp(addr).launch(fixture(name))
  servers.push(server)
  return server
}

async function client(family: "udp4" | "udp6" = "udp4"): Promise<UdpClient> {
  const c = await UdpClient.open(family)
  clients.push(c)
  return c
}

afterEach(async () => {
  for (const c of clients) c.close()
  await Promise.all(servers.map((s) => s.stop()))
  servers = []
  clients = []
})

const text = (b: Buffer) => b.toString()

/** One "x" to `addr` and its echo back: the round trip in ms. */
async function timedRequest(c: UdpClient, addr: string): Promise<number> {
  const t = performance.now()
  expect(text(await c.request(addr, "x"))).toBe("x")
  return performance.now() - t
}

/** An inline handler class (launched on this thread) whose only work is `onUdpBind`. */
function udpHandler(onUdpBind: (udp: UdpCtx) => Promise<void>) {
  return class implements AsyncEventHandler {
    static createForWorker(): AsyncEventHandler {
      return new this()
    }
    async onAccept(): Promise<void> {}
    onUdpBind = onUdpBind
  }
}

/**
 * Launches an inline handler that runs one consumer after another, made by `consume`
 * with a callback that throws on "throw", and answers each consumer's last sender with
 * how it ended: "ended:<value>" or "rejected:<message>".
 */
async function launchThrower(consume: (udp: UdpCtx, fn: DatagramFn) => Promise<unknown>): Promise<Server> {
  const Thrower = udpHandler(async (udp) => {
    for (;;) {
      let peer: PeerAddress | null = null
      const outcome = await consume(udp, (d, p) => {
        peer = p
        if (new TextDecoder().decode(d) === "throw") throw new Error("handler said no")
      }).then((v) => `ended:${v}`, (e: Error) => `rejected:${e.message}`)
      udp.sendTo(peer!, new TextEncoder().encode(outcome))
    }
  })
  const server = await new RinglineBuilder(udpConfig()).bindUdp("127.0.0.1:0").launch(Thrower)
  servers.push(server)
  return server
}

describe("udp", () => {
  test("launch reports the bound UDP address with a real port", async () => {
    const server = await launchUdp("udp_echo")
    expect(server.udpAddr).toMatch(/^127\.0\.0\.1:[1-9]\d*$/)
  })

  test("echoes an empty, a 1-byte and a max-size datagram", async () => {
    const server = await launchUdp("udp_echo")
    const c = await client()
    const max = Config.default().udpRecvBuffer.bufferSize - 44
    for (const size of [0, 1, max]) {
      const payload = Buffer.alloc(size, 0x5a)
      if (size > 0) payload[size - 1] = 7
      const reply = await c.request(server.udpAddr!, payload)
      expect(reply.length).toBe(size)
      expect(reply.equals(payload)).toBe(true)
    }
  })

  test("a datagram after a 200 ms silence is answered within 5 ms of a plain Bun server after the same silence", async () => {
    // A parked io_uring worker is woken by its doorbell, which watches the UDP socket (see tcp.test.ts).
    const server = await launchUdp("udp_echo")
    const c = await client()
    await withBaseline("udp", async (addr) => expectNearBaseline(await afterSilences(200, 10, () => timedRequest(c, server.udpAddr!), () => timedRequest(c, addr)), server))
  })

  test("a datagram after a busy spell and a silence is answered within 5 ms of a plain Bun server after the same silence", async () => {
    // A busy io_uring worker takes its sockets out of its doorbell and puts them back as it parks (see tcp.test.ts).
    const server = await launchUdp("udp_echo")
    const c = await client()
    const spell = async () => {
      const until = performance.now() + 300
      while (performance.now() < until) expect(text(await c.request(server.udpAddr!, "busy"))).toBe("busy")
    }
    await withBaseline("udp", async (addr) => expectNearBaseline(await afterSilences(30, 3, () => timedRequest(c, server.udpAddr!), () => timedRequest(c, addr), spell), server))
  })

  test("a datagram over the receive limit is dropped and counted, and the socket goes on", async () => {
    const server = await launchUdp("udp_echo")
    const c = await client()
    const max = Config.default().udpRecvBuffer.bufferSize - 44
    c.send(server.udpAddr!, Buffer.alloc(max + 100, 1))
    expect(text(await c.request(server.udpAddr!, "after"))).toBe("after")
    expect(server.metrics().datagramsDropped).toBe(1)
  })

  test("works over IPv6", async () => {
    const server = await launchUdp("udp_echo", "[::1]:0")
    expect(server.udpAddr).toMatch(/^\[::1\]:\d+$/)
    const c = await client("udp6")
    expect(text(await c.request(server.udpAddr!, "six"))).toBe("six")
  })

  // Bun.udpSocket has no SO_REUSEPORT, so the portable backend binds UDP in worker 0 only
  // (the README's backend table); what each backend promises is checked on each.
  test("two workers: on io_uring both receive as peers spread (SO_REUSEPORT); on portable worker 0 answers every peer", async () => {
    const server = await launchUdp("udp_probe", "127.0.0.1:0", (c) => (c.worker.threads = 2))
    const replies: string[] = []
    for (let i = 0; i < 24; i++) {
      const c = await client() // each client has its own port, so SO_REUSEPORT spreads them
      replies.push(text(await c.request(server.udpAddr!, "who")))
    }
    expect(replies).toHaveLength(24)
    const workers = [...new Set(replies)].sort()
    expect(workers).toEqual(backendUnderTest === "io_uring" ? ["worker:0", "worker:1"] : ["worker:0"])
  })

  test("a flood beyond the receive queue keeps memory bounded and counts the drops", async () => {
    const capacity = 16
    const server = await launchUdp("udp_probe", "127.0.0.1:0", (c) => (c.udpRecvQueueCapacity = capacity))
    const c = await client()
    c.send(server.udpAddr!, "slow:300") // the handler stops reading for 300 ms
    await Bun.sleep(50)
    const flood = 200
    for (let i = 0; i < flood; i++) c.send(server.udpAddr!, `f${i}`)
    const done = text(await c.recv(3000))
    const [, queued, dropped] = done.split(":").map(Number)
    expect(queued).toBeLessThanOrEqual(capacity)
    expect(dropped).toBeGreaterThan(0)
    // Every flood datagram was either queued (and is echoed now) or counted as dropped.
    const echoed: string[] = []
    for (;;) {
      try {
        echoed.push(text(await c.recv(500)))
      } catch {
        break
      }
    }
    expect(echoed.length).toBe(queued!)
    expect(echoed.length + dropped!).toBeLessThanOrEqual(flood)
    expect(server.metrics().datagramsDropped).toBe(dropped!)
  })

  test("a sendTo burst beyond udpSendSlots gives PoolExhausted, then sendReady recovers", async () => {
    const slots = 4
    const server = await launchUdp("udp_probe", "127.0.0.1:0", (c) => (c.udpSendSlots = slots))
    const c = await client()
    c.send(server.udpAddr!, "burst:5000")
    const got: string[] = []
    let result = ""
    while (result === "") {
      const d = text(await c.recv(3000))
      if (d.startsWith("burst-result:")) result = d
      else got.push(d)
    }
    const [, sent, kind] = result.split(":")
    // On io_uring the slots stay busy until the kernel completes the sends; on
    // portable until Bun's socket accepts them — either way the burst hits the bound.
    expect(kind).toBe("PoolExhausted")
    expect(Number(sent)).toBeGreaterThanOrEqual(slots)
    expect(Number(sent)).toBeLessThan(5000)
    for (let i = got.length; i < Number(sent); i++) got.push(text(await c.recv(2000)))
    expect(got).toEqual(Array.from({ length: Number(sent) }, (_, i) => `b${i}`))
    expect(text(await c.request(server.udpAddr!, "still-there"))).toBe("still-there")
  })

  test("replies to a burst all arrive in order, and a send the kernel refuses mid-burst is counted without losing the rest", async () => {
    const server = await launchUdp("udp_probe")
    const [host, port] = [server.udpAddr!.split(":")[0]!, Number(server.udpAddr!.split(":")[1])]
    const got: string[] = []
    const c = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0, socket: { data: (_s, d) => void got.push(Buffer.from(d).toString()) } })
    try {
      // While the worker is stalled the burst waits in the kernel: it is then read in
      // batches, back to back, and the replies go out as bursts. Three rounds: the
      // first may run cold code too slowly to count as a burst.
      for (let round = 1; round <= 3; round++) {
        got.length = 0
        c.send("stall:50", port, host)
        await sleep(10)
        const cmds = Array.from({ length: 60 }, (_, i) => (i % 10 === 5 ? "v6" : `e${i}`))
        expect(c.sendMany(cmds.flatMap((cmd) => [cmd, port, host]))).toBe(cmds.length)
        const echoes = cmds.filter((cmd) => cmd !== "v6")
        for (let waited = 0; got.length < echoes.length && waited < 3000; waited += 10) await sleep(10)
        expect(got).toEqual(echoes)
        // A refused send is counted when its completion is reaped, which may come after the client has the echoes.
        const refused = round * (cmds.length - echoes.length)
        for (let waited = 0; server.metrics().udpSendErrors < refused && waited < 3000; waited += 10) await sleep(10)
        expect(server.metrics().udpSendErrors).toBe(refused)
      }
    } finally {
      c.close()
    }
  })

  test("a peer that vanished (ICMP port unreachable) does not break the socket", async () => {
    const server = await launchUdp("udp_echo")
    const [host, port] = [server.udpAddr!.split(":")[0]!, Number(server.udpAddr!.split(":")[1])]
    for (let i = 0; i < 5; i++) {
      const gone = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 })
      for (let k = 0; k < 20; k++) gone.send("reply to nobody", port, host)
      gone.close() // the echoes hit a closed port; the kernel reports ECONNREFUSED on the server socket
    }
    await Bun.sleep(50)
    const c = await client()
    expect(text(await c.request(server.udpAddr!, "still serving"))).toBe("still serving")
  })

  test("an oversize datagram gives InvalidInput and a bad peer gives InvalidInput", async () => {
    const server = await launchUdp("udp_probe")
    const c = await client()
    expect(text(await c.request(server.udpAddr!, "big"))).toBe("big:InvalidInput")
    expect(text(await c.request(server.udpAddr!, "badpeer"))).toBe("badpeer:InvalidInput")
  })

  test("a bad bind address is rejected with a clear error", async () => {
    const attempt = new RinglineBuilder(udpConfig()).bindUdp("not-an-address").launch(fixture("udp_echo"))
    await expect(attempt).rejects.toThrow(/not-an-address/)
  })

  test("after its worker shuts down, a handler's sleep and sendTo fail with clear errors", async () => {
    // Inline worker (the class itself): the thread lives on after the ring is torn down,
    // so these calls must be refused rather than touch freed native memory.
    const seen: string[] = []
    const Late = udpHandler(async (udp) => {
      await udp.recvFrom().catch(() => seen.push("recvFrom:rejected"))
      await sleep(10).catch((e: { code?: string }) => seen.push(`sleep:${e.code}`))
      try {
        udp.sendTo("127.0.0.1:9", new Uint8Array(1))
        seen.push("sendTo:accepted")
      } catch (e) {
        seen.push(`sendTo:${(e as UdpSendError).kind}`)
      }
    })
    const server = await new RinglineBuilder(udpConfig()).bindUdp("127.0.0.1:0").launch(Late)
    server.shutdown.shutdown()
    await Promise.all(server.handles.map((h) => h.join()))
    for (let i = 0; i < 50 && seen.length < 3; i++) await Bun.sleep(10)
    expect(seen).toEqual(["recvFrom:rejected", "sleep:ESHUTDOWN", "sendTo:Closed"])
  })

  test("recvBatch hands queued datagrams over in order; a second concurrent recvFrom is refused", async () => {
    const Batcher = udpHandler(async (udp) => {
      const first = udp.recvFrom()
      const second = await udp.recvFrom().then(() => "accepted", (e: Error) => (/already waiting/.test(e.message) ? "refused" : e.message))
      const [, peer] = await first
      await sleep(100) // the client's next datagrams queue meanwhile
      const got: string[] = []
      const n = await udp.recvBatch(16, (d) => got.push(new TextDecoder().decode(d)))
      udp.sendTo(peer, new TextEncoder().encode(`second:${second} batch:${n}:${got.join(",")}`))
    })
    const server = await new RinglineBuilder(udpConfig()).bindUdp("127.0.0.1:0").launch(Batcher)
    servers.push(server)
    const c = await client()
    const reply = c.request(server.udpAddr!, "first")
    await Bun.sleep(20)
    for (const m of ["b", "c", "d"]) c.send(server.udpAddr!, m)
    expect(text(await reply)).toBe("second:refused batch:3:b,c,d")
  })

  test("datagrams queued while the handler is busy arrive intact and in order, more of them than half the receive buffers; recvFrom's copies stay valid after those buffers are reused", async () => {
    // 200 datagrams queue while the handler sleeps: on io_uring, the first half of the buffer
    // ring (64 of 128) waits in the buffers themselves, the rest as copies. recvFrom copies the
    // first 100 out; 200 more datagrams then go through every buffer again.
    const decoder = new TextDecoder()
    const Holder = udpHandler(async (udp) => {
      const [, peer] = await udp.recvFrom() // "start"
      await sleep(150)
      const kept: Uint8Array[] = []
      for (let i = 0; i < 100; i++) kept.push((await udp.recvFrom())[0])
      const viewed: string[] = []
      while (viewed.length < 100) await udp.recvBatch(16, (d) => viewed.push(decoder.decode(d)))
      udp.sendTo(peer, new TextEncoder().encode("refill"))
      for (let refill = 0; refill < 200; ) refill += await udp.recvBatch(64, () => {})
      udp.sendTo(peer, new TextEncoder().encode(`${kept.map((d) => decoder.decode(d)).join(",")}|${viewed.join(",")}`))
    })
    const server = await new RinglineBuilder(udpConfig((c) => (c.udpRecvBuffer = { ringSize: 128, bufferSize: 2048 }))).bindUdp("127.0.0.1:0").launch(Holder)
    servers.push(server)
    const c = await client()
    c.send(server.udpAddr!, "start")
    await Bun.sleep(20)
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`)
    for (const m of sent) c.send(server.udpAddr!, m)
    expect(text(await c.recv(5000))).toBe("refill")
    for (let i = 0; i < 200; i++) c.send(server.udpAddr!, `z${i}`)
    expect(text(await c.recv(5000))).toBe(`${sent.slice(0, 100).join(",")}|${sent.slice(100).join(",")}`)
    expect(server.metrics().datagramsDropped).toBe(0)
  })

  test("recvBatch waiting for a datagram runs its callback on arrival; a throw from it rejects and the socket serves on", async () => {
    const server = await launchThrower((udp, fn) => udp.recvBatch(8, fn))
    const c = await client()
    expect(text(await c.request(server.udpAddr!, "throw"))).toBe("rejected:handler said no")
    expect(text(await c.request(server.udpAddr!, "fine"))).toBe("ended:1")
  })

  test("recvEach hands over the queued datagrams, then each arrival, from one call; fn returning false stops it, and later datagrams queue for the next consumer", async () => {
    const decoder = new TextDecoder()
    const Each = udpHandler(async (udp) => {
      const [, peer] = await udp.recvFrom() // "start"
      await sleep(100) // a, b, c queue meanwhile
      const got: string[] = []
      const each = udp.recvEach((d) => {
        got.push(decoder.decode(d))
        if (got[got.length - 1] === "stop") return false
      })
      const second = await udp.recvFrom().then(() => "accepted", (e: Error) => (/already waiting/.test(e.message) ? "refused" : e.message))
      const stopped = await each
      const [after] = await udp.recvFrom()
      udp.sendTo(peer, new TextEncoder().encode(`second:${second} stopped:${stopped} each:${got.join(",")} then:${decoder.decode(after)}`))
    })
    const server = await new RinglineBuilder(udpConfig()).bindUdp("127.0.0.1:0").launch(Each)
    servers.push(server)
    const c = await client()
    c.send(server.udpAddr!, "start")
    await Bun.sleep(20)
    for (const m of ["a", "b", "c"]) c.send(server.udpAddr!, m)
    await Bun.sleep(200) // recvEach is waiting now
    for (const m of ["d", "e", "stop", "after"]) c.send(server.udpAddr!, m)
    expect(text(await c.recv(5000))).toBe("second:refused stopped:true each:a,b,c,d,e,stop then:after")
  })

  test("recvEach echoes a flood of 4,000 datagrams through 128 receive buffers, every byte intact", async () => {
    const Echo = udpHandler(async (udp) => {
      await udp.recvEach((d, peer) => udp.sendTo(peer, d))
    })
    const server = await new RinglineBuilder(udpConfig((c) => (c.udpRecvBuffer = { ringSize: 128, bufferSize: 2048 }))).bindUdp("127.0.0.1:0").launch(Echo)
    servers.push(server)
    const c = await client()
    const sent: string[] = []
    const echoed: string[] = []
    for (let round = 0; round < 125; round++) {
      for (let k = 0; k < 32; k++) {
        const m = `${round}:${k}:${"x".repeat((round * 32 + k) % 1000)}`
        sent.push(m)
        c.send(server.udpAddr!, m)
      }
      for (let k = 0; k < 32; k++) echoed.push(text(await c.recv(5000)))
    }
    expect(echoed.sort()).toEqual(sent.sort())
    expect(server.metrics().datagramsDropped).toBe(0)
  })

  test("recvEach: a throw from fn rejects with it, and the socket serves the next consumer", async () => {
    // Each consumer takes one datagram: fn returning false ends recvEach with true.
    const server = await launchThrower((udp, fn) => udp.recvEach((d, p) => (fn(d, p), false)))
    const c = await client()
    expect(text(await c.request(server.udpAddr!, "throw"))).toBe("rejected:handler said no")
    expect(text(await c.request(server.udpAddr!, "fine"))).toBe("ended:true")
  })

  test("recvEach resolves false when its worker shuts down, and at once on a closed socket", async () => {
    const seen: string[] = []
    const Served = udpHandler(async (udp) => {
      seen.push(`running:${await udp.recvEach(() => {})}`)
      seen.push(`closed:${await udp.recvEach(() => {})}`)
    })
    const server = await new RinglineBuilder(udpConfig()).bindUdp("127.0.0.1:0").launch(Served)
    await Bun.sleep(20)
    server.shutdown.shutdown()
    await Promise.all(server.handles.map((h) => h.join()))
    for (let i = 0; i < 50 && seen.length < 2; i++) await Bun.sleep(10)
    expect(seen).toEqual(["running:false", "closed:false"])
  })
})

