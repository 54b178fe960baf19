// Loads the handler class a launch names: a module URL/path and an export name.
import type { HandlerClass } from "./handler"

export async function resolveHandler(url: string, exportName: string): Promise<HandlerClass> {
  const mod = (await import(url)) as Record<string, unknown>
  const cls = mod[exportName]
  if (typeof cls !== "function" || typeof (cls as Partial<HandlerClass>).createForWorker !== "function") {
    throw new TypeError(`${url}: export "${exportName}" is not a handler class with a static createForWorker(workerId)`)
  }
  return cls as unknown as HandlerClass
}
