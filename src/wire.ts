// Errors cross the Worker boundary as plain data and come back with their
// name, message, code and fields intact.
import { ConfigError } from "./errors"

export interface WireError {
  name: string
  message: string
  code?: string
  field?: string
  value?: unknown
  rule?: string
  stack?: string
}

export function serializeError(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) }
  const x = e as Error & Partial<WireError>
  return { name: x.name, message: x.message, code: x.code, field: x.field, value: x.value, rule: x.rule, stack: x.stack }
}

export function deserializeError(w: WireError): Error {
  if (w.name === "ConfigError" && w.field !== undefined) return new ConfigError(w.field, w.value, w.rule ?? "")
  const e = new Error(w.message) as Error & { code?: string }
  e.name = w.name
  if (w.code !== undefined) e.code = w.code
  if (w.stack) e.stack = w.stack
  return e
}
