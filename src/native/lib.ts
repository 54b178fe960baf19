// The only module that imports bun:ffi: finds libringline.so, binds its
// symbols, checks the record layout, and offers views over native memory.
import { dlopen, FFIType, toArrayBuffer, type Pointer } from "bun:ffi"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { EXPECTED_LAYOUT } from "./layout"

const { i32, u32, ptr, void: none } = FFIType

const symbols = {
  ringline_kernel_probe: { args: [], returns: i32 },
  ringline_layout_query: { args: [ptr, u32], returns: i32 },
  ringline_ring_create: { args: [ptr, ptr], returns: ptr },
  ringline_ring_destroy: { args: [ptr], returns: none },
  ringline_ring_wake: { args: [ptr], returns: i32 },
  ringline_ring_notify_fd: { args: [ptr], returns: i32 },
  ringline_ring_notify_toggle: { args: [ptr, u32], returns: i32 },
  ringline_ring_watch: { args: [ptr, ptr, u32], returns: i32 },
  ringline_ring_unwatch: { args: [ptr, ptr, u32], returns: i32 },
  ringline_ring_prepare: { args: [ptr, u32], returns: i32 },
  ringline_ring_reap: { args: [ptr, u32, u32], returns: i32 },
  ringline_ring_ops: { args: [ptr], returns: ptr },
  ringline_ring_completions: { args: [ptr], returns: ptr },
  ringline_ring_msgs: { args: [ptr], returns: ptr },
  ringline_ring_slab: { args: [ptr], returns: ptr },
  ringline_bufring_create: { args: [ptr, u32, u32, u32, u32], returns: i32 },
  ringline_bufring_base: { args: [ptr, u32], returns: ptr },
  ringline_bufring_returns: { args: [ptr, u32], returns: ptr },
  ringline_bufring_recycle: { args: [ptr, u32, u32], returns: i32 },
  ringline_bufring_destroy: { args: [ptr, u32], returns: i32 },
  ringline_addr_parse: { args: [ptr, ptr, u32], returns: i32 },
  ringline_addr_format: { args: [ptr, u32, ptr, u32], returns: i32 },
  ringline_socket_listen: { args: [ptr, u32, u32, u32], returns: i32 },
  ringline_socket_udp: { args: [ptr, u32, u32], returns: i32 },
  ringline_socket_stream: { args: [ptr, u32], returns: i32 },
  ringline_socket_name: { args: [i32, u32, ptr, u32], returns: i32 },
  ringline_socket_pair: { args: [ptr], returns: i32 },
  ringline_socket_nodelay: { args: [i32, u32], returns: i32 },
  ringline_socket_close: { args: [i32], returns: i32 },
  ringline_thread_pin: { args: [u32], returns: i32 },
} as const

export type NativeSymbols = ReturnType<typeof dlopen<typeof symbols>>["symbols"]
export type { Pointer }

/** The library could not be found, opened, or does not match this package's ABI. */
export class NativeLoadError extends Error {
  readonly code = "ERR_RINGLINE_NATIVE"
  constructor(message: string) {
    super(message)
    this.name = "NativeLoadError"
  }
}

const packageRoot = fileURLToPath(new URL("../../", import.meta.url))
// csrc/ and build.zig ship in the package, so this works in a checkout and in node_modules/ringline alike.
const BUILD_HINT = `build it in ${packageRoot} with \`zig build -Doptimize=ReleaseFast\` (Zig 0.11 and liburing-dev), or set RINGLINE_LIB to its path`

/** Where we look, in order: RINGLINE_LIB, the packaged prebuilt, the local zig build. */
export function libraryCandidates(env: Record<string, string | undefined> = process.env): string[] {
  const list: string[] = []
  if (env.RINGLINE_LIB) list.push(env.RINGLINE_LIB)
  list.push(`${packageRoot}prebuilt/${process.platform}-${process.arch}/libringline.so`)
  list.push(`${packageRoot}zig-out/lib/libringline.so`)
  return list
}

function openLibrary(candidates: string[]): { path: string; symbols: NativeSymbols } {
  const tried: string[] = []
  for (const path of candidates) {
    if (!existsSync(path)) {
      tried.push(`${path} (not found)`)
      continue
    }
    try {
      return { path, symbols: dlopen(path, symbols).symbols }
    } catch (e) {
      tried.push(`${path} (${(e as Error).message})`)
    }
  }
  throw new NativeLoadError(`libringline.so could not be loaded (tried ${tried.join(", ")}); ${BUILD_HINT}`)
}

function checkLayout(path: string, lib: NativeSymbols): void {
  const got = new Uint32Array(128)
  const n = lib.ringline_layout_query(got, got.length)
  const actual = Array.from(got.subarray(0, Math.max(n, 0)))
  const same = n === EXPECTED_LAYOUT.length && actual.every((v, i) => v === EXPECTED_LAYOUT[i])
  if (!same) {
    throw new NativeLoadError(
      `${path} does not match this package's ABI (layout ${JSON.stringify(actual)}, expected ${JSON.stringify(EXPECTED_LAYOUT)}); rebuild it: ${BUILD_HINT}`,
    )
  }
}

export interface NativeLibrary {
  readonly path: string
  readonly sym: NativeSymbols
}

let loaded: NativeLibrary | undefined

/** Opens and checks the library once per thread; throws NativeLoadError with every path tried. */
export function loadNative(candidates: string[] = libraryCandidates()): NativeLibrary {
  const { path, symbols: sym } = openLibrary(candidates)
  checkLayout(path, sym)
  return (loaded = { path, sym })
}

/** The library, loaded on first use with the default search order. */
export function native(): NativeLibrary {
  return (loaded ??= loadNative())
}

/** A long-lived view over native memory; create it once and keep it. */
export function nativeBytes(p: Pointer | bigint | null, length: number, what: string): Uint8Array {
  if (p === null || typeof p === "bigint" || p === 0) throw new NativeLoadError(`native ${what} is missing`)
  return new Uint8Array(toArrayBuffer(p, 0, length))
}

/** Encodes a JS string as a NUL-terminated C string. */
export function cString(text: string): Uint8Array {
  return new TextEncoder().encode(`${text}\0`)
}

const textDecoder = new TextDecoder()
export function decodeCString(buf: Uint8Array, length: number): string {
  return textDecoder.decode(buf.subarray(0, length))
}
