// Backend choice: automatic fallback on a kernel that refuses io_uring (made
// real with a seccomp filter, as Docker's default profile does), forcing, and
// the RINGLINE_BACKEND override.
import { describe, expect, test } from "bun:test"
import { existsSync } from "node:fs"
import { requestedBackend } from "../src/backend"
import { ConfigError } from "../src/index"

const root = new URL("../", import.meta.url).pathname
const noUring = `${root}zig-out/bin/ringline-no-uring`
const probe = `${root}tests/fixtures/launch_probe.ts`

/** Runs the launch probe with io_uring refused by seccomp; returns stdout and stderr. */
async function runWithoutUring(env: Record<string, string | undefined>): Promise<{ out: string; err: string }> {
  const child = Bun.spawn([noUring, process.execPath, probe], { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" })
  const [out, err] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()])
  await child.exited
  return { out, err }
}

describe("backend choice", () => {
  test("the seccomp wrapper is built (zig build test)", () => {
    expect(existsSync(noUring)).toBe(true)
  })

  test("auto falls back to portable when the kernel refuses io_uring, saying why in one line", async () => {
    const { out, err } = await runWithoutUring({ RINGLINE_BACKEND: undefined })
    expect(out.trim()).toBe("backend=portable echo=probe")
    const notices = err.split("\n").filter((l) => l.startsWith("ringline: using"))
    expect(notices).toHaveLength(1)
    expect(notices[0]).toContain("portable backend (io_uring unavailable: io_uring_setup returned EPERM")
  })

  test("forcing io_uring where it cannot work rejects launch with the reason", async () => {
    const { out } = await runWithoutUring({ RINGLINE_BACKEND: "io_uring" })
    expect(out).toContain("rejected:")
    expect(out).toContain("EPERM")
  })

  test("RINGLINE_BACKEND overrides Config.backend; a bad value is a ConfigError", () => {
    expect(requestedBackend("io_uring", "portable")).toBe("portable")
    expect(requestedBackend("portable", undefined)).toBe("portable")
    expect(requestedBackend("auto", "")).toBe("auto")
    expect(() => requestedBackend("auto", "epoll")).toThrow(ConfigError)
  })
})
