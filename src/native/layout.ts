// The shared records as TypeScript sees them: field indices into Int32/Uint32
// views. ringline_layout_query() must agree with EXPECTED_LAYOUT at load.

export const ABI_VERSION = 8

/** ringline_ring_params: 8 × u32. */
export const PARAMS = { words: 8, sqEntries: 0, cqEntries: 1, setupFlags: 2, slabBytes: 3, msgSlots: 4, timerSlots: 5, maxOps: 6, maxCompletions: 7 } as const
/** ringline_op: 8 × 32-bit. */
export const OP = { words: 8, opcode: 0, kind: 1, slot: 2, gen: 3, fd: 4, a: 5, b: 6, c: 7 } as const
/** ringline_completion: 8 × 32-bit. */
export const CQE = { words: 8, kind: 0, slot: 1, gen: 2, res: 3, flags: 4, bid: 5, extra: 6 } as const
/** ringline_msg_desc: counts, {offset, len} iov pairs, sockaddr bytes. */
export const MSG = { maxIov: 32, sockaddrMax: 128, iovCount: 0, nameLen: 1, iovWord: 2, nameByte: 8 + 32 * 8, bytes: 8 + 32 * 8 + 128 } as const
/** Each multishot recvmsg buffer: 16-byte header (u32 word indices below), then 28 bytes of name room, then payload. */
export const RECVMSG = { headerBytes: 16, nameRoom: 28, namelen: 0, controllen: 1, payloadlen: 2, flags: 3 } as const

export const Opcode = {
  NOP: 0, ACCEPT_MULTI: 1, RECV_MULTI: 2, RECVMSG_MULTI: 3, SEND: 4, SENDMSG: 5, SEND_ZC: 6,
  POLL_ADD: 7, CONNECT: 8, SHUTDOWN: 9, CLOSE: 10, TIMEOUT: 11, TIMEOUT_ABS: 12, CANCEL: 13,
  CANCEL_FD: 14, COUNT: 15,
} as const

export const KIND_USER_MAX = 239
export const KIND_WAKE = 255
export const KIND_OVERFLOW = 254
/** reap timeout meaning "no kernel timer": the caller keeps a TIMEOUT op in flight. */
export const WAIT_UNBOUNDED = 0xffffffff
/** bufring_create's slab offset for buffers mapped apart from the slab. */
export const BUF_OWN_MEMORY = 0xffffffff
/** CLOSE's `a`: no completion when the close succeeds. */
export const CLOSE_QUIET = 1
/** notify_toggle's bits: arming the doorbell, and the ring's own completions ringing it too. */
export const Notify = { CQ: 1 << 0, DOORBELL: 1 << 1 } as const

export const CQE_F_BUFFER = 1
export const CQE_F_MORE = 2
export const CQE_F_NOTIF = 8

export const Feature = {
  RING: 1 << 0, DEFER_TASKRUN: 1 << 1, SINGLE_ISSUER: 1 << 2, COOP_TASKRUN: 1 << 3,
  ACCEPT_MULTI: 1 << 4, RECV_MULTI: 1 << 5, RECVMSG_MULTI: 1 << 6, BUF_RING: 1 << 7,
  SEND_ZC: 1 << 8, EXT_ARG: 1 << 9, NODROP: 1 << 10, CQE_SKIP: 1 << 11,
} as const

export const Setup = { DEFER_TASKRUN: 1 << 0, SINGLE_ISSUER: 1 << 1, COOP_TASKRUN: 1 << 2 } as const
export const SockFlag = { REUSEPORT: 1 << 0, UNLINK: 1 << 1 } as const

const bytes = (words: number) => words * 4
const field = (index: number) => index * 4

/** Same order as csrc/layout.c. */
export const EXPECTED_LAYOUT: readonly number[] = [
  ABI_VERSION,
  bytes(PARAMS.words),
  ...[PARAMS.sqEntries, PARAMS.cqEntries, PARAMS.setupFlags, PARAMS.slabBytes, PARAMS.msgSlots, PARAMS.timerSlots, PARAMS.maxOps, PARAMS.maxCompletions].map(field),
  bytes(OP.words),
  ...[OP.opcode, OP.kind, OP.slot, OP.gen, OP.fd, OP.a, OP.b, OP.c].map(field),
  bytes(CQE.words),
  ...[CQE.kind, CQE.slot, CQE.gen, CQE.res, CQE.flags, CQE.bid, CQE.extra].map(field),
  MSG.bytes,
  field(MSG.iovCount), field(MSG.nameLen), field(MSG.iovWord), MSG.nameByte,
  MSG.maxIov, MSG.sockaddrMax,
  RECVMSG.headerBytes,
  ...[RECVMSG.namelen, RECVMSG.controllen, RECVMSG.payloadlen, RECVMSG.flags].map(field),
  RECVMSG.nameRoom,
  Opcode.COUNT, KIND_USER_MAX, KIND_WAKE, KIND_OVERFLOW,
  WAIT_UNBOUNDED, BUF_OWN_MEMORY, CLOSE_QUIET, Notify.CQ, Notify.DOORBELL,
]
