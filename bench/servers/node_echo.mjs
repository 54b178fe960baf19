// node:net + node:dgram echo server (run with `node`): the Node.js baseline.
//   node bench/servers/node_echo.mjs     prints "ready <tcp> <udp>"
import dgram from "node:dgram"
import net from "node:net"

const tcp = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
  s.on("data", (d) => {
    if (!s.write(d)) s.pause()
  })
  s.on("drain", () => s.resume())
  s.on("end", () => s.end())
  s.on("error", () => s.destroy())
})
const udp = dgram.createSocket("udp4")
udp.on("message", (m, r) => udp.send(m, r.port, r.address))
await new Promise((r) => tcp.listen(0, "127.0.0.1", r))
await new Promise((r) => udp.bind(0, "127.0.0.1", r))
console.log(`ready 127.0.0.1:${tcp.address().port} 127.0.0.1:${udp.address().port}`)
process.on("SIGTERM", () => process.exit(0))
