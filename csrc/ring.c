/* ring.c — ring lifetime, cross-thread wake and batched completion reaping. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

void *core_map(size_t bytes) {
  if (bytes == 0) return NULL;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void core_unmap(void *p, size_t bytes) {
  if (p != NULL && bytes != 0) munmap(p, bytes);
}

static int validate_params(const ringline_ring_params *p) {
  if (!core_is_pow2(p->sq_entries) || p->sq_entries > RINGLINE_MAX_SQ_ENTRIES) return -EINVAL;
  if (p->cq_entries != 0 &&
      (!core_is_pow2(p->cq_entries) || p->cq_entries < p->sq_entries ||
       p->cq_entries > 4 * RINGLINE_MAX_SQ_ENTRIES))
    return -EINVAL;
  if (p->setup_flags & ~(RINGLINE_SETUP_DEFER_TASKRUN | RINGLINE_SETUP_SINGLE_ISSUER |
                         RINGLINE_SETUP_COOP_TASKRUN))
    return -EINVAL;
  if (p->slab_bytes > RINGLINE_MAX_SLAB_BYTES) return -EINVAL;
  if (p->msg_slots > RINGLINE_MAX_MSG_SLOTS) return -EINVAL;
  if (p->timer_slots > RINGLINE_MAX_TIMER_SLOTS) return -EINVAL;
  if (p->max_ops > 4 * RINGLINE_MAX_SQ_ENTRIES) return -EINVAL;
  if (p->max_completions > 16 * RINGLINE_MAX_SQ_ENTRIES) return -EINVAL;
  return 0;
}

/* IORING_SETUP_SUBMIT_ALL (5.18) is ours, not the caller's: asked for unless submit_all is 0. */
static unsigned kernel_setup_flags(uint32_t want, int submit_all) {
  unsigned f = IORING_SETUP_CQSIZE;
  if (submit_all) f |= IORING_SETUP_SUBMIT_ALL;
  if (want & RINGLINE_SETUP_DEFER_TASKRUN) f |= IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  if (want & RINGLINE_SETUP_SINGLE_ISSUER) f |= IORING_SETUP_SINGLE_ISSUER;
  if (want & RINGLINE_SETUP_COOP_TASKRUN) f |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  return f;
}

/* Tries the wanted flags, then drops them one at a time (most demanding first)
 * until the kernel accepts; the last step also drops SUBMIT_ALL, so a pre-5.18
 * kernel still gets a plain ring. *granted is the RINGLINE_SETUP_* set it took. */
static int init_uring(ringline_ring *ring, uint32_t sq, uint32_t cq, uint32_t want, uint32_t *granted) {
  static const uint32_t drop_order[] = {RINGLINE_SETUP_DEFER_TASKRUN, RINGLINE_SETUP_COOP_TASKRUN,
                                        RINGLINE_SETUP_SINGLE_ISSUER};
  const unsigned steps = sizeof drop_order / sizeof drop_order[0];
  uint32_t flags = want;
  int submit_all = 1;
  for (unsigned i = 0;; i++) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = kernel_setup_flags(flags, submit_all);
    p.cq_entries = cq;
    int rc = io_uring_queue_init_params(sq, &ring->uring, &p);
    if (rc == 0) {
      *granted = flags;
      return 0;
    }
    if (rc != -EINVAL || i > steps) return rc;
    if (i < steps)
      flags &= ~drop_order[i];
    else
      submit_all = 0; /* every RINGLINE_SETUP_* flag is gone already */
  }
}

ringline_ring *ringline_ring_create(ringline_ring_params *params, int32_t *err) {
  int32_t dummy;
  if (err == NULL) err = &dummy;
  if (params == NULL) {
    *err = -EINVAL;
    return NULL;
  }
  int rc = validate_params(params);
  if (rc < 0) {
    *err = rc;
    return NULL;
  }
  ringline_ring *ring = calloc(1, sizeof *ring);
  if (ring == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  ring->wake_fd = -1;
  ring->cq_fd = -1;
  ring->watch_fd = -1;
  ring->bell_pair[0] = ring->bell_pair[1] = -1;
  ring->fence_fd = -1;
  uint32_t cq = params->cq_entries ? params->cq_entries : 4 * params->sq_entries;
  ring->max_ops = params->max_ops ? params->max_ops : params->sq_entries;
  ring->max_completions = params->max_completions ? params->max_completions : cq;
  /* The kernel's CQ holds at most 2 x RINGLINE_MAX_SQ_ENTRIES: the default 4 x sq stops there
   * (max_completions above keeps 4 x sq, the size callers map the completion array at). */
  if (params->cq_entries == 0 && cq > 2 * RINGLINE_MAX_SQ_ENTRIES) cq = 2 * RINGLINE_MAX_SQ_ENTRIES;
  ring->slab_bytes = params->slab_bytes;
  ring->msg_slots = params->msg_slots;
  ring->timer_slots = params->timer_slots;
  ring->recvmsg_template.msg_namelen = RINGLINE_RECVMSG_NAME_LEN;

  rc = init_uring(ring, params->sq_entries, cq, params->setup_flags, &ring->setup_flags);
  if (rc < 0) goto fail;
  ring->uring_ready = 1;

  rc = -ENOMEM;
  ring->ops = calloc(ring->max_ops, sizeof *ring->ops);
  ring->completions = calloc(ring->max_completions, sizeof *ring->completions);
  if (ring->ops == NULL || ring->completions == NULL) goto fail;
  if (ring->slab_bytes && (ring->slab = core_map(ring->slab_bytes)) == NULL) goto fail;
  if (ring->msg_slots) {
    ring->msgs = calloc(ring->msg_slots, sizeof *ring->msgs);
    ring->msgs_native = calloc(ring->msg_slots, sizeof *ring->msgs_native);
    if (ring->msgs == NULL || ring->msgs_native == NULL) goto fail;
  }
  if (ring->timer_slots && (ring->timers = calloc(ring->timer_slots, sizeof *ring->timers)) == NULL)
    goto fail;

  ring->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ring->cq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ring->wake_fd < 0 || ring->cq_fd < 0) {
    rc = -errno;
    goto fail;
  }
  rc = io_uring_register_eventfd(&ring->uring, ring->cq_fd);
  if (rc < 0) goto fail;
  rc = io_uring_cq_eventfd_toggle(&ring->uring, false); /* on only while parked (notify_toggle) */
  if (rc < 0) goto fail;
  rc = core_bell_init(ring);
  if (rc < 0) goto fail;
  rc = core_arm_wake(ring);
  if (rc < 0) goto fail;
  rc = io_uring_submit(&ring->uring);
  if (rc < 0) goto fail;

  params->setup_flags = ring->setup_flags;
  *err = 0;
  return ring;
fail:
  ringline_ring_destroy(ring);
  *err = rc < 0 ? rc : -ENOMEM;
  return NULL;
}

void ringline_ring_destroy(ringline_ring *ring) {
  if (ring == NULL) return;
  core_bufrings_free(ring);
  if (ring->uring_ready) io_uring_queue_exit(&ring->uring); /* cancels in-flight work */
  core_bell_free(ring);
  if (ring->wake_fd >= 0) close(ring->wake_fd);
  if (ring->cq_fd >= 0) close(ring->cq_fd);
  free(ring->ops);
  free(ring->completions);
  core_unmap(ring->slab, ring->slab_bytes);
  free(ring->msgs);
  free(ring->msgs_native);
  free(ring->timers);
  free(ring);
}

int core_arm_wake(ringline_ring *ring) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->uring);
  if (sqe == NULL) {
    int rc = io_uring_submit(&ring->uring);
    if (rc < 0) return rc;
    sqe = io_uring_get_sqe(&ring->uring);
    if (sqe == NULL) return -EBUSY;
  }
  io_uring_prep_poll_multishot(sqe, ring->wake_fd, POLLIN);
  io_uring_sqe_set_data64(sqe, core_user_data(RINGLINE_KIND_WAKE, 0, 0));
  ring->wake_armed = 1;
  return 0;
}

int32_t ringline_ring_wake(ringline_ring *ring) {
  if (ring == NULL) return -EINVAL;
  uint64_t one = 1;
  /* EAGAIN means the counter is saturated: a wake is already pending. */
  if (write(ring->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN) return -errno;
  return 0;
}

int32_t ringline_ring_notify_toggle(ringline_ring *ring, uint32_t what) {
  /* The ring's own signal reaches notify_fd through the doorbell: CQ alone would ring nothing. */
  if (ring == NULL || (what & ~(RINGLINE_NOTIFY_CQ | RINGLINE_NOTIFY_DOORBELL)) || what == RINGLINE_NOTIFY_CQ) return -EINVAL;
  if (what & RINGLINE_NOTIFY_DOORBELL) {
    int rc = core_bell_arm(ring);
    if (rc < 0) return rc;
  }
  return io_uring_cq_eventfd_toggle(&ring->uring, (what & RINGLINE_NOTIFY_CQ) != 0);
}

int32_t ringline_ring_notify_fd(ringline_ring *ring) {
  if (ring == NULL) return -EINVAL;
  int fd = fcntl(ring->bell_pair[1], F_DUPFD_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}
ringline_op *ringline_ring_ops(ringline_ring *ring) { return ring ? ring->ops : NULL; }
ringline_completion *ringline_ring_completions(ringline_ring *ring) { return ring ? ring->completions : NULL; }
ringline_msg_desc *ringline_ring_msgs(ringline_ring *ring) { return ring ? ring->msgs : NULL; }
uint8_t *ringline_ring_slab(ringline_ring *ring) { return ring ? ring->slab : NULL; }

static uint32_t take_wake(ringline_ring *ring, const struct io_uring_cqe *cqe) {
  uint64_t count = 0;
  if (read(ring->wake_fd, &count, sizeof count) != sizeof count) count = 0;
  if (!(cqe->flags & IORING_CQE_F_MORE)) ring->wake_armed = 0;
  return count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
}

/* Copies ready CQEs into the completion array; returns how many records. */
static uint32_t copy_completions(ringline_ring *ring) {
  uint32_t n = 0;
  unsigned overflow = ring->uring.cq.koverflow ? IO_URING_READ_ONCE(*ring->uring.cq.koverflow) : 0;
  if (overflow != ring->overflow_seen && n < ring->max_completions) {
    ringline_completion *r = &ring->completions[n++];
    memset(r, 0, sizeof *r);
    r->kind = RINGLINE_KIND_OVERFLOW;
    r->bid = -1;
    r->extra = overflow - ring->overflow_seen;
    ring->overflow_seen = overflow;
  }
  while (n < ring->max_completions) {
    struct io_uring_cqe *cqes[64];
    uint32_t room = ring->max_completions - n;
    unsigned got = io_uring_peek_batch_cqe(&ring->uring, cqes, room < 64 ? room : 64);
    if (got == 0) break;
    for (unsigned i = 0; i < got; i++) {
      const struct io_uring_cqe *cqe = cqes[i];
      ringline_completion *r = &ring->completions[n++];
      r->kind = (uint32_t)(cqe->user_data >> 24) & 0xFFu;
      r->slot = (uint32_t)cqe->user_data & RINGLINE_SLOT_MAX;
      r->gen = (uint32_t)(cqe->user_data >> 32);
      r->res = cqe->res;
      r->flags = cqe->flags;
      r->bid = (cqe->flags & IORING_CQE_F_BUFFER) ? (int32_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) : -1;
      r->extra = r->kind == RINGLINE_KIND_WAKE ? take_wake(ring, cqe) : 0;
      r->reserved = 0;
    }
    io_uring_cq_advance(&ring->uring, got);
  }
  return n;
}

int32_t ringline_ring_reap(ringline_ring *ring, uint32_t min, uint32_t timeout_us) {
  if (ring == NULL) return -EINVAL;
  if (min > ring->max_completions) return -EINVAL;
  if (!ring->wake_armed) {
    int rc = core_arm_wake(ring);
    if (rc < 0) return rc;
  }
  int rc;
  if (min == 0 || timeout_us == 0) {
    rc = io_uring_submit_and_get_events(&ring->uring);
  } else if (timeout_us == RINGLINE_WAIT_UNBOUNDED) {
    /* No timer armed per wait: each one costs timer reprogramming (bench/: "C io_uring, timed waits"). */
    rc = io_uring_submit_and_wait(&ring->uring, min);
    if (rc == -EINTR) rc = 0;
  } else {
    struct __kernel_timespec ts = {.tv_sec = timeout_us / 1000000u,
                                   .tv_nsec = (long long)(timeout_us % 1000000u) * 1000};
    struct io_uring_cqe *cqe = NULL;
    rc = io_uring_submit_and_wait_timeout(&ring->uring, &cqe, min, &ts, NULL);
    if (rc == -ETIME || rc == -EINTR) rc = 0; /* the bound expired: report what is there */
  }
  if (rc < 0 && rc != -EBUSY && rc != -EAGAIN) return rc;
  return (int32_t)copy_completions(ring);
}
