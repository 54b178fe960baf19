/* wake_probe: how soon a ring's registered eventfd turns readable after data
 * arrives for a pending recv, with and without IORING_SETUP_DEFER_TASKRUN, and
 * how soon the DEFER_TASKRUN ring's own fd polls readable for the same data, and
 * whether a second, plain ring polling that fd (a "doorbell") signals its own
 * eventfd in time.
 * This is what bounds how fast a parked ringline worker (waiting on Bun's event
 * loop for that eventfd) answers the first request after a quiet spell.
 *
 *   zig build bench && zig-out/bin/wake_probe
 *
 * Prints one line per mode: the median and the largest delay over 10 rounds.
 */
#include <liburing.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 10

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* What the waiter polls: the ring's registered eventfd, the ring fd itself, or the
 * eventfd of a doorbell ring that has a POLL_ADD on the ring fd armed each round. */
enum wait_on { EVENTFD, RING_FD, DOORBELL };

/* Median delay in ms (or -1 on a setup error) until what `wait` names polls readable;
 * *worst gets the largest, -1 if a round timed out (200 ms). */
static double probe(unsigned setup_flags, enum wait_on wait, double *worst) {
  struct io_uring ring, bell;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = setup_flags;
  if (io_uring_queue_init_params(8, &ring, &p) < 0) return -1;
  if (wait == DOORBELL && io_uring_queue_init(4, &bell, 0) < 0) return -1;
  int efd = eventfd(0, EFD_NONBLOCK);
  int sv[2];
  if (efd < 0 || io_uring_register_eventfd(wait == DOORBELL ? &bell : &ring, efd) < 0 ||
      socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
    return -1;
  static char buf[16];
  double delays[ROUNDS];
  *worst = 0;
  for (int round = 0; round < ROUNDS; round++) {
    io_uring_prep_recv(io_uring_get_sqe(&ring), sv[0], buf, sizeof buf, 0);
    io_uring_submit_and_get_events(&ring);
    if (wait == DOORBELL) {
      io_uring_prep_poll_add(io_uring_get_sqe(&bell), ring.ring_fd, POLLIN);
      io_uring_submit(&bell);
    }
    uint64_t count;
    while (read(efd, &count, sizeof count) == (ssize_t)sizeof count) {
    }
    usleep(20 * 1000); /* a quiet spell, as before a worker parks */
    double t = now_ms();
    if (write(sv[1], "x", 1) != 1) return -1;
    struct pollfd pfd = {.fd = wait == RING_FD ? ring.ring_fd : efd, .events = POLLIN, .revents = 0};
    int ready = poll(&pfd, 1, 200);
    delays[round] = now_ms() - t;
    if (ready != 1) *worst = -1;
    else if (*worst >= 0 && delays[round] > *worst) *worst = delays[round];
    io_uring_submit_and_get_events(&ring);
    io_uring_cq_advance(&ring, io_uring_cq_ready(&ring));
    if (wait == DOORBELL) io_uring_cq_advance(&bell, io_uring_cq_ready(&bell));
  }
  if (wait == DOORBELL) io_uring_queue_exit(&bell);
  io_uring_queue_exit(&ring);
  close(efd);
  close(sv[0]);
  close(sv[1]);
  qsort(delays, ROUNDS, sizeof delays[0], by_value);
  return delays[ROUNDS / 2];
}

int main(void) {
  static const unsigned defer = IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  static const struct {
    const char *name;
    unsigned flags;
    enum wait_on wait;
  } modes[] = {
      {"DEFER_TASKRUN | SINGLE_ISSUER (ringline's ring): eventfd", defer, EVENTFD},
      {"no setup flags: eventfd", 0, EVENTFD},
      {"DEFER_TASKRUN | SINGLE_ISSUER: the ring fd itself", defer, RING_FD},
      {"DEFER_TASKRUN | SINGLE_ISSUER: a plain doorbell ring's eventfd (POLL_ADD on the ring fd)", defer, DOORBELL},
  };
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    double worst;
    double median = probe(modes[i].flags, modes[i].wait, &worst);
    if (median < 0) {
      printf("%s: setup failed\n", modes[i].name);
      return 1;
    }
    if (worst < 0)
      printf("%s: not readable within 200 ms in some rounds (median %.3f ms of %d)\n", modes[i].name, median, ROUNDS);
    else
      printf("%s readable %.3f ms after the data (median of %d), at most %.3f ms\n", modes[i].name, median, ROUNDS, worst);
  }
  return 0;
}
