/*
 * ringline.h — the C ABI of libringline.so, the contract between the native
 * core and the TypeScript runtime (src/native/ is its only caller).
 *
 * Rules (see DESIGN.md): every symbol is ringline_<object>_<action>; handles
 * are opaque; constructors return the handle or NULL and write -errno to an
 * out-parameter; every other call returns >= 0 (a count or value) or -errno.
 * No globals, no threads, no callbacks. Shared records use 32-bit fields only
 * and their layout is published by ringline_layout_query().
 */
#ifndef RINGLINE_H
#define RINGLINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RINGLINE_ABI_VERSION 8u /* first word of ringline_layout_query; bumped whenever that list or a function signature changes */

/* ── Kernel features (bit set returned by ringline_kernel_probe) ─────────── */
#define RINGLINE_FEAT_RING          (1u << 0)  /* io_uring_setup works at all */
#define RINGLINE_FEAT_DEFER_TASKRUN (1u << 1)  /* IORING_SETUP_DEFER_TASKRUN accepted */
#define RINGLINE_FEAT_SINGLE_ISSUER (1u << 2)  /* IORING_SETUP_SINGLE_ISSUER accepted */
#define RINGLINE_FEAT_COOP_TASKRUN  (1u << 3)  /* IORING_SETUP_COOP_TASKRUN accepted */
#define RINGLINE_FEAT_ACCEPT_MULTI  (1u << 4)  /* multishot accept delivers with F_MORE */
#define RINGLINE_FEAT_RECV_MULTI    (1u << 5)  /* multishot recv with buffer select */
#define RINGLINE_FEAT_RECVMSG_MULTI (1u << 6)  /* multishot recvmsg with buffer select */
#define RINGLINE_FEAT_BUF_RING      (1u << 7)  /* provided buffer rings register */
#define RINGLINE_FEAT_SEND_ZC       (1u << 8)  /* IORING_OP_SEND_ZC supported */
#define RINGLINE_FEAT_EXT_ARG       (1u << 9)  /* bounded waits (IORING_FEAT_EXT_ARG) */
#define RINGLINE_FEAT_NODROP        (1u << 10) /* kernel keeps overflowed CQEs */
#define RINGLINE_FEAT_CQE_SKIP      (1u << 11) /* RINGLINE_CLOSE_QUIET posts nothing on success (5.17) */

/* ── Ring setup flags requested in ringline_ring_params.setup_flags ──────── */
#define RINGLINE_SETUP_DEFER_TASKRUN (1u << 0) /* implies SINGLE_ISSUER */
#define RINGLINE_SETUP_SINGLE_ISSUER (1u << 1) /* only the creating thread submits (IORING_SETUP_SINGLE_ISSUER) */
#define RINGLINE_SETUP_COOP_TASKRUN  (1u << 2) /* no IPI on completion; work runs at the next enter */

/* ── Limits ──────────────────────────────────────────────────────────────── */
#define RINGLINE_MAX_SQ_ENTRIES   32768u       /* kernel maximum */
#define RINGLINE_MAX_SLAB_BYTES   (1u << 30)   /* 1 GiB of send slab per ring */
#define RINGLINE_MAX_MSG_SLOTS    (1u << 20)   /* sendmsg/connect descriptors per ring */
#define RINGLINE_MAX_TIMER_SLOTS  (1u << 20)   /* timespecs for TIMEOUT ops per ring */
#define RINGLINE_MAX_BUFRINGS     8u           /* provided-buffer rings per ring */
#define RINGLINE_MAX_BUF_ENTRIES  32768u       /* kernel maximum */
#define RINGLINE_MAX_BUF_SIZE     (1u << 20)   /* bytes per provided buffer */
#define RINGLINE_MSG_MAX_IOV      32u          /* iovecs per sendmsg descriptor */
#define RINGLINE_SOCKADDR_MAX     128u         /* sizeof(struct sockaddr_storage) */
#define RINGLINE_RECVMSG_NAME_LEN 28u          /* name room in each recvmsg buffer (sockaddr_in6) */
#define RINGLINE_SLOT_MAX         0xFFFFFFu    /* slot is 24 bits of user_data */
#define RINGLINE_KIND_USER_MAX    239u         /* kinds 0..239 belong to the caller */
#define RINGLINE_KIND_WAKE        255u         /* record: another thread called ringline_ring_wake */
#define RINGLINE_KIND_OVERFLOW    254u         /* record: the kernel dropped `extra` CQEs */
#define RINGLINE_WAIT_UNBOUNDED   0xFFFFFFFFu  /* reap timeout: no kernel timer (the caller keeps a TIMEOUT op in flight) */
#define RINGLINE_NOTIFY_CQ        (1u << 0) /* notify_toggle: the ring's own completions ring the doorbell too */
#define RINGLINE_NOTIFY_DOORBELL  (1u << 1) /* notify_toggle: arm the doorbell (doorbell.c) */

/* ── Opcodes of ringline_op (fields a/b/c per opcode) ────────────────────── */
enum ringline_opcode {
  RINGLINE_OP_NOP = 0,           /* no fields */
  RINGLINE_OP_ACCEPT_MULTI = 1,  /* fd = listener; accepted fds are NONBLOCK|CLOEXEC, res = fd */
  RINGLINE_OP_RECV_MULTI = 2,    /* fd; a = bgid */
  RINGLINE_OP_RECVMSG_MULTI = 3, /* fd; a = bgid; buffer = recvmsg_out + name + payload */
  RINGLINE_OP_SEND = 4,          /* fd; a = slab offset, b = length, c = extra MSG_* flags */
  RINGLINE_OP_SENDMSG = 5,       /* fd; a = msg slot (descriptor written first), c = MSG_* flags */
  RINGLINE_OP_SEND_ZC = 6,       /* fd; a = slab offset, b = length; a second CQE has F_NOTIF */
  RINGLINE_OP_POLL_ADD = 7,      /* fd; a = poll mask (POLLIN = 1, POLLOUT = 4) */
  RINGLINE_OP_CONNECT = 8,       /* fd; a = msg slot whose name is the peer address */
  RINGLINE_OP_SHUTDOWN = 9,      /* fd; a = how (SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2) */
  RINGLINE_OP_CLOSE = 10,        /* fd; a = 0 or RINGLINE_CLOSE_QUIET */
  RINGLINE_OP_TIMEOUT = 11,      /* a = timer slot, b = milliseconds from now; res = -ETIME */
  RINGLINE_OP_TIMEOUT_ABS = 12,  /* a = timer slot, b = seconds, c = nanoseconds (CLOCK_MONOTONIC) */
  RINGLINE_OP_CANCEL = 13,       /* a = target kind, b = target slot, c = target generation */
  RINGLINE_OP_CANCEL_FD = 14,    /* fd: cancel every request on it */
  RINGLINE_OP_COUNT = 15         /* number of opcodes: this and above are -EINVAL */
};

/* CLOSE's a: no completion when the close succeeds (the caller does not wait for
 * it; a kernel before 5.17 posts one anyway, and a failure always posts one). */
#define RINGLINE_CLOSE_QUIET 1u

/* ── Shared records (32-bit fields; checked by ringline_layout_query) ────── */

/* In/out parameters of ringline_ring_create. */
typedef struct ringline_ring_params {
  uint32_t sq_entries;      /* power of two, 1..RINGLINE_MAX_SQ_ENTRIES */
  uint32_t cq_entries;      /* 0 = 4 × sq_entries; else a power of two >= sq_entries */
  uint32_t setup_flags;     /* in: RINGLINE_SETUP_* wanted; out: those the kernel granted */
  uint32_t slab_bytes;      /* native send slab the SEND/SENDMSG ops point into (may be 0) */
  uint32_t msg_slots;       /* sendmsg/connect descriptors (ringline_msg_desc) */
  uint32_t timer_slots;     /* timespecs for TIMEOUT ops */
  uint32_t max_ops;         /* op records per ringline_ring_prepare (0 = sq_entries) */
  uint32_t max_completions; /* completion records per ringline_ring_reap (0 = cq_entries) */
} ringline_ring_params;

/* One operation to submit; the caller fills the ring's op array. */
typedef struct ringline_op {
  uint32_t opcode; /* enum ringline_opcode */
  uint32_t kind;   /* echoed in the completion, 0..RINGLINE_KIND_USER_MAX */
  uint32_t slot;   /* echoed, 0..RINGLINE_SLOT_MAX */
  uint32_t gen;    /* echoed: generation of the slot */
  int32_t fd;      /* target descriptor, where the opcode has one */
  uint32_t a;      /* opcode argument */
  uint32_t b;      /* opcode argument */
  uint32_t c;      /* opcode argument */
} ringline_op;

/* One completion copied out by ringline_ring_reap. */
typedef struct ringline_completion {
  uint32_t kind;   /* from the op, or RINGLINE_KIND_WAKE / RINGLINE_KIND_OVERFLOW */
  uint32_t slot;   /* from the op */
  uint32_t gen;    /* from the op */
  int32_t res;     /* cqe->res: a count, an fd, or -errno */
  uint32_t flags;  /* cqe->flags: IORING_CQE_F_MORE 2, F_NOTIF 8, F_BUFFER 1 */
  int32_t bid;     /* provided-buffer id, or -1 when F_BUFFER is clear */
  uint32_t extra;  /* WAKE: wake count; OVERFLOW: CQEs the kernel dropped */
  uint32_t reserved; /* always 0 (pads the record to 32 bytes) */
} ringline_completion;

/* A sendmsg/connect descriptor, written by the caller before SENDMSG/CONNECT. */
typedef struct ringline_msg_desc {
  uint32_t iov_count;                    /* 0..RINGLINE_MSG_MAX_IOV */
  uint32_t name_len;                     /* 0 (connected socket) or sockaddr length */
  uint32_t iov[RINGLINE_MSG_MAX_IOV][2]; /* {slab offset, length} pairs */
  uint8_t name[RINGLINE_SOCKADDR_MAX];   /* destination sockaddr bytes */
} ringline_msg_desc;

/* Header the kernel writes at the start of each multishot recvmsg buffer (= struct io_uring_recvmsg_out). */
typedef struct ringline_recvmsg_out {
  uint32_t namelen;    /* bytes of peer address the kernel had (may exceed the room) */
  uint32_t controllen; /* bytes of control data (always 0 here) */
  uint32_t payloadlen; /* payload bytes in this buffer (what fitted, not the full length, if truncated) */
  uint32_t flags;      /* MSG_TRUNC (0x20) when the datagram did not fit (the rest is lost) */
} ringline_recvmsg_out;

/* ── Calls ───────────────────────────────────────────────────────────────── */
/* Opaque ring handle: one io_uring and everything it owns; used only by the thread that created it. */
typedef struct ringline_ring ringline_ring;

/* Which io_uring features this kernel offers: RINGLINE_FEAT_* bits, or -errno (-ENOSYS, -EPERM). */
int32_t ringline_kernel_probe(void);

/* Fills out[0..cap) with the record layout (order: see layout.c); returns the count or -EINVAL. */
int32_t ringline_layout_query(uint32_t *out, uint32_t cap);

/* Creates a ring from validated params (setup_flags updated to those granted); NULL and *err on failure. */
ringline_ring *ringline_ring_create(ringline_ring_params *params, int32_t *err);
/* Destroys the ring and everything it owns (buffer rings, slab, eventfds, doorbell); NULL is ignored. */
void ringline_ring_destroy(ringline_ring *ring);
/* Wakes a ring waiting in ringline_ring_reap (any thread); it reports a RINGLINE_KIND_WAKE record. */
int32_t ringline_ring_wake(ringline_ring *ring);
/* A new descriptor (the caller owns and closes it) of the socket that turns readable when the
 * armed doorbell rings (await it instead of blocking); each ring is a byte to read and ignore. */
int32_t ringline_ring_notify_fd(ringline_ring *ring);
/* What rings the doorbell (RINGLINE_NOTIFY_* bits; 0 while the caller is busy reaping anyway).
 * DOORBELL arms it: the next readiness edge of a watched socket, or a ringline_ring_wake, rings
 * it at once; look at the ring after arming, edges from before the call are dropped. CQ (with
 * DOORBELL only, else -EINVAL) adds the ring's own completions, but for a socket's completions
 * a DEFER_TASKRUN ring signals those only ~16 ms later on kernels such as 6.18 (timers at once).
 * Without DOORBELL an armed doorbell stays armed: it may still ring once (a spare wake-up,
 * never a lost one). */
int32_t ringline_ring_notify_toggle(ringline_ring *ring, uint32_t what);
/* Adds sockets to the doorbell's set (an fd already in it is fine); a closed fd leaves it by itself.
 * Returns 0, or the -errno of the first fd it could not add (the others are still added). */
int32_t ringline_ring_watch(ringline_ring *ring, const int32_t *fds, uint32_t count);
/* Takes sockets out of the doorbell's set (an fd not in it is fine), for a caller busy long enough
 * that their wake-ups' visits to the set cost more than one epoll_ctl each way; a socket out of the
 * set does not ring the doorbell, so put it back (ringline_ring_watch) before parking.
 * Returns 0, or the -errno of the first fd it could not take out (the others are still taken out). */
int32_t ringline_ring_unwatch(ringline_ring *ring, const int32_t *fds, uint32_t count);
/* Turns op records [0, n) into SQEs (all validated first: an invalid op takes none, -errno);
 * returns how many were taken, fewer than n when the SQ stayed full or flushing it failed after
 * some were taken (resubmit the rest later); -errno when a flush failed before any was taken. */
int32_t ringline_ring_prepare(ringline_ring *ring, uint32_t n);
/* Submits prepared SQEs, waits for >= min completions up to timeout_us (or RINGLINE_WAIT_UNBOUNDED), copies records; returns count. */
int32_t ringline_ring_reap(ringline_ring *ring, uint32_t min, uint32_t timeout_us);
/* Pointer to the op array (max_ops records). */
ringline_op *ringline_ring_ops(ringline_ring *ring);
/* Pointer to the completion array (max_completions records). */
ringline_completion *ringline_ring_completions(ringline_ring *ring);
/* Pointer to the msg descriptor array (msg_slots records). */
ringline_msg_desc *ringline_ring_msgs(ringline_ring *ring);
/* Pointer to the send slab (slab_bytes bytes). */
uint8_t *ringline_ring_slab(ringline_ring *ring);

/* slab_offset for a buffer ring whose buffers are mapped on their own rather than placed in the slab. */
#define RINGLINE_BUF_OWN_MEMORY 0xFFFFFFFFu

/* Registers a provided-buffer ring: entries a power of two, buf_size > 0; all buffers start with the kernel.
 * The buffers live in the send slab at slab_offset (entries × buf_size bytes within it), so SEND/SENDMSG
 * can send straight from a received buffer, or in memory of their own (RINGLINE_BUF_OWN_MEMORY). */
int32_t ringline_bufring_create(ringline_ring *ring, uint32_t bgid, uint32_t entries, uint32_t buf_size,
                                uint32_t slab_offset);
/* Pointer to buffer 0 of group bgid (buffer i is at i × buf_size), or NULL. */
uint8_t *ringline_bufring_base(ringline_ring *ring, uint32_t bgid);
/* Pointer to the group's return array (entries × uint16 buffer ids) read by recycle. */
uint16_t *ringline_bufring_returns(ringline_ring *ring, uint32_t bgid);
/* Hands returns[0, n) back to the kernel in one batch (validated first); returns n. */
int32_t ringline_bufring_recycle(ringline_ring *ring, uint32_t bgid, uint32_t n);
/* Unregisters and frees one buffer ring (the ring frees the rest on destroy). */
int32_t ringline_bufring_destroy(ringline_ring *ring, uint32_t bgid);

/* Parses "a.b.c.d:port", "[v6]:port", "localhost:port" or "unix:/path" into sockaddr bytes; returns its length. */
int32_t ringline_addr_parse(const char *text, uint8_t *out, uint32_t cap);
/* Formats sockaddr bytes as "host:port" / "[v6]:port" / "unix:/path" (NUL-terminated); returns strlen. */
int32_t ringline_addr_format(const uint8_t *sa, uint32_t len, char *out, uint32_t cap);

#define RINGLINE_SOCK_REUSEPORT (1u << 0) /* SO_REUSEPORT on the listener/UDP socket */
#define RINGLINE_SOCK_UNLINK    (1u << 1) /* unix listener: remove a stale socket file first */

/* A bound, listening, non-blocking TCP or unix stream socket; returns the fd. */
int32_t ringline_socket_listen(const uint8_t *sa, uint32_t len, uint32_t backlog, uint32_t flags);
/* A bound, non-blocking UDP socket; returns the fd. */
int32_t ringline_socket_udp(const uint8_t *sa, uint32_t len, uint32_t flags);
/* An unconnected non-blocking stream socket of the family of sa (for OP_CONNECT); returns the fd. */
int32_t ringline_socket_stream(const uint8_t *sa, uint32_t len);
/* Writes the socket's local (peer = 0) or peer (peer = 1) address as sockaddr bytes; returns its length. */
int32_t ringline_socket_name(int32_t fd, uint32_t peer, uint8_t *out, uint32_t cap);
/* A connected pair of non-blocking unix stream sockets in fds[0], fds[1]; returns 0. */
int32_t ringline_socket_pair(int32_t *fds);
/* Sets TCP_NODELAY (on = 0 or 1); returns 0. */
int32_t ringline_socket_nodelay(int32_t fd, uint32_t on);
/* Closes a descriptor outside the ring (setup failures, teardown); returns 0. */
int32_t ringline_socket_close(int32_t fd);

/* Pins the calling thread to one CPU; returns 0. */
int32_t ringline_thread_pin(uint32_t cpu);

#ifdef __cplusplus
}
#endif
#endif /* RINGLINE_H */
