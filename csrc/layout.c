/* layout.c — the shared records' sizes and offsets, asserted here and
 * published for the TypeScript side to check against its own definitions. */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "ringline.h"

#define FIELD(T, f) (uint32_t) offsetof(T, f)

_Static_assert(sizeof(ringline_ring_params) == 32, "ring params: 8 x u32");
_Static_assert(sizeof(ringline_op) == 32, "op record: 8 x 32-bit");
_Static_assert(sizeof(ringline_completion) == 32, "completion record: 8 x 32-bit");
_Static_assert(sizeof(ringline_msg_desc) == 8 + RINGLINE_MSG_MAX_IOV * 8 + RINGLINE_SOCKADDR_MAX,
               "msg descriptor: counts, iov pairs, sockaddr bytes");
_Static_assert(offsetof(ringline_msg_desc, name) == 8 + RINGLINE_MSG_MAX_IOV * 8, "msg name after iovs");
_Static_assert(sizeof(ringline_recvmsg_out) == 16, "io_uring_recvmsg_out is 16 bytes");
/* ringline_recvmsg_out is read in place over the header the kernel writes. */
_Static_assert(sizeof(ringline_recvmsg_out) == sizeof(struct io_uring_recvmsg_out), "recvmsg_out: kernel size");
_Static_assert(offsetof(ringline_recvmsg_out, namelen) == offsetof(struct io_uring_recvmsg_out, namelen) &&
                   offsetof(ringline_recvmsg_out, controllen) == offsetof(struct io_uring_recvmsg_out, controllen) &&
                   offsetof(ringline_recvmsg_out, payloadlen) == offsetof(struct io_uring_recvmsg_out, payloadlen) &&
                   offsetof(ringline_recvmsg_out, flags) == offsetof(struct io_uring_recvmsg_out, flags),
               "recvmsg_out: kernel field offsets");
_Static_assert(sizeof(((struct io_uring_recvmsg_out *)0)->namelen) == 4 &&
                   sizeof(((struct io_uring_recvmsg_out *)0)->controllen) == 4 &&
                   sizeof(((struct io_uring_recvmsg_out *)0)->payloadlen) == 4 &&
                   sizeof(((struct io_uring_recvmsg_out *)0)->flags) == 4,
               "recvmsg_out: kernel fields are 32-bit");
/* The sockaddr sizes the ABI's constants stand for. */
_Static_assert(RINGLINE_SOCKADDR_MAX == sizeof(struct sockaddr_storage), "SOCKADDR_MAX is sockaddr_storage");
_Static_assert(RINGLINE_RECVMSG_NAME_LEN == sizeof(struct sockaddr_in6), "recvmsg name room is sockaddr_in6");
_Static_assert(sizeof(struct sockaddr_in) <= RINGLINE_RECVMSG_NAME_LEN, "an IPv4 peer fits the name room");
_Static_assert((sizeof(ringline_recvmsg_out) + RINGLINE_RECVMSG_NAME_LEN) % 4 == 0,
               "payload after header + name room stays 4-byte aligned");
_Static_assert(offsetof(ringline_completion, res) == 12 && offsetof(ringline_op, fd) == 16,
               "signed fields where the TS views expect them");

/* The published order; src/native/layout.ts lists the same values. */
static const uint32_t layout[] = {
    RINGLINE_ABI_VERSION,
    sizeof(ringline_ring_params),
    FIELD(ringline_ring_params, sq_entries), FIELD(ringline_ring_params, cq_entries),
    FIELD(ringline_ring_params, setup_flags), FIELD(ringline_ring_params, slab_bytes),
    FIELD(ringline_ring_params, msg_slots), FIELD(ringline_ring_params, timer_slots),
    FIELD(ringline_ring_params, max_ops), FIELD(ringline_ring_params, max_completions),
    sizeof(ringline_op),
    FIELD(ringline_op, opcode), FIELD(ringline_op, kind), FIELD(ringline_op, slot), FIELD(ringline_op, gen),
    FIELD(ringline_op, fd), FIELD(ringline_op, a), FIELD(ringline_op, b), FIELD(ringline_op, c),
    sizeof(ringline_completion),
    FIELD(ringline_completion, kind), FIELD(ringline_completion, slot), FIELD(ringline_completion, gen),
    FIELD(ringline_completion, res), FIELD(ringline_completion, flags), FIELD(ringline_completion, bid),
    FIELD(ringline_completion, extra),
    sizeof(ringline_msg_desc),
    FIELD(ringline_msg_desc, iov_count), FIELD(ringline_msg_desc, name_len), FIELD(ringline_msg_desc, iov),
    FIELD(ringline_msg_desc, name),
    RINGLINE_MSG_MAX_IOV, RINGLINE_SOCKADDR_MAX,
    sizeof(ringline_recvmsg_out),
    FIELD(ringline_recvmsg_out, namelen), FIELD(ringline_recvmsg_out, controllen),
    FIELD(ringline_recvmsg_out, payloadlen), FIELD(ringline_recvmsg_out, flags),
    RINGLINE_RECVMSG_NAME_LEN,
    RINGLINE_OP_COUNT, RINGLINE_KIND_USER_MAX, RINGLINE_KIND_WAKE, RINGLINE_KIND_OVERFLOW,
    RINGLINE_WAIT_UNBOUNDED, RINGLINE_BUF_OWN_MEMORY, RINGLINE_CLOSE_QUIET, RINGLINE_NOTIFY_CQ, RINGLINE_NOTIFY_DOORBELL,
};

int32_t ringline_layout_query(uint32_t *out, uint32_t cap) {
  const uint32_t n = sizeof layout / sizeof layout[0];
  if (out == NULL || cap < n) return -EINVAL;
  for (uint32_t i = 0; i < n; i++) out[i] = layout[i];
  return (int32_t)n;
}
