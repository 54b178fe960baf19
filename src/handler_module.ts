// Loads the handler class a launch names (a module URL/path and an export name), and checks one given inline.
import type { HandlerClass } from "./handler"

export async function resolveHandler(url: string, exportName: string): Promise<HandlerClass> {
  const mod = (await import(url)) as Record<string, unknown>
  return checkHandlerClass(mod[exportName], `${url}: export "${exportName}"`)
}

/** `cls` as a HandlerClass, or a TypeError naming `what` (plain JavaScript callers get no type check). */
export function checkHandlerClass(cls: unknown, what: string): HandlerClass {
  if (typeof cls !== "function" || typeof (cls as Partial<HandlerClass>).createForWorker !== "function") {
    throw new TypeError(`${what} is not a handler class with a static createForWorker(workerId)`)
  }
  return cls as unknown as HandlerClass
}
