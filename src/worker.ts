// Entry point of every ringline Bun Worker: receives its WorkerInit, imports
// the handler module, runs a WorkerHost, and answers shutdown/notify messages.
import { WorkerHost, type WorkerInit } from "./host"
import { resolveHandler } from "./handler_module"
import { serializeError } from "./wire"

declare const self: Worker

export type ToWorker =
  | { type: "init"; init: WorkerInit; handlerUrl: string; exportName: string }
  | { type: "shutdown" }
  | { type: "notify" }

export type FromWorker =
  | { type: "ready"; tcp: string[]; udp: string[] }
  | { type: "error"; error: ReturnType<typeof serializeError> }
  | { type: "self-shutdown" }
  | { type: "exited"; report: Awaited<ReturnType<WorkerHost["shutdown"]>> }

let host: WorkerHost | null = null
const post = (m: FromWorker) => self.postMessage(m)

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const msg = event.data
  switch (msg.type) {
    case "init":
      try {
        const handlerClass = await resolveHandler(msg.handlerUrl, msg.exportName)
        host = new WorkerHost(msg.init, handlerClass)
        host.onSelfShutdown = () => post({ type: "self-shutdown" })
        const ready = await host.start()
        post({ type: "ready", ...ready })
      } catch (e) {
        host = null
        post({ type: "error", error: serializeError(e) })
      }
      break
    case "shutdown":
      if (host !== null) post({ type: "exited", report: await host.shutdown() })
      else post({ type: "exited", report: { workerId: -1, abortedConnections: 0, unsentBytes: 0 } })
      break
    case "notify":
      host?.driver.wake()
      break
  }
}
