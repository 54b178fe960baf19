// Handler progress: every handler-facing call (withData, sends, recvFrom,
// sendTo) bumps this per-thread counter, so a worker loop that resumed handlers
// can keep giving them microtask turns while they are still working through
// buffered data, and go back to the kernel only once they have gone quiet.
export const handlerProgress = { calls: 0 }
