// Which backend a launch uses: io_uring when the library loads and the kernel
// has what the runtime needs, else the portable one — said once, with why.
import type { BackendChoice, BackendName } from "./config"
import { ConfigError } from "./errors"
import { errnoName } from "./native/errno"
import { Feature } from "./native/layout"

const REQUIRED: Array<[number, string]> = [
  [Feature.RING, "io_uring_setup"],
  [Feature.EXT_ARG, "bounded waits (IORING_FEAT_EXT_ARG)"],
  [Feature.BUF_RING, "provided buffer rings"],
  [Feature.ACCEPT_MULTI, "multishot accept"],
  [Feature.RECV_MULTI, "multishot recv"],
  [Feature.RECVMSG_MULTI, "multishot recvmsg"],
]

export interface BackendDecision {
  backend: BackendName
  reason: string
}

/** Why io_uring cannot be used here, or null when it can. */
export async function ioUringUnavailable(): Promise<string | null> {
  if (process.platform !== "linux") return `io_uring needs Linux (this is ${process.platform})`
  let probe: number
  try {
    const { native } = await import("./native/lib")
    probe = native().sym.ringline_kernel_probe()
  } catch (e) {
    return (e as Error).message
  }
  if (probe < 0) {
    const code = errnoName(probe)
    const why = code === "EPERM" ? "blocked by seccomp or the kernel.io_uring_disabled sysctl" : code === "ENOSYS" ? "the kernel has no io_uring" : "io_uring_setup failed"
    return `io_uring_setup returned ${code}: ${why}`
  }
  const missing = REQUIRED.filter(([bit]) => (probe & bit) === 0).map(([, name]) => name)
  return missing.length > 0 ? `the kernel lacks ${missing.join(", ")}` : null
}

/** The configured choice with RINGLINE_BACKEND taking precedence. */
export function requestedBackend(configured: BackendChoice, env: string | undefined): BackendChoice {
  if (env === undefined || env === "") return configured
  if (env !== "auto" && env !== "io_uring" && env !== "portable") {
    throw new ConfigError("backend", env, `RINGLINE_BACKEND must be "auto", "io_uring" or "portable"`)
  }
  return env
}

export async function chooseBackend(configured: BackendChoice): Promise<BackendDecision> {
  const wanted = requestedBackend(configured, process.env.RINGLINE_BACKEND)
  if (wanted === "portable") return { backend: "portable", reason: "requested" }
  const unavailable = await ioUringUnavailable()
  if (unavailable === null) return { backend: "io_uring", reason: wanted === "io_uring" ? "requested" : "kernel supports it" }
  if (wanted === "io_uring") {
    const err = new Error(`backend "io_uring" was requested but cannot run here: ${unavailable}`) as Error & { code: string }
    err.code = "ERR_RINGLINE_BACKEND"
    throw err
  }
  return { backend: "portable", reason: `io_uring unavailable: ${unavailable}` }
}
