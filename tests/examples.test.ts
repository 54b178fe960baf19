// The runnable examples, run as a user runs them: a child process, real
// sockets, and Ctrl-C (SIGINT) for the servers.
import { describe, expect, test } from "bun:test"
import dgram from "node:dgram"
import { Client } from "./helpers"

const root = new URL("../", import.meta.url).pathname

/** Starts an example, waits for its "listening on <addr>" line; returns the address and the process. */
async function startExample(file: string): Promise<{ addr: string; child: Bun.Subprocess<"ignore", "pipe", "pipe">; output: () => string }> {
  const child = Bun.spawn([process.execPath, `${root}examples/${file}`, "0"], { stdout: "pipe", stderr: "pipe", stdin: "ignore" })
  const reader = child.stdout.getReader()
  let out = ""
  const deadline = Date.now() + 10_000
  while (!/listening on (\S+)/.test(out)) {
    if (Date.now() > deadline) throw new Error(`${file} did not start: ${out}`)
    const { value, done } = await reader.read()
    if (done) throw new Error(`${file} exited: ${out}`)
    out += new TextDecoder().decode(value)
  }
  const addr = /listening on (\S+)/.exec(out)![1]!
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      out += new TextDecoder().decode(value)
    }
  })()
  void rest
  return { addr, child, output: () => out }
}

describe("examples", () => {
  test("tcp_echo echoes and stops cleanly on Ctrl-C", async () => {
    const { addr, child, output } = await startExample("tcp_echo.ts")
    const c = await Client.connect(addr)
    await c.write("hello example\n")
    expect((await c.readExactly(14)).toString()).toBe("hello example\n")
    c.end()
    child.kill("SIGINT")
    expect(await child.exited).toBe(0)
    await Bun.sleep(10)
    expect(output()).toContain("tcp_echo: stopped after 1 connection(s), 14 byte(s) echoed")
  })

  test("udp_echo echoes a datagram and stops cleanly on Ctrl-C", async () => {
    const { addr, child, output } = await startExample("udp_echo.ts")
    const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))]
    const sock = dgram.createSocket("udp4")
    const reply = await new Promise<string>((resolve) => {
      sock.on("message", (m) => resolve(m.toString()))
      sock.send("hello udp", port, host)
    })
    sock.close()
    expect(reply).toBe("hello udp")
    child.kill("SIGINT")
    expect(await child.exited).toBe(0)
    await Bun.sleep(10)
    expect(output()).toContain("udp_echo: stopped after 1 datagram(s) received, 1 sent, 0 dropped")
  })

  test("tcp_client (client-only mode) runs its round trips and exits by itself", async () => {
    const child = Bun.spawn([process.execPath, `${root}examples/tcp_client.ts`], { stdout: "pipe", stderr: "pipe" })
    const out = await new Response(child.stdout).text()
    expect(await child.exited).toBe(0)
    expect(out.match(/4 connections × 100 round trips/g)?.length).toBe(2)
    expect(out).toContain("tcp_client: done")
  })

  test("the quick-start demo finishes by itself and says what it did", async () => {
    const child = Bun.spawn([process.execPath, `${root}examples/demo.ts`], { stdout: "pipe", stderr: "pipe" })
    const out = await new Response(child.stdout).text()
    expect(await child.exited).toBe(0)
    expect(out).toMatch(/^native: /m)
    expect(out).toMatch(/tcp: \S+ echo .* bytes identical/)
    expect(out).toMatch(/udp: \S+ echo .* 1000\/1000 identical/)
    expect(out).toContain("demo: done")
  })
})
