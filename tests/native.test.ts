// The native layer seen from TypeScript: loading, layout check, errno codes,
// and one real completion from a socket. The library loads whichever backend
// the suite runs on, so these run in every CI run; only the test that needs a
// working ring is skipped where the kernel refuses io_uring (the seccomp run).
import { describe, expect, test } from "bun:test"
import { errnoName, NativeError, check } from "../src/native/errno"
import { CQE, CQE_F_BUFFER, CQE_F_MORE, EXPECTED_LAYOUT, Feature, Opcode } from "../src/native/layout"
import { libraryCandidates, loadNative, native, NativeLoadError } from "../src/native/lib"
import { BufferRing, Ring } from "../src/uring/ring"
import { parseAddr, formatAddr } from "../src/uring/driver"

const probe = native().sym.ringline_kernel_probe()
/** The kernel refuses io_uring (the CI run under a seccomp filter): no ring can be made here. */
const kernelRefusesIoUring = probe < 0

/** What making a ring and running one NOP gives on this thread: 1 (one completion) or the error code. */
function nopOnOwnRing(): number | string {
  try {
    const ring = new Ring({ sqEntries: 8, slabBytes: 0, msgSlots: 0, timerSlots: 0 })
    try {
      ring.push(Opcode.NOP, 3, 42, 7, -1)
      const n = ring.reap(1, 1_000_000)
      return n === 1 && ring.cqes[CQE.slot] === 42 ? n : -1
    } finally {
      ring.destroy()
    }
  } catch (e) {
    return (e as { code?: string }).code ?? String(e)
  }
}

describe("native binding", () => {
  test("loads and its layout matches the TypeScript records", () => {
    const got = new Uint32Array(128)
    const n = native().sym.ringline_layout_query(got, got.length)
    expect(Array.from(got.subarray(0, n))).toEqual([...EXPECTED_LAYOUT])
  })

  test("the probe and ring setup agree: features mean a working ring, a refusal code means setup fails with it", () => {
    const outcome = nopOnOwnRing()
    if (kernelRefusesIoUring) {
      expect(["EPERM", "ENOSYS"]).toContain(errnoName(probe))
      expect(outcome).toBe(errnoName(probe))
    } else {
      expect(probe & Feature.RING).toBe(Feature.RING)
      expect(probe & Feature.RECV_MULTI).toBe(Feature.RECV_MULTI)
      expect(outcome).toBe(1)
    }
  })

  test("loads in a Worker and the main thread at once, with the same probe and ring outcome", async () => {
    const worker = new Worker(new URL("./fixtures/native_worker.ts", import.meta.url).href)
    const reply = await new Promise<{ probe: number; nop: number | string }>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data)
      worker.onerror = (e) => reject(new Error(e.message))
    })
    worker.terminate()
    // Both threads see the same kernel and each tried its own ring.
    expect(reply.probe).toBe(probe)
    expect(reply.nop).toBe(nopOnOwnRing())
  })

  test("a wrong library path gives one clear error naming every path tried", () => {
    const missing = "/nonexistent/libringline.so"
    let error: unknown
    try {
      loadNative([missing, "/also/missing.so"])
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(NativeLoadError)
    const msg = (error as Error).message
    expect(msg).toContain(missing)
    expect(msg).toContain("/also/missing.so")
    expect(msg).toContain("zig build")
  })

  test("RINGLINE_LIB comes first in the search order, then the packaged prebuilt, then zig-out", () => {
    const list = libraryCandidates({ RINGLINE_LIB: "/custom/lib.so" })
    expect(list[0]).toBe("/custom/lib.so")
    expect(list[1]).toContain("prebuilt/")
    expect(list[2]).toContain("zig-out/lib/libringline.so")
  })

  test("-errno values map to node-style codes", () => {
    expect(errnoName(-111)).toBe("ECONNREFUSED")
    expect(errnoName(-98)).toBe("EADDRINUSE")
    expect(errnoName(-105)).toBe("ENOBUFS")
    expect(errnoName(-22)).toBe("EINVAL")
    expect(errnoName(-9999)).toBe("E9999")
    const e = new NativeError("listen", -98, "127.0.0.1:80")
    expect(e.code).toBe("EADDRINUSE")
    expect(e.errno).toBe(98)
    expect(e.message).toContain("127.0.0.1:80")
    expect(() => check("bind", -13)).toThrow(expect.objectContaining({ code: "EACCES" }))
    expect(check("ok", 5)).toBe(5)
  })

  test("bad addresses are rejected with EINVAL and good ones round-trip", () => {
    for (const good of ["127.0.0.1:8080", "[::1]:9", "unix:/tmp/ringline-test.sock"]) expect(formatAddr(parseAddr(good))).toBe(good)
    expect(formatAddr(parseAddr("localhost:80"))).toBe("127.0.0.1:80")
    for (const bad of ["", "127.0.0.1", "1.2.3.4:70000", "example.com:80", "[::1]80"]) {
      expect(() => parseAddr(bad)).toThrow(expect.objectContaining({ code: "EINVAL" }))
    }
  })

  // io_uring-only by nature: it needs a ring, and where the kernel refuses one (the seccomp CI run) there is
  // none to make. That run checks the refusal itself instead ("the probe and ring setup agree", above).
  test.skipIf(kernelRefusesIoUring)("a multishot recv completion from a real socket carries the bytes [skipped where the kernel refuses io_uring: needs a ring]", async () => {
    const ring = new Ring({ sqEntries: 16, slabBytes: 4096, msgSlots: 4, timerSlots: 4 })
    const pair = new Int32Array(2)
    expect(native().sym.ringline_socket_pair(pair)).toBe(0)
    const [a, b] = [pair[0]!, pair[1]!]
    try {
      const buffers = new BufferRing(ring, 0, 4, 1024)
      ring.push(Opcode.RECV_MULTI, 2, 5, 9, a, 0)
      ring.slab.set(new TextEncoder().encode("ping"), 0)
      ring.push(Opcode.SEND, 3, 6, 9, b, 0, 4)
      const seen = new Map<number, number[]>()
      for (let i = 0; i < 20 && seen.size < 2; i++) {
        const n = ring.reap(1, 1_000_000)
        for (let k = 0; k < n; k++) {
          const o = k * CQE.words
          seen.set(ring.cqes[o + CQE.kind]!, Array.from(ring.cqes.subarray(o, o + CQE.words)))
        }
      }
      const recv = seen.get(2)!
      expect(recv[CQE.slot]).toBe(5)
      expect(recv[CQE.gen]).toBe(9)
      expect(recv[CQE.res]).toBe(4)
      expect(recv[CQE.flags]! & (CQE_F_BUFFER | CQE_F_MORE)).toBe(CQE_F_BUFFER | CQE_F_MORE)
      expect(new TextDecoder().decode(buffers.view(recv[CQE.bid]!, 4))).toBe("ping")
      expect(seen.get(3)![CQE.res]).toBe(4)
    } finally {
      ring.destroy()
      native().sym.ringline_socket_close(a)
      native().sym.ringline_socket_close(b)
    }
  })
})
