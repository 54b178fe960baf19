// The JavaScript floor: a TCP echo written straight on ringline's ring layer
// (src/uring/ring.ts), with none of the runtime above it — no ConnCtx, no
// handler tasks, no promises, no tick, no doorbell, no Bun event loop turns:
// the loop blocks in the ring and answers each completion with the op the C
// server (bench/echo_uring.c) would submit. What it costs over C is what any
// Bun program pays to drive io_uring through bun:ffi; what ringline costs over
// it is the runtime's share. A calibration for bench/pair.ts (PAIR_ONLY_SERVERS),
// not a server to use: TCP rows only (no backpressure beyond the receive
// buffers: a send that finds the socket buffer full ends the server), one send in flight per
// connection (buffers received meanwhile wait for it), stopped by SIGTERM's
// default action.
//
//   bun bench/servers/ring_floor.ts      prints "ready <tcp> -"
//   PAIR_ENV_B='{"RING_FLOOR_TICK":"both"}' bun bench/pair.ts "ring layer alone" "ring layer alone" "connect storm, seq"
import { formatAddr, parseAddr } from "../../src/uring/driver"
import { BufferRing, Ring } from "../../src/uring/ring"
import { CLOSE_QUIET, CQE, CQE_F_MORE, Opcode, SockFlag, WAIT_UNBOUNDED } from "../../src/native/layout"
import { Errno } from "../../src/native/errno"
import { Kind } from "../../src/uring/kinds"
import { Config } from "../../src/index"

const { ACCEPT, RECV, SEND } = Kind
const BGID = 0

// Sized as the ringline server's defaults are, so both have the same buffers.
const cfg = Config.default()
const ring = new Ring({ sqEntries: cfg.sqEntries, slabBytes: cfg.recvBuffer.ringSize * cfg.recvBuffer.bufferSize, msgSlots: 0, timerSlots: 1 })
const buffers = new BufferRing(ring, BGID, cfg.recvBuffer.ringSize, cfg.recvBuffer.bufferSize, 0)
const sym = ring.sym

const sa = parseAddr("127.0.0.1:0", sym)
const listener = sym.ringline_socket_listen(sa, sa.length, cfg.backlog, SockFlag.REUSEPORT)
if (listener < 0) throw new Error(`listen: ${listener}`)
sym.ringline_socket_nodelay(listener, 1)
const name = new Uint8Array(128)
const nameLen = sym.ringline_socket_name(listener, 0, name, name.length)
console.log(`ready ${formatAddr(name.subarray(0, nameLen), sym)} -`)

/** Per fd: the buffer being sent and how much of it is out; buffers received while it is (rare: one request in flight per connection). */
const sending = new Int32Array(65536).fill(-1)
const sendStart = new Int32Array(65536)
const sendLength = new Int32Array(65536)
const waiting = new Map<number, Array<[number, number]>>()
/** Connections whose peer is gone, closed once their last send completes. */
const closing = new Uint8Array(65536)
/** Connections whose receive ended for want of buffers. */
const starved: number[] = []

function send(fd: number, bid: number, start: number, length: number): void {
  sending[fd] = bid
  sendStart[fd] = start
  sendLength[fd] = length
  ring.push(Opcode.SEND, SEND, fd, bid, fd, bid * buffers.bufferSize + start, length)
}

function onRecv(fd: number, res: number, flags: number, bid: number): void {
  if (res > 0) {
    if (sending[fd]! < 0) send(fd, bid, 0, res)
    else {
      const queue = waiting.get(fd) ?? []
      queue.push([bid, res])
      waiting.set(fd, queue)
    }
    if (!(flags & CQE_F_MORE)) ring.push(Opcode.RECV_MULTI, RECV, fd, 0, fd, BGID)
  } else if (res === -Errno.ENOBUFS) {
    starved.push(fd) // every buffer waits to be sent: receive again once a send gives one back
  } else if (!(flags & CQE_F_MORE)) {
    // End of stream or error: close once what was received has been echoed.
    if (sending[fd]! < 0) close(fd)
    else closing[fd] = 1
  }
}

function onSend(fd: number, bid: number, res: number): void {
  if (res === -Errno.EAGAIN) {
    // A full socket buffer needs the runtime's backpressure (POLLOUT, the send queue): not this server's rows.
    console.error("ring_floor: a send found the socket buffer full, which this server does not handle")
    process.exit(1)
  }
  if (res > 0 && res < sendLength[fd]!) return send(fd, bid, sendStart[fd]! + res, sendLength[fd]! - res)
  buffers.giveBack(bid)
  if (starved.length > 0) for (const starving of starved.splice(0)) ring.push(Opcode.RECV_MULTI, RECV, starving, 0, starving, BGID)
  sending[fd] = -1
  const next = waiting.get(fd)?.shift()
  if (next !== undefined) send(fd, next[0], 0, next[1])
  else if (closing[fd]) close(fd)
}

function close(fd: number): void {
  closing[fd] = 0
  ring.push(Opcode.CLOSE, 0, fd, 0, fd, CLOSE_QUIET)
}

/**
 * RING_FLOOR_TICK prices ringline's loop rhythm by adding a part of it: "timer" (a
 * 1 ms TIMEOUT op kept in flight, re-armed as it fires), "turn" (a setImmediate turn
 * of Bun's event loop once a millisecond has passed, by the clock, no timer), "both"
 * (the timer, and a turn at each of its ticks, as ringline's loop does); unset: neither.
 */
const rhythm = process.env.RING_FLOOR_TICK ?? ""
if (!["", "timer", "turn", "both"].includes(rhythm)) throw new Error(`RING_FLOOR_TICK: "${rhythm}" is none of timer, turn, both`)
const armTick = () => ring.pushReserved(Opcode.TIMEOUT, Kind.TICK, 0, 0, -1, 0, 1)
let nextTurn = 0

ring.push(Opcode.ACCEPT_MULTI, ACCEPT, 0, 0, listener)
if (rhythm === "timer" || rhythm === "both") armTick()
const cq = ring.cqes
function loop(): void {
  for (;;) {
    buffers.flush()
    const n = ring.reap(1, WAIT_UNBOUNDED)
    let ticked = false
    for (let i = 0; i < n; i++) {
      const o = i * CQE.words
      const res = cq[o + CQE.res]!
      const flags = cq[o + CQE.flags]!
      switch (cq[o + CQE.kind]) {
        case ACCEPT:
          if (res >= 0) ring.push(Opcode.RECV_MULTI, RECV, res, 0, res, BGID)
          if (!(flags & CQE_F_MORE)) ring.push(Opcode.ACCEPT_MULTI, ACCEPT, 0, 0, listener)
          break
        case RECV:
          onRecv(cq[o + CQE.slot]!, res, flags, cq[o + CQE.bid]!)
          break
        case SEND:
          onSend(cq[o + CQE.slot]!, cq[o + CQE.gen]!, res)
          break
        case Kind.TICK:
          ticked = true
      }
    }
    if (ticked) armTick()
    const turn = rhythm === "both" ? ticked : rhythm === "turn" && performance.now() >= nextTurn
    if (turn) {
      nextTurn = performance.now() + 1
      setImmediate(loop)
      return
    }
  }
}
loop()
