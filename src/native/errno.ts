// Linux errno numbers (x86_64/aarch64 share these) and the node-style codes
// the runtime puts on errors it throws.

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM",
  13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE",
  28: "ENOSPC", 32: "EPIPE", 38: "ENOSYS", 61: "ENODATA", 62: "ETIME", 75: "EOVERFLOW",
  90: "EMSGSIZE", 95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL",
  100: "ENETDOWN", 101: "ENETUNREACH", 103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS",
  107: "ENOTCONN", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH", 114: "EALREADY",
  115: "EINPROGRESS", 125: "ECANCELED",
}

export const Errno = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EBADF: 9, EAGAIN: 11, ENOMEM: 12, EBUSY: 16, EEXIST: 17, EINVAL: 22,
  ENOSPC: 28, EPIPE: 32, ENOSYS: 38, ETIME: 62, EMSGSIZE: 90, EADDRINUSE: 98, ECONNRESET: 104,
  ENOBUFS: 105, ENOTCONN: 107, ETIMEDOUT: 110, ECONNREFUSED: 111, EALREADY: 114,
  EINPROGRESS: 115, ECANCELED: 125,
} as const

/** "ECONNREFUSED" for 111 (sign ignored), "E<n>" for numbers we do not name. */
export function errnoName(errno: number): string {
  const n = Math.abs(errno)
  return ERRNO_NAMES[n] ?? `E${n}`
}

/** 98 for "EADDRINUSE" (for errors that arrive as codes, e.g. from Bun's sockets); EIO when unknown. */
export function errnoNumber(code: string): number {
  for (const [n, name] of Object.entries(ERRNO_NAMES)) if (name === code) return Number(n)
  return 5
}

/** An error carrying a node-style `code` ("EADDRINUSE") and the positive `errno`. */
export class NativeError extends Error {
  readonly code: string
  readonly errno: number
  readonly syscall: string
  constructor(syscall: string, negErrno: number, detail?: string) {
    const code = errnoName(negErrno)
    super(`${syscall} failed: ${code}${detail ? ` (${detail})` : ""}`)
    this.name = "NativeError"
    this.code = code
    this.errno = Math.abs(negErrno)
    this.syscall = syscall
  }
}

/** Returns rc when it is >= 0, throws NativeError(syscall) for -errno. */
export function check(syscall: string, rc: number, detail?: string): number {
  if (rc < 0) throw new NativeError(syscall, rc, detail)
  return rc
}
