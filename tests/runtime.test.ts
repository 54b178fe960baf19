// Clients, timers, tasks, notifications, unix sockets, idle timeout and metrics,
// on whichever backend RINGLINE_BACKEND selects.
import { afterEach, describe, expect, test } from "bun:test"
import { existsSync } from "node:fs"
import net from "node:net"
import { connect, ParseResult, RinglineBuilder, requestShutdown, type ConnCtx, sleep, sleepUntil, spawn, type AsyncEventHandler, type Config, type HandlerSpec, type Server } from "../src/index"
import { testConfig } from "./helpers"

const fixture = (name: string) => new URL(`./fixtures/${name}.ts`, import.meta.url)
let servers: Server[] = []
let cleanups: Array<() => void> = []

function config(mutate?: (c: Config) => void): Config {
  return testConfig((c) => {
    c.maxConnections = 256
    c.sendCopyCount = 256
    c.shutdownTimeoutMs = 1000
    mutate?.(c)
  })
}

async function launch(handler: HandlerSpec, mutate?: (c: Config) => void, bind = "127.0.0.1:0"): Promise<Server> {
  const server = await new RinglineBuilder(config(mutate)).bind(bind).launch(handler)
  servers.push(server)
  return server
}

afterEach(async () => {
  await Promise.all(servers.map((s) => s.stop()))
  for (const c of cleanups) c()
  servers = []
  cleanups = []
})

/** Connects to host:port or a unix path. */
function dial(addr: string): net.Socket {
  if (addr.startsWith("unix:")) return net.connect(addr.slice(5))
  const i = addr.lastIndexOf(":")
  return net.connect(Number(addr.slice(i + 1)), addr.slice(0, i).replace(/^\[|\]$/g, ""))
}

/** Sends one command line and resolves to the reply line (handles "." probes for timer-race). */
function ask(server: Server, command: string, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = dial(server.tcpAddr!)
    let buf = ""
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error(`no reply to "${command}" within ${ms} ms (got ${JSON.stringify(buf)})`))
    }, ms)
    sock.on("data", (d) => {
      buf += d.toString()
      while (buf.startsWith(".")) {
        buf = buf.slice(1)
        sock.write("x")
      }
      const nl = buf.indexOf("\n")
      if (nl >= 0) {
        clearTimeout(timer)
        sock.end()
        resolve(buf.slice(0, nl))
      }
    })
    sock.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    sock.write(`${command}\n`)
  })
}

/** A plain Bun.listen echo server (the peer for outbound tests); records what it received. */
async function echoTarget(): Promise<{ addr: string; received: string[]; connections: () => number; open: () => number }> {
  const received: string[] = []
  let connections = 0
  let open = 0
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    allowHalfOpen: true,
    socket: {
      open() {
        connections++
        open++
      },
      data(s, d) {
        received.push(d.toString())
        s.write(d)
      },
      end(s) {
        s.end()
      },
      close() {
        open--
      },
    },
  })
  cleanups.push(() => listener.stop(true))
  return { addr: `127.0.0.1:${listener.port}`, received, connections: () => connections, open: () => open }
}

/**
 * An address whose SYNs go unanswered: a listener that never accepts, its
 * accept queue already full (loopback only, no outside address involved).
 */
async function unansweredAddress(): Promise<string> {
  const py = "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)"
  const child = Bun.spawn(["python3", "-c", py], { stdout: "pipe" })
  cleanups.push(() => child.kill(9))
  const { value } = await child.stdout.getReader().read()
  const port = Number(new TextDecoder().decode(value).trim())
  for (let i = 0; i < 3; i++) {
    const filler = net.connect(port, "127.0.0.1")
    filler.on("error", () => undefined)
    cleanups.push(() => filler.destroy())
  }
  await Bun.sleep(100)
  return `127.0.0.1:${port}`
}

/** A port with nobody listening. */
async function closedPort(): Promise<string> {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } })
  const port = l.port
  l.stop(true)
  return `127.0.0.1:${port}`
}

describe("outbound connections", () => {
  test("outbound connect and echo through a backend", async () => {
    const target = await echoTarget()
    const server = await launch(fixture("scenarios"))
    expect(await ask(server, `connect-echo ${target.addr}`)).toBe("ok:hello through ringline")
  })

  test("connect refused gives ECONNREFUSED", async () => {
    const server = await launch(fixture("scenarios"))
    expect(await ask(server, `connect ${await closedPort()}`)).toBe("err:ECONNREFUSED")
  })

  test("a bad address gives EINVAL", async () => {
    const server = await launch(fixture("scenarios"))
    expect(await ask(server, "connect nowhere")).toBe("err:EINVAL")
  })

  test("a connect nobody answers gives ETIMEDOUT after timeoutMs, and abort gives AbortError", async () => {
    const target = await unansweredAddress()
    const server = await launch(fixture("scenarios"))
    const t = performance.now()
    expect(await ask(server, `connect ${target} 200`)).toBe("err:ETIMEDOUT")
    expect(performance.now() - t).toBeGreaterThanOrEqual(190)
    expect(await ask(server, `connect-abort ${target} 50`)).toBe("err:AbortError")
  })

  test("multiple outbound connections from one task", async () => {
    const target = await echoTarget()
    const server = await launch(fixture("scenarios"))
    expect(await ask(server, `multi ${target.addr} 5`)).toBe("ok:5")
    expect(target.connections()).toBe(5)
  })

  test("Promise.race of two connections settles with one of them", async () => {
    const a = await echoTarget()
    const b = await echoTarget()
    const server = await launch(fixture("scenarios"))
    expect(await ask(server, `race ${a.addr} ${b.addr}`)).toMatch(/^ok:[01]$/)
  })

  test("a connection its task leaves open is closed when the task ends", async () => {
    const target = await echoTarget()
    const server = await launch(fixture("scenarios"))
    expect(await ask(server, `leak ${target.addr}`)).toBe("ok")
    // The connect resolves at the handshake, possibly before the target has run its accept callback.
    for (let i = 0; i < 100 && (target.connections() === 0 || target.open() > 0); i++) await Bun.sleep(10)
    expect(target.connections()).toBe(1)
    expect(target.open()).toBe(0)
  })

  test("a connect begun while the worker shuts down is refused or ends with the worker; shutdown does not hang", async () => {
    // The deadline closes the held connection; its onClose connects while the worker tears down.
    const target = await echoTarget()
    const outcomes: string[] = []
    class ConnectsOnClose implements AsyncEventHandler {
      static createForWorker(): ConnectsOnClose {
        return new ConnectsOnClose()
      }
      async onAccept(conn: ConnCtx): Promise<void> {
        while ((await conn.withData((d) => ParseResult.consumed(d.length))) > 0);
      }
      onClose(): void {
        connect(target.addr).then(
          async (c) => {
            outcomes.push("connected")
            outcomes.push(`read:${await c.withData((d) => ParseResult.consumed(d.length))}`)
          },
          (e: { code?: string }) => outcomes.push(`refused:${e.code}`),
        )
      }
    }
    const server = await launch(ConnectsOnClose, (c) => (c.shutdownTimeoutMs = 50))
    const held = dial(server.tcpAddr!)
    cleanups.push(() => held.destroy())
    await new Promise((r) => held.once("connect", r))
    await Bun.sleep(50)
    const joined = await Promise.race([server.stop().then(() => "stopped"), Bun.sleep(5000).then(() => "hung")])
    expect(joined).toBe("stopped")
    for (let i = 0; i < 50 && outcomes.length === 0; i++) await Bun.sleep(10)
    await Bun.sleep(50) // a connection made after all must end with the worker: its read resolves 0
    expect(["refused:ECANCELED", "connected,read:0"]).toContain(outcomes.join(","))
    for (let i = 0; i < 50 && target.open() > 0; i++) await Bun.sleep(10)
    expect(target.open()).toBe(0)
  })

  test("connect outside a worker rejects (it does not throw) and says where it must be called", async () => {
    const attempt = connect("127.0.0.1:9")
    await expect(attempt).rejects.toThrow(/connect\(\) must be called inside a ringline worker/)
  })

  test("client-only mode: onStart echoes, then requestShutdown stops the worker", async () => {
    const target = await echoTarget()
    const server = await new RinglineBuilder(config()).handlerData({ target: target.addr }).launch(fixture("client_only"))
    servers.push(server)
    expect(server.tcpAddr).toBeNull()
    const reports = await Promise.race([Promise.all(server.handles.map((h) => h.join())), Bun.sleep(5000).then(() => null)])
    expect(reports).not.toBeNull()
    expect(target.received.join("")).toContain("result:ping")
  })
})

describe("sending", () => {
  test("waitForSendRoom resolves at once when there is room (a loop that waits after every pause must not hang)", async () => {
    const server = await launch(fixture("scenarios"))
    expect(await ask(server, "send-room")).toBe("ok:true")
  })
})

describe("timers", () => {
  test("sleepUntil resolves no earlier than its deadline (a Date or epoch ms)", async () => {
    const marks: number[] = []
    class Until implements AsyncEventHandler {
      static createForWorker(): Until {
        return new Until()
      }
      async onAccept(): Promise<void> {}
      async onStart(): Promise<void> {
        const at = Date.now() + 40
        await sleepUntil(at)
        marks.push(Date.now() - at)
        const date = new Date(Date.now() + 20)
        await sleepUntil(date)
        marks.push(Date.now() - date.getTime())
        await sleepUntil(Date.now() - 1000) // already past: resolves at once
        marks.push(0)
        requestShutdown()
      }
    }
    const server = await new RinglineBuilder(config()).launch(Until)
    await Promise.all(server.handles.map((h) => h.join()))
    expect(marks.length).toBe(3)
    for (const late of marks) expect(late).toBeGreaterThanOrEqual(-1) // ms clocks round
  })

  test("a sleep that outlasts the worker's lull ends within milliseconds of its deadline", async () => {
    // On io_uring the worker sleeps meanwhile: its pending timer keeps the ring's own signal, through the doorbell, on.
    const server = await launch(fixture("scenarios"))
    const elapsed = Number((await ask(server, "sleep 100")).slice(3))
    expect(elapsed).toBeGreaterThanOrEqual(99.5)
    expect(elapsed).toBeLessThan(110)
  })

  test("a handler's sleep begun right after a lull ends within milliseconds of its deadline", async () => {
    // On io_uring the worker woken by the request sleeps again at once, before the timer fires.
    const server = await launch(fixture("scenarios"))
    await ask(server, "sleep 1")
    for (let i = 0; i < 3; i++) {
      await Bun.sleep(100)
      const elapsed = Number((await ask(server, "sleep 20")).slice(3))
      expect(elapsed).toBeGreaterThanOrEqual(19.5)
      expect(elapsed).toBeLessThan(30)
    }
  })

  test("sleep lasts at least what was asked", async () => {
    const server = await launch(fixture("scenarios"))
    const elapsed = Number((await ask(server, "sleep 30")).slice(3))
    expect(elapsed).toBeGreaterThanOrEqual(29.5)
  })

  test("timeout passes a fast promise through and rejects a slow one with TimeoutError", async () => {
    const server = await launch(fixture("scenarios"))
    expect(await ask(server, "timeout-ok")).toBe("ok:fast")
    expect(await ask(server, "timeout-expires")).toBe("err:ETIMEDOUT")
  })

  test("with every timer slot busy, sleep and timeout throw TimerExhausted; slots free on abort", async () => {
    const server = await launch(fixture("scenarios"), (c) => (c.timerSlots = 4))
    expect(await ask(server, "timer-exhaust 4")).toBe("ok:TimerExhausted:TimerExhausted:slept")
    expect(server.metrics().timerExhausted).toBe(2)
  })

  test("300 rounds of a read racing a cancelled 60 s sleep fit in 16 timer slots", async () => {
    const server = await launch(fixture("scenarios"), (c) => (c.timerSlots = 16))
    expect(await ask(server, "timer-race 300", 20_000)).toBe("ok:300")
    expect(server.metrics().timerExhausted).toBe(0)
  })
})

describe("tasks and hooks", () => {
  test("graceful shutdown waits for standalone tasks to finish", async () => {
    const events: string[] = []
    class Spawner implements AsyncEventHandler {
      static createForWorker(): Spawner {
        return new Spawner()
      }
      async onAccept(): Promise<void> {}
      async onStart(): Promise<void> {
        spawn(async () => {
          await sleep(150)
          events.push("task finished")
        })
      }
    }
    const server = await new RinglineBuilder(config()).launch(Spawner)
    await Bun.sleep(20)
    server.shutdown.shutdown()
    await Promise.all(server.handles.map((h) => h.join()))
    events.push("joined")
    expect(events).toEqual(["task finished", "joined"])
  })

  test("spawn beyond standaloneTaskCapacity throws TaskCapacityError", async () => {
    const server = await launch(fixture("scenarios"), (c) => (c.standaloneTaskCapacity = 4))
    expect(await ask(server, "spawn-exhaust 4")).toBe("ok:TaskCapacityError:4")
  })

  test("a spawned task's error, thrown at once or later, reaches join() and frees its slot", async () => {
    const server = await launch(fixture("scenarios"), (c) => (c.standaloneTaskCapacity = 1))
    expect(await ask(server, "spawn-throws")).toBe("ok:thrown at once:thrown later:slot free")
  })

  test("an onAccept that throws before returning its promise closes that connection; the worker lives", async () => {
    class ThrowsAtOnce implements AsyncEventHandler {
      static createForWorker(): ThrowsAtOnce {
        return new ThrowsAtOnce()
      }
      onAccept(): Promise<void> {
        throw new Error("thrown before any await")
      }
    }
    const server = await launch(ThrowsAtOnce)
    for (let i = 1; i <= 2; i++) {
      const c = dial(server.tcpAddr!)
      await new Promise((resolve) => c.once("close", resolve).once("end", resolve))
      c.destroy()
      expect(server.metrics().handlerErrors).toBe(i)
    }
  })

  test("an aborted task frees its slot", async () => {
    const server = await launch(fixture("scenarios"), (c) => (c.standaloneTaskCapacity = 3))
    expect(await ask(server, "spawn-abort 3")).toBe("ok:AbortError:joined")
  })

  test("wakeHandle(id).wake() makes that worker run onNotify", async () => {
    const server = await launch(fixture("notify_counter"))
    server.wakeHandle(0).wake()
    server.wakeHandle(0).wake()
    let count = 0
    for (let i = 0; i < 50 && count < 1; i++) {
      count = Number((await ask(server, "?")).split(" ")[0])
      if (count < 1) await Bun.sleep(10)
    }
    expect(count).toBeGreaterThanOrEqual(1)
    expect(() => server.wakeHandle(5)).toThrow(RangeError)
  })

  test("wakeHandle(id).wake() reaches a worker idle for 200 ms within milliseconds", async () => {
    // On io_uring the worker has parked by then (after 4 quiet ms); the ring's wake eventfd is in its doorbell.
    const server = await launch(fixture("notify_counter"))
    await Bun.sleep(200)
    const wokenAt = performance.timeOrigin + performance.now()
    server.wakeHandle(0).wake()
    await Bun.sleep(100)
    const [count, notifiedAt, repliedAt] = (await ask(server, "?")).split(" ").map(Number)
    // The worker's clock against this thread's (a step of the system clock between their starts shifts one), taken
    // as the reply's send time less its arrival: that overstates the latency by the reply's transit, never hides any.
    const workerAhead = repliedAt! - (performance.timeOrigin + performance.now())
    expect(count).toBe(1)
    expect(notifiedAt! - workerAhead - wokenAt).toBeLessThan(5)
  })

  test("onTick runs after the worker processes events", async () => {
    const server = await launch(fixture("scenarios"))
    await ask(server, "sleep 1") // some events for the worker to process
    expect(await ask(server, "ticks")).toBe("ok:true")
  })
})

describe("unix sockets, idle timeout, metrics", () => {
  test("unix domain socket echo (a stale socket file is removed at bind)", async () => {
    const path = `/tmp/ringline-test-${process.pid}.sock`
    // Leave a stale socket file behind, as a crashed server would: listen in a child, SIGKILL it.
    const child = Bun.spawn([process.execPath, "-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`], { stdout: "pipe" })
    await child.stdout.getReader().read()
    child.kill(9)
    await child.exited
    expect(existsSync(path)).toBe(true)
    const server = await launch(fixture("echo"), undefined, `unix:${path}`)
    expect(server.tcpAddr).toBe(`unix:${path}`)
    const sock = dial(server.tcpAddr!)
    const reply = await new Promise<string>((resolve) => {
      sock.on("data", (d) => resolve(d.toString()))
      sock.write("over unix")
    })
    sock.end()
    expect(reply).toBe("over unix")
  })

  test("idleTimeoutMs closes a silent connection and counts it", async () => {
    const server = await launch(fixture("echo"), (c) => (c.idleTimeoutMs = 100))
    const sock = dial(server.tcpAddr!)
    const t = performance.now()
    await new Promise<void>((resolve) => sock.on("close", () => resolve()))
    const waited = performance.now() - t
    expect(waited).toBeGreaterThanOrEqual(90)
    expect(server.metrics().idleClosed).toBe(1)
  })

  test("metrics count exactly after a known workload", async () => {
    const server = await launch(fixture("echo"))
    for (let i = 0; i < 3; i++) {
      const sock = dial(server.tcpAddr!)
      const payload = Buffer.alloc(100, i)
      await new Promise<void>((resolve) => {
        let got = 0
        sock.on("data", (d) => {
          got += d.length
          if (got === 100) sock.end()
        })
        sock.on("close", () => resolve())
        sock.write(payload)
      })
    }
    for (let i = 0; i < 100 && server.metrics().connectionsClosed < 3; i++) await Bun.sleep(10)
    const m = server.metrics()
    expect(m.connectionsAccepted).toBe(3)
    expect(m.connectionsClosed).toBe(3)
    expect(m.connectionsActive).toBe(0)
    expect(m.bytesReceived).toBe(300)
    expect(m.bytesSent).toBe(300)
    expect(server.metricsText()).toContain("ringline_bytes_sent_total 300")
  })
})
