/* wake_probe: how soon a waiter sleeping in poll() learns that data arrived for
 * a ring's pending recv, by what it polls. This is what bounds how fast a parked
 * ringline worker (waiting on Bun's event loop for the ring's notify eventfd)
 * answers the first request after a quiet spell, and it is why ringline's
 * doorbell (csrc/doorbell.c) watches the sockets rather than the ring fd.
 *
 * The data comes from another thread, ~20 ms after the waiter went to sleep, and
 * each delay is measured from that write. Written by the waiting thread itself
 * before it polls, it would mislead: the DEFER_TASKRUN ring's task work is then
 * queued already when poll() looks, so even that ring's own fd polls readable at once.
 *
 * Modes, one line each:
 *   1. DEFER_TASKRUN ring, its eventfd: signalled late (after an RCU grace period,
 *      ~16 ms on 6.18), although timer completions signal it at once.
 *   2. A ring without setup flags, its eventfd: signalled at once.
 *   3. DEFER_TASKRUN ring, its own fd: not readable while the waiter sleeps (queuing
 *      the completion's task work does not wake the fd's pollers, and only the
 *      waiter runs that work).
 *   4. ringline's doorbell: the DEFER_TASKRUN ring keeps its recv, an edge-triggered
 *      epoll set holds the socket, and a plain ring with a POLL_ADD on that set
 *      signals its own eventfd: at once.
 *   5. A plain ring with a POLL_ADD on the DEFER_TASKRUN ring's fd, its eventfd:
 *      never, as 3.
 *
 *   zig build bench && zig-out/bin/wake_probe
 *
 * Prints the median and the largest delay over 10 rounds, or in how many rounds
 * it was not readable within 200 ms.
 */
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 10
#define WRITE_AFTER_MS 20 /* the waiter sleeps this long before the data comes: a quiet spell */
#define LIMIT_MS 200      /* a later signal counts as none */
#define SETTLE_MS 200     /* between modes, see main */

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* What the waiter polls. */
enum wait_on {
  EVENTFD,         /* the ring's registered eventfd */
  RING_FD,         /* the ring fd itself */
  BELL_ON_SOCKETS, /* a plain ring's eventfd; its POLL_ADD is on an epoll set holding the socket */
  BELL_ON_RING_FD, /* a plain ring's eventfd; its POLL_ADD is on the ring fd */
};

struct writer {
  int fd;
  double wrote_at; /* now_ms() just before the write; -1 if it failed */
};

static void *write_later(void *arg) {
  struct writer *w = arg;
  usleep(WRITE_AFTER_MS * 1000);
  w->wrote_at = now_ms();
  if (write(w->fd, "x", 1) != 1) w->wrote_at = -1;
  return NULL;
}

/* Fills delays[] (sorted) with the ms from each write until what `wait` names polls
 * readable; returns in how many rounds that took over LIMIT_MS, or -1 on a setup error. */
static int probe(unsigned setup_flags, enum wait_on wait, double delays[ROUNDS]) {
  const int belled = wait == BELL_ON_SOCKETS || wait == BELL_ON_RING_FD;
  struct io_uring ring, bell;
  if (io_uring_queue_init(8, &ring, setup_flags) < 0) return -1;
  if (belled && io_uring_queue_init(2, &bell, 0) < 0) return -1;
  struct io_uring *signaller = belled ? &bell : &ring;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return -1;
  int ep = -1;
  if (wait == BELL_ON_SOCKETS) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data = {.u64 = 0}};
    ep = epoll_create1(0);
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) < 0) return -1;
  }
  static char buf[16];
  int bell_armed = 0, missed = 0;
  for (int round = 0; round < ROUNDS; round++) {
    io_uring_prep_recv(io_uring_get_sqe(&ring), sv[0], buf, sizeof buf, 0);
    io_uring_submit_and_get_events(&ring);
    if (wait == BELL_ON_SOCKETS) {
      /* As ringline's arming does: the last round's edges (and the first round's
       * EPOLLOUT) would ring at once. */
      struct epoll_event events[4];
      while (epoll_wait(ep, events, 4, 0) > 0) {
      }
    }
    if (belled && !bell_armed) {
      io_uring_prep_poll_add(io_uring_get_sqe(&bell), wait == BELL_ON_SOCKETS ? ep : ring.ring_fd, POLLIN);
      io_uring_submit(&bell);
      bell_armed = 1;
    }
    /* A fresh eventfd each round: a DEFER_TASKRUN ring's late signal from the last
     * round, and the one its reap posts, land on the old one. */
    int efd = -1;
    if (wait != RING_FD) {
      efd = eventfd(0, EFD_NONBLOCK);
      if (efd < 0 || io_uring_register_eventfd(signaller, efd) < 0) return -1;
    }
    struct writer w = {.fd = sv[1], .wrote_at = 0};
    pthread_t writer;
    if (pthread_create(&writer, NULL, write_later, &w) != 0) return -1;
    struct pollfd pfd = {.fd = wait == RING_FD ? ring.ring_fd : efd, .events = POLLIN, .revents = 0};
    int ready = poll(&pfd, 1, WRITE_AFTER_MS + LIMIT_MS + 50); /* 50: slack for the writer's start */
    double at = now_ms();
    pthread_join(writer, NULL);
    if (w.wrote_at < 0) return -1;
    delays[round] = at - w.wrote_at;
    if (ready != 1 || delays[round] > LIMIT_MS) missed++;
    /* Reaps the recv (running the DEFER_TASKRUN ring's task work) and the bell's POLL_ADD,
     * if it fired: on the ring fd it may not have, and stays armed for the next round. */
    io_uring_submit_and_get_events(&ring);
    io_uring_cq_advance(&ring, io_uring_cq_ready(&ring));
    if (belled) {
      io_uring_submit_and_get_events(&bell);
      if (io_uring_cq_ready(&bell) > 0) bell_armed = 0;
      io_uring_cq_advance(&bell, io_uring_cq_ready(&bell));
    }
    if (efd >= 0) {
      io_uring_unregister_eventfd(signaller);
      close(efd);
    }
  }
  if (belled) io_uring_queue_exit(&bell);
  io_uring_queue_exit(&ring);
  if (ep >= 0) close(ep);
  close(sv[0]);
  close(sv[1]);
  qsort(delays, ROUNDS, sizeof delays[0], by_value);
  return missed;
}

int main(void) {
  static const unsigned defer = IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  static const struct {
    const char *name;
    unsigned flags;
    enum wait_on wait;
  } modes[] = {
      {"DEFER_TASKRUN | SINGLE_ISSUER (ringline's ring): its eventfd", defer, EVENTFD},
      {"no setup flags: its eventfd", 0, EVENTFD},
      {"DEFER_TASKRUN | SINGLE_ISSUER: the ring fd itself", defer, RING_FD},
      {"DEFER_TASKRUN | SINGLE_ISSUER + ringline's doorbell (a plain ring's POLL_ADD on an epoll set of the "
       "socket): the doorbell's eventfd",
       defer, BELL_ON_SOCKETS},
      {"DEFER_TASKRUN | SINGLE_ISSUER + a plain ring's POLL_ADD on the ring fd: the plain ring's eventfd", defer,
       BELL_ON_RING_FD},
  };
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    /* The last mode's rings finish their teardown in a kernel worker that queues task
     * work on this thread; that interrupts a poll() in progress, which then looks at
     * the ring fd again and sees mode 3's pending work early (seen: 4 ms after the write). */
    if (i > 0) usleep(SETTLE_MS * 1000);
    double delays[ROUNDS];
    int missed = probe(modes[i].flags, modes[i].wait, delays);
    if (missed < 0) {
      printf("%s: setup failed\n", modes[i].name);
      return 1;
    }
    if (missed > 0)
      printf("%s: not readable within %d ms in %d of %d rounds\n", modes[i].name, LIMIT_MS, missed, ROUNDS);
    else
      printf("%s: readable %.3f ms after the write (median of %d), at most %.3f ms\n", modes[i].name,
             delays[ROUNDS / 2], ROUNDS, delays[ROUNDS - 1]);
  }
  return 0;
}
