/* wake_probe: how soon a ring's registered eventfd turns readable after data
 * arrives for a pending recv, with and without IORING_SETUP_DEFER_TASKRUN.
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

/* Median delay in ms (or -1 on a setup error); *worst gets the largest, -1 if a round timed out (200 ms). */
static double probe(unsigned setup_flags, double *worst) {
  struct io_uring ring;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = setup_flags;
  if (io_uring_queue_init_params(8, &ring, &p) < 0) return -1;
  int efd = eventfd(0, EFD_NONBLOCK);
  int sv[2];
  if (efd < 0 || io_uring_register_eventfd(&ring, efd) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) return -1;
  static char buf[16];
  double delays[ROUNDS];
  *worst = 0;
  for (int round = 0; round < ROUNDS; round++) {
    io_uring_prep_recv(io_uring_get_sqe(&ring), sv[0], buf, sizeof buf, 0);
    io_uring_submit_and_get_events(&ring);
    uint64_t count;
    while (read(efd, &count, sizeof count) == (ssize_t)sizeof count) {
    }
    usleep(20 * 1000); /* a quiet spell, as before a worker parks */
    double t = now_ms();
    if (write(sv[1], "x", 1) != 1) return -1;
    struct pollfd pfd = {.fd = efd, .events = POLLIN, .revents = 0};
    int ready = poll(&pfd, 1, 200);
    delays[round] = now_ms() - t;
    if (ready != 1) *worst = -1;
    else if (*worst >= 0 && delays[round] > *worst) *worst = delays[round];
    io_uring_submit_and_get_events(&ring);
    io_uring_cq_advance(&ring, io_uring_cq_ready(&ring));
  }
  io_uring_queue_exit(&ring);
  close(efd);
  close(sv[0]);
  close(sv[1]);
  qsort(delays, ROUNDS, sizeof delays[0], by_value);
  return delays[ROUNDS / 2];
}

int main(void) {
  static const struct {
    const char *name;
    unsigned flags;
  } modes[] = {
      {"DEFER_TASKRUN | SINGLE_ISSUER (ringline's ring)", IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER},
      {"no setup flags", 0},
  };
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    double worst;
    double median = probe(modes[i].flags, &worst);
    if (median < 0) {
      printf("%s: setup failed\n", modes[i].name);
      return 1;
    }
    printf("%s: eventfd readable %.3f ms after the data (median of %d), at most %.3f ms%s\n", modes[i].name, median, ROUNDS,
           worst, worst < 0 ? " (a round timed out at 200 ms)" : "");
  }
  return 0;
}
