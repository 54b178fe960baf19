/* doorbell.c — what wakes a parked caller promptly when its sockets stir.
 *
 * A parked caller needs a signal when completions are pending. The kernel can
 * signal an eventfd (cq_fd) for that, but for a DEFER_TASKRUN ring and completions
 * that come from a socket's readiness (recv, accept, send, connect), kernels as
 * recent as 6.18 signal it only after an RCU grace period: ~16 ms here
 * (bench/wake_probe.c), while timer completions signal it at once. So the ring
 * keeps a doorbell: an edge-triggered epoll set of the sockets it serves
 * (ringline_ring_watch), its wake eventfd and cq_fd, and a small plain ring (no
 * DEFER_TASKRUN: it completes at once) with a POLL_ADD on that set linked to a
 * one-byte SEND into a socketpair. The caller waits on the pair's other end
 * (notify_fd): a socket, because an event loop that adopts one (Bun.connect({fd}))
 * takes each ring with a single recv, where a file stream on an eventfd costs
 * three reads and two epoll_ctl. Arming costs the busy path nothing: sockets join
 * the set only when the caller asks (typically as it parks), and the POLL_ADD is
 * armed only by ringline_ring_notify_toggle(ring, RINGLINE_NOTIFY_DOORBELL).
 * Being in the set does cost: the set's entry waits on the socket, so each of
 * its wake-ups (a datagram in, a sent one freed) visits it; a caller busy for a
 * long spell takes its sockets out (ringline_ring_unwatch) and puts them back
 * before it parks.
 *
 * Arming drops the edges collected while the caller was busy, then the caller
 * looks at the ring once. A socket's wake-up calls its waiters one after another
 * under the socket's wait-queue lock, and the set's entry often comes first (it
 * joined the queue after the ring's op did): an edge can be dropped while the
 * ring's own callback, which queues the completion that look must see, has yet
 * to run (a vCPU descheduled in between is enough). So arming fences each
 * dropped socket: poll() joins its wait queue, which takes that lock, so any
 * wake-up it was in has finished before the look.
 */
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* Edges the set reports: readable (data, a connection to accept, EOF), writable
 * (send room, a connect completed), errors and hang-ups (always reported). */
#define WATCHED_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)

int core_bell_init(ringline_ring *ring) {
  ring->watch_fd = epoll_create1(EPOLL_CLOEXEC);
  if (ring->watch_fd < 0) return -errno;
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ring->bell_pair) < 0) return -errno;
  ring->bell_byte = 1;
  ring->fence_fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC); /* never read: readable for good */
  if (ring->fence_fd < 0) return -errno;
  int rc = io_uring_queue_init(4, &ring->bell, 0);
  if (rc < 0) return rc;
  ring->bell_ready = 1;
  /* ringline_ring_wake's eventfd rings the doorbell, and so do the ring's own completions
   * while the caller lets them (RINGLINE_NOTIFY_CQ). */
  const int32_t own[2] = {ring->wake_fd, ring->cq_fd};
  return ringline_ring_watch(ring, own, 2);
}

void core_bell_free(ringline_ring *ring) {
  if (ring->bell_ready) io_uring_queue_exit(&ring->bell);
  if (ring->watch_fd >= 0) close(ring->watch_fd);
  if (ring->fence_fd >= 0) close(ring->fence_fd);
  for (int i = 0; i < 2; i++)
    if (ring->bell_pair[i] >= 0) close(ring->bell_pair[i]);
}

/* One epoll_ctl op on each fd; `already` (EEXIST on add, ENOENT on delete) is no error.
 * Returns 0, or the -errno of the first fd that failed (the others are still done). */
static int32_t ctl_each(ringline_ring *ring, int op, int already, const int32_t *fds, uint32_t count) {
  if (ring == NULL || (fds == NULL && count > 0)) return -EINVAL;
  int32_t first_error = 0;
  for (uint32_t i = 0; i < count; i++) {
    struct epoll_event ev = {.events = WATCHED_EVENTS, .data = {.fd = fds[i]}};
    if (epoll_ctl(ring->watch_fd, op, fds[i], &ev) < 0 && errno != already && first_error == 0) first_error = -errno;
  }
  return first_error;
}

int32_t ringline_ring_watch(ringline_ring *ring, const int32_t *fds, uint32_t count) {
  return ctl_each(ring, EPOLL_CTL_ADD, EEXIST, fds, count);
}

int32_t ringline_ring_unwatch(ringline_ring *ring, const int32_t *fds, uint32_t count) {
  return ctl_each(ring, EPOLL_CTL_DEL, ENOENT, fds, count);
}

/* Waits out any wake-up still calling the waiters of fds[0..n): poll() joins each
 * fd's wait queue under the lock that wake-up holds. Each fd asks for no events,
 * and fds[n] must be fence_fd, ready for good, so poll() returns from its first
 * pass without sleeping. poll() stops joining queues after the first ready fd (a
 * hung-up or closed socket reports without asking), so it goes again after it. */
static int fence(struct pollfd *fds, int n) {
  int from = 0;
  while (from < n) {
    if (poll(fds + from, (nfds_t)(n - from + 1), 1) < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    while (from < n && fds[from].revents == 0) from++;
    if (from < n) from++; /* it joined the queue, then reported */
  }
  return 0;
}

int core_bell_arm(ringline_ring *ring) {
  /* Edges collected while the caller was busy are stale: it has looked at the
   * ring since (or looks right after this). Left in the set, they would ring at
   * once. Each dropped one is fenced (the header says why). */
  enum { BATCH = 64 };
  struct epoll_event events[BATCH];
  struct pollfd dropped[BATCH + 1];
  int n;
  do {
    n = epoll_wait(ring->watch_fd, events, BATCH, 0);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) dropped[i] = (struct pollfd){.fd = events[i].data.fd, .events = 0, .revents = 0};
    dropped[n] = (struct pollfd){.fd = ring->fence_fd, .events = POLLIN, .revents = 0};
    int rc = fence(dropped, n);
    if (rc < 0) return rc;
  } while (n == BATCH);
  struct io_uring_cqe *cqe;
  while (io_uring_peek_cqe(&ring->bell, &cqe) == 0) {
    io_uring_cqe_seen(&ring->bell, cqe);
    ring->bell_inflight--;
  }
  if (ring->bell_inflight > 0) return 0; /* still armed, or its byte is on the way */
  struct io_uring_sqe *watch_poll = io_uring_get_sqe(&ring->bell);
  struct io_uring_sqe *bell_send = io_uring_get_sqe(&ring->bell);
  if (watch_poll == NULL || bell_send == NULL) return -EBUSY; /* cannot happen: one pair at a time in a ring of four */
  io_uring_prep_poll_add(watch_poll, ring->watch_fd, POLLIN);
  watch_poll->flags |= IOSQE_IO_LINK;
  /* Never waits for room: a full pair already holds bytes the caller has yet to read. */
  io_uring_prep_send(bell_send, ring->bell_pair[0], &ring->bell_byte, 1, MSG_DONTWAIT);
  int rc = io_uring_submit(&ring->bell);
  if (rc < 0) return rc;
  ring->bell_inflight = 2;
  return 0;
}
