#!/usr/bin/env bash
# The install test: pack ringline, `bun add` the tarball into an empty project
# (no Zig, no liburing-dev needed there), then
#   1. launch a TCP and a UDP echo, round-trip data, expect backend io_uring;
#   2. remove the packaged .so: the same app must fall back to portable and say why;
#   3. type-check the app with tsc --strict against the installed types.
# Prints "N passed, N failed" for its three checks.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bun="$repo/node_modules/.bin/bun"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }

(cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null) || { echo "install test: npm pack failed"; echo "0 passed, 3 failed"; exit 1; }
tarball=$(ls "$work"/ringline-*.tgz)
mkdir "$work/app"
cd "$work/app"
cat > package.json <<'JSON'
{ "name": "ringline-install-test", "private": true, "type": "module" }
JSON
# PATH without the repo's toolchain: the package must need neither Zig nor a compiler.
env PATH=/usr/local/bin:/usr/bin:/bin "$bun" add --silent "$tarball" typescript@5.9.3 @types/bun@1.4.4 >/dev/null || { echo "install test: bun add failed"; echo "0 passed, 3 failed"; exit 1; }

cat > handler.ts <<'TS'
import { ParseResult, type AsyncEventHandler, type ConnCtx, type UdpCtx } from "ringline"

export default class Echo implements AsyncEventHandler {
  static createForWorker(_workerId: number): Echo {
    return new Echo()
  }
  async onAccept(conn: ConnCtx): Promise<void> {
    while ((await conn.withData((d) => (conn.sendNowait(d), ParseResult.consumed(d.length)))) > 0) {}
  }
  async onUdpBind(udp: UdpCtx): Promise<void> {
    for (;;) {
      const [data, peer] = await udp.recvFrom()
      await udp.sendReady()
      udp.sendTo(peer, data)
    }
  }
}
TS
cat > app.ts <<'TS'
import dgram from "node:dgram"
import net from "node:net"
import { Config, RinglineBuilder, type BackendName } from "ringline"

const expected = process.argv[2] as BackendName
const cfg = Config.default()
cfg.worker.threads = 2
cfg.worker.pinToCore = false
const server = await new RinglineBuilder(cfg).bind("127.0.0.1:0").bindUdp("127.0.0.1:0").launch(new URL("./handler.ts", import.meta.url))
const [host, port] = server.tcpAddr!.split(":")
const tcpReply = await new Promise<string>((resolve, reject) => {
  const s = net.connect(Number(port), host!)
  let got = ""
  s.on("data", (d) => ((got += d.toString()), got.length >= 13 && (s.end(), resolve(got))))
  s.on("error", reject)
  s.write("tcp roundtrip")
})
const [uhost, uport] = server.udpAddr!.split(":")
const udpReply = await new Promise<string>((resolve) => {
  const s = dgram.createSocket("udp4")
  s.on("message", (m) => (s.close(), resolve(m.toString())))
  s.send("udp roundtrip", Number(uport), uhost!)
})
await server.stop()
const ok = tcpReply === "tcp roundtrip" && udpReply === "udp roundtrip" && server.backend === expected
console.log(`install test: backend=${server.backend} tcp=${JSON.stringify(tcpReply)} udp=${JSON.stringify(udpReply)} ${ok ? "ok" : "FAILED"}`)
process.exit(ok ? 0 : 1)
TS
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "target": "ESNext", "module": "ESNext", "moduleResolution": "bundler", "strict": true, "noEmit": true, "types": ["bun"], "skipLibCheck": false }, "include": ["app.ts", "handler.ts"] }
JSON

echo "== install test 1: io_uring from the packaged prebuilt"
check timeout 60 "$bun" app.ts io_uring

echo "== install test 2: without the .so, portable with a one-line reason"
rm node_modules/ringline/prebuilt/linux-x64/libringline.so
fallback() {
  timeout 60 "$bun" app.ts portable 2>"$work/stderr.txt" || return 1
  cat "$work/stderr.txt"
  [ "$(grep -c '^ringline: using the portable backend' "$work/stderr.txt")" -eq 1 ] && grep -q 'libringline.so could not be loaded' "$work/stderr.txt"
}
check fallback

echo "== install test 3: tsc --strict against the installed types"
check node_modules/.bin/tsc -p .

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
