// sockaddr_in / sockaddr_in6 ⇄ PeerAddress in plain JS: the UDP hot path
// formats a sender per datagram and must not cross into C for it.
import type { PeerAddress } from "../udp"

const AF_INET = 2
const AF_INET6 = 10

function formatV6(b: Uint8Array): string {
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!)
  // IPv4-mapped ::ffff:a.b.c.d
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  // Compress the longest run (>= 2) of zero groups, per RFC 5952.
  let best = -1, bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best < 0) return hex.join(":")
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`
}

/** Recent IPv4 senders by (address, port), so a sender that repeats costs no allocation. Bounded: cleared when full. */
const V4_PEERS_MAX = 4096
const v4Peers = new Map<number, PeerAddress>()
/** The sockaddr bytes behind every decoded peer, so a reply to it encodes without parsing text. */
const sockaddrOf = new WeakMap<PeerAddress, Uint8Array>()

/** Decodes the sockaddr at `bytes[at..]` into a frozen peer (shared between datagrams of one IPv4 sender). */
export function decodeSockaddr(bytes: Uint8Array, at: number): PeerAddress {
  const family = bytes[at]! | (bytes[at + 1]! << 8)
  const port = (bytes[at + 2]! << 8) | bytes[at + 3]!
  if (family === AF_INET6) return remember(Object.freeze({ address: formatV6(bytes.subarray(at + 8, at + 24)), port, family: "IPv6" }), bytes, at, 28)
  const a = bytes[at + 4]!, b = bytes[at + 5]!, c = bytes[at + 6]!, d = bytes[at + 7]!
  const key = (((a << 24) | (b << 16) | (c << 8) | d) >>> 0) * 65536 + port
  const known = v4Peers.get(key)
  if (known !== undefined) return known
  if (v4Peers.size >= V4_PEERS_MAX) v4Peers.clear()
  const peer = remember(Object.freeze({ address: `${a}.${b}.${c}.${d}`, port, family: "IPv4" }), bytes, at, 16)
  v4Peers.set(key, peer)
  return peer
}

function remember(peer: PeerAddress, bytes: Uint8Array, at: number, len: number): PeerAddress {
  sockaddrOf.set(peer, bytes.slice(at, at + len))
  return peer
}

function parseV6(text: string): Uint8Array | null {
  let head = text, tail = ""
  const dbl = text.indexOf("::")
  if (dbl >= 0) { head = text.slice(0, dbl); tail = text.slice(dbl + 2) }
  const parts = (s: string) => (s === "" ? [] : s.split(":"))
  let h = parts(head), t = parts(tail)
  const v4 = (arr: string[]) => {
    const last = arr[arr.length - 1]
    if (last === undefined || !last.includes(".")) return arr
    const q = last.split(".").map(Number)
    if (q.length !== 4 || q.some((x) => !(x >= 0 && x <= 255))) return null
    return [...arr.slice(0, -1), ((q[0]! << 8) | q[1]!).toString(16), ((q[2]! << 8) | q[3]!).toString(16)]
  }
  if (dbl >= 0) { const tt = v4(t); if (tt === null) return null; t = tt } else { const hh = v4(h); if (hh === null) return null; h = hh }
  const fill = 8 - h.length - t.length
  if ((dbl < 0 && fill !== 0) || fill < 0 || (dbl >= 0 && fill < 1)) return null
  const all = [...h, ...new Array<string>(dbl >= 0 ? fill : 0).fill("0"), ...t]
  const out = new Uint8Array(16)
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i]!)) return null
    const v = parseInt(all[i]!, 16)
    out[2 * i] = v >> 8
    out[2 * i + 1] = v & 0xff
  }
  return out
}

/** Encodes a peer as sockaddr bytes, or null when its address is not an IP literal. */
export function encodeSockaddr(peer: PeerAddress): Uint8Array | null {
  const known = sockaddrOf.get(peer)
  if (known !== undefined) return known
  const port = peer.port
  if (peer.family === "IPv6" || peer.address.includes(":")) {
    const addr = parseV6(peer.address)
    if (addr === null) return null
    const sa = new Uint8Array(28)
    sa[0] = AF_INET6
    sa[2] = port >> 8
    sa[3] = port & 0xff
    sa.set(addr, 8)
    return sa
  }
  const parts = peer.address.split(".")
  const q = parts.map(Number)
  if (q.length !== 4 || q.some((x, i) => !(x >= 0 && x <= 255) || parts[i] === "")) return null
  const sa = new Uint8Array(16)
  sa[0] = AF_INET
  sa[2] = port >> 8
  sa[3] = port & 0xff
  sa.set(q, 4)
  return sa
}
