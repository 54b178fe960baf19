/* doorbell.c — what wakes a parked caller promptly when its sockets stir.
 *
 * A caller parked on notify_fd relies on the kernel signalling that eventfd when
 * completions are pending. For a DEFER_TASKRUN ring and completions that come
 * from a socket's readiness (recv, accept, send, connect), kernels as recent as
 * 6.18 signal it only after an RCU grace period: ~16 ms here (bench/wake_probe.c),
 * while timer completions signal it at once. So the ring also keeps a doorbell:
 * an edge-triggered epoll set of the sockets it serves (watch_fd), and a small
 * plain ring (no DEFER_TASKRUN: it signals at once) with a POLL_ADD on that set
 * and notify_fd registered. Arming costs the busy path nothing: sockets join the
 * set only when the caller asks (ringline_ring_watch, typically as it parks),
 * and the POLL_ADD is armed only by ringline_ring_notify_toggle(ring, 1).
 */
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

/* Edges the set reports: readable (data, a connection to accept, EOF), writable
 * (send room, a connect completed), errors and hang-ups (always reported). */
#define WATCHED_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

int core_bell_init(ringline_ring *ring) {
  ring->watch_fd = epoll_create1(EPOLL_CLOEXEC);
  if (ring->watch_fd < 0) return -errno;
  int rc = io_uring_queue_init(2, &ring->bell, 0);
  if (rc < 0) return rc;
  ring->bell_ready = 1;
  rc = io_uring_register_eventfd(&ring->bell, ring->notify_fd);
  if (rc < 0) return rc;
  /* ringline_ring_wake's eventfd rings the doorbell too. */
  int32_t wake = ring->wake_fd;
  return ringline_ring_watch(ring, &wake, 1);
}

void core_bell_free(ringline_ring *ring) {
  if (ring->bell_ready) io_uring_queue_exit(&ring->bell);
  if (ring->watch_fd >= 0) close(ring->watch_fd);
}

int32_t ringline_ring_watch(ringline_ring *ring, const int32_t *fds, uint32_t count) {
  if (ring == NULL || (fds == NULL && count > 0)) return -EINVAL;
  int32_t first_error = 0;
  for (uint32_t i = 0; i < count; i++) {
    struct epoll_event ev = {.events = WATCHED_EVENTS, .data = {.u64 = 0}};
    if (epoll_ctl(ring->watch_fd, EPOLL_CTL_ADD, fds[i], &ev) < 0 && errno != EEXIST && first_error == 0)
      first_error = -errno;
  }
  return first_error;
}

int core_bell_arm(ringline_ring *ring) {
  /* Edges collected while the caller was busy are stale: it has looked at the
   * ring since (or looks right after this). Left in the set, they would ring at once. */
  struct epoll_event events[64];
  int n;
  do {
    n = epoll_wait(ring->watch_fd, events, 64, 0);
  } while (n == 64);
  if (n < 0) return -errno;
  struct io_uring_cqe *cqe;
  while (io_uring_peek_cqe(&ring->bell, &cqe) == 0) {
    io_uring_cqe_seen(&ring->bell, cqe);
    ring->bell_armed = 0;
  }
  if (ring->bell_armed) return 0;
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->bell);
  if (sqe == NULL) return -EBUSY; /* cannot happen: one POLL_ADD at a time in a ring of two */
  io_uring_prep_poll_add(sqe, ring->watch_fd, POLLIN);
  int rc = io_uring_submit(&ring->bell);
  if (rc < 0) return rc;
  ring->bell_armed = 1;
  return 0;
}
