/* internal.h — the ring's private state, shared by the .c files of the core. */
#ifndef RINGLINE_INTERNAL_H
#define RINGLINE_INTERNAL_H

#include <liburing.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ringline.h"

/* The kernel-facing twin of a ringline_msg_desc: built at prepare time and
 * kept until the completion, because the kernel may read it asynchronously. */
typedef struct msg_native {
  struct msghdr hdr;
  struct iovec iov[RINGLINE_MSG_MAX_IOV];
  struct sockaddr_storage name;
} msg_native;

typedef struct bufring {
  int used;
  uint32_t bgid;
  uint32_t entries;
  uint32_t buf_size;
  struct io_uring_buf_ring *br; /* page-aligned ring of entries × io_uring_buf */
  size_t br_bytes;
  uint8_t *bufs; /* entries × buf_size */
  size_t bufs_bytes;
  int bufs_in_slab; /* bufs points into the ring's slab (not mapped here) */
  uint16_t *returns; /* caller-written ids for recycle */
} bufring;

struct ringline_ring {
  struct io_uring uring;
  int uring_ready;
  int wake_fd;   /* other threads write here; the ring keeps a multishot poll on it */
  int cq_fd;     /* eventfd registered with the kernel: signalled when CQEs are pending (only while the doorbell is armed) */
  int wake_armed;
  /* The doorbell (doorbell.c): an epoll set of the ring's sockets, polled by a plain ring
   * that then writes a byte into a socketpair the caller waits on. */
  int watch_fd;
  struct io_uring bell;
  int bell_ready;
  int bell_inflight; /* its POLL_ADD and the SEND linked to it, until both complete */
  int bell_pair[2];  /* [0] the bell writes, [1] the caller reads (ringline_ring_notify_fd hands out copies) */
  uint8_t bell_byte;
  int fence_fd; /* an eventfd that stays readable: ends the arming's wait-queue fence at once (doorbell.c) */
  uint32_t setup_flags; /* RINGLINE_SETUP_* granted */
  uint32_t max_ops;
  uint32_t max_completions;
  uint32_t overflow_seen;
  ringline_op *ops;
  ringline_completion *completions;
  uint8_t *slab;
  uint32_t slab_bytes;
  ringline_msg_desc *msgs;
  msg_native *msgs_native;
  uint32_t msg_slots;
  struct __kernel_timespec *timers;
  uint32_t timer_slots;
  bufring bufrings[RINGLINE_MAX_BUFRINGS];
  /* Multishot recvmsg's template (name room only); the kernel reads it at issue. */
  struct msghdr recvmsg_template;
};

/* user_data = generation (32) | kind (8) | slot (24), built from 32-bit fields. */
static inline uint64_t core_user_data(uint32_t kind, uint32_t slot, uint32_t gen) {
  return ((uint64_t)gen << 32) | ((uint64_t)(kind & 0xFFu) << 24) | (slot & RINGLINE_SLOT_MAX);
}

static inline int core_is_pow2(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

/* Anonymous page-aligned mapping (NULL on failure) and its release. */
void *core_map(size_t bytes);
void core_unmap(void *p, size_t bytes);

/* Re-arms the internal multishot poll on wake_fd; 0 or -errno. */
int core_arm_wake(ringline_ring *ring);

/* The doorbell's setup (after cq_fd and wake_fd exist), teardown, and arming
 * (drains the set's stale edges, re-arms the POLL_ADD): 0 or -errno. */
int core_bell_init(ringline_ring *ring);
void core_bell_free(ringline_ring *ring);
int core_bell_arm(ringline_ring *ring);

bufring *core_find_bufring(ringline_ring *ring, uint32_t bgid);
void core_bufrings_free(ringline_ring *ring);

#endif
