export {} // a module: top-level await below
// Bun.listen + Bun.udpSocket echo server: the baseline ringline must beat.
//   bun bench/servers/bun_echo.ts        prints "ready <tcp> <udp>"
// TCP keeps short writes queued until `drain` (and allowHalfOpen, so a FIN never cuts the tail).
const queues = new Map<object, Uint8Array[]>()
function flush(s: { write(b: Uint8Array): number }): void {
  const q = queues.get(s)!
  while (q.length > 0) {
    const b = q[0]!
    const n = s.write(b)
    if (n < b.length) {
      q[0] = b.subarray(Math.max(n, 0))
      return
    }
    q.shift()
  }
}
const tcp = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  allowHalfOpen: true,
  socket: {
    open(s) {
      s.setNoDelay(true)
      queues.set(s, [])
    },
    data(s, d) {
      const q = queues.get(s)!
      if (q.length === 0) {
        const n = s.write(d)
        if (n === d.length) return
        q.push(new Uint8Array(d.subarray(Math.max(n, 0))))
      } else q.push(new Uint8Array(d))
    },
    drain(s) {
      flush(s)
    },
    end(s) {
      s.end()
    },
    close(s) {
      queues.delete(s)
    },
  },
})
const udp = await Bun.udpSocket({
  hostname: "127.0.0.1",
  port: 0,
  socket: {
    data(s, d, port, address) {
      try {
        s.send(d, port, address)
      } catch {
        // an ICMP error from an earlier datagram (peer port closed): that peer only
      }
    },
    error() {},
  },
})
console.log(`ready 127.0.0.1:${tcp.port} 127.0.0.1:${udp.port}`)
process.on("SIGTERM", () => process.exit(0))
