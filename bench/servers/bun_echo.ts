export {} // a module: top-level await below
// Bun.listen + Bun.udpSocket echo server: the baseline ringline must beat.
//   bun bench/servers/bun_echo.ts        prints "ready <tcp> <udp>"
// TCP keeps short writes queued until `drain` (and allowHalfOpen, so a FIN never cuts the tail).
// Bytes Bun did not take yet, per socket; `ending` once the peer has finished.
const queues = new Map<object, { q: Uint8Array[]; ending: boolean }>()
function flush(s: { write(b: Uint8Array): number; end(): void }): void {
  const st = queues.get(s)!
  while (st.q.length > 0) {
    const b = st.q[0]!
    const n = s.write(b)
    if (n < b.length) {
      st.q[0] = b.subarray(Math.max(n, 0))
      return
    }
    st.q.shift()
  }
  if (st.ending) s.end() // the peer finished and everything is written
}
const tcp = Bun.listen({
  hostname: "127.0.0.1",
  port: 0,
  allowHalfOpen: true,
  socket: {
    open(s) {
      s.setNoDelay(true)
      queues.set(s, { q: [], ending: false })
    },
    data(s, d) {
      const st = queues.get(s)!
      if (st.q.length === 0) {
        const n = s.write(d)
        if (n === d.length) return
        st.q.push(new Uint8Array(d.subarray(Math.max(n, 0))))
      } else st.q.push(new Uint8Array(d))
    },
    drain(s) {
      flush(s)
    },
    end(s) {
      queues.get(s)!.ending = true
      flush(s)
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
