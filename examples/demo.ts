// The quick-start demo: checks the native layer, then runs a TCP and a UDP
// echo round trip through ringline and prints what it did. Finishes by itself.
//
//   bun examples/demo.ts
import net from "node:net"
import dgram from "node:dgram"
import { ioUringUnavailable } from "../src/backend"
import { Config, RinglineBuilder } from "../src/index"

async function nativeSelfCheck(): Promise<void> {
  const why = await ioUringUnavailable()
  if (why !== null) {
    console.log(`native: io_uring unavailable here (${why}); the demo uses the portable backend`)
    return
  }
  const { native } = await import("../src/native/lib")
  const { Feature, Opcode } = await import("../src/native/layout")
  const { Ring } = await import("../src/uring/ring")
  const lib = native()
  const probe = lib.sym.ringline_kernel_probe()
  const found = Object.entries(Feature).filter(([, bit]) => probe & bit).map(([name]) => name)
  console.log(`native: loaded ${lib.path}`)
  console.log(`native: kernel io_uring features: ${found.join(" ")}`)
  const ring = new Ring({ sqEntries: 256, slabBytes: 0, msgSlots: 0, timerSlots: 0 })
  try {
    console.log(`native: ring created (256 SQ entries, setup flags granted: 0b${ring.setupFlags.toString(2)})`)
    const rounds = 10_000
    let t = performance.now()
    for (let i = 0; i < rounds; i++) {
      ring.push(Opcode.NOP, 1, i & 0xffff, 0, -1)
      ring.reap(1, 1_000_000)
    }
    const single = ((performance.now() - t) * 1e6) / rounds
    t = performance.now()
    for (let i = 0; i < rounds; i += 128) {
      for (let k = 0; k < 128; k++) ring.push(Opcode.NOP, 1, k, 0, -1)
      for (let got = 0; got < 128; ) got += ring.reap(128 - got, 1_000_000)
    }
    const batched = ((performance.now() - t) * 1e6) / rounds
    console.log(`native: NOP round trip ${single.toFixed(0)} ns one at a time, ${batched.toFixed(0)} ns per op batched 128 per submit`)
  } finally {
    ring.destroy()
  }
}

async function tcpRoundTrip(): Promise<void> {
  const cfg = Config.default()
  cfg.worker.threads = 2
  cfg.worker.pinToCore = false
  cfg.quiet = true
  const server = await new RinglineBuilder(cfg).bind("127.0.0.1:0").launch(new URL("./tcp_echo.ts", import.meta.url))
  const [host, port] = server.tcpAddr!.split(":")
  const messages = 1000
  const socket = net.connect(Number(port), host!)
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()))
  const chunks: Buffer[] = []
  let receivedBytes = 0
  let wake: (() => void) | null = null
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk)
    receivedBytes += chunk.length
    wake?.()
  })
  let sentBytes = 0
  const t = performance.now()
  for (let i = 0; i < messages; i++) {
    const line = Buffer.from(`message ${i}\n`)
    socket.write(line)
    sentBytes += line.length
    while (receivedBytes < sentBytes) await new Promise<void>((resolve) => (wake = resolve))
  }
  const received = Buffer.concat(chunks)
  const ms = performance.now() - t
  socket.end()
  const expected = Array.from({ length: messages }, (_, i) => `message ${i}\n`).join("")
  const ok = received.toString() === expected
  await server.stop()
  console.log(`tcp: ${server.backend} echo on ${server.tcpAddr} (${server.handles.length} workers): ${messages} request/replies in ${ms.toFixed(1)} ms (${((ms * 1000) / messages).toFixed(1)} µs each), bytes ${ok ? "identical" : "DIFFERENT"}`)
  if (!ok) process.exitCode = 1
}

async function udpRoundTrip(): Promise<void> {
  const cfg = Config.default()
  cfg.worker.threads = 1
  cfg.worker.pinToCore = false
  cfg.quiet = true
  const server = await new RinglineBuilder(cfg).bindUdp("127.0.0.1:0").launch(new URL("./udp_echo.ts", import.meta.url))
  const [host, port] = server.udpAddr!.split(":")
  const socket = dgram.createSocket("udp4")
  const rounds = 1000
  let ok = 0
  const t = performance.now()
  for (let i = 0; i < rounds; i++) {
    const payload = Buffer.from(`datagram ${i}`)
    const reply: Buffer = await new Promise((resolve) => {
      socket.once("message", resolve)
      socket.send(payload, Number(port), host!)
    })
    if (reply.equals(payload)) ok++
  }
  const ms = performance.now() - t
  socket.close()
  await server.stop()
  console.log(`udp: ${server.backend} echo on ${server.udpAddr}: ${rounds} datagram round trips in ${ms.toFixed(1)} ms, ${ok}/${rounds} identical`)
  if (ok !== rounds) process.exitCode = 1
}

await nativeSelfCheck()
await tcpRoundTrip()
await udpRoundTrip()
console.log("demo: done")
