/* watch_cost: what taking a worker's sockets out of its doorbell's epoll set for a
 * busy spell, and putting them back as it parks, costs per socket: EPOLL_CTL_ADD
 * and EPOLL_CTL_DEL with the events csrc/doorbell.c watches, timed over 2,000
 * socketpairs, 20 rounds. src/uring/driver.ts sizes the spell that pays for it
 * (BUSY_SPELL_TICKS, SOCKETS_PER_SPELL_TICK) from this.
 *
 *   zig build bench && taskset -c 1 zig-out/bin/watch_cost
 */
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

enum { SOCKETS = 2000, ROUNDS = 20 };

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

int main(void) {
  static int pairs[SOCKETS][2];
  for (int i = 0; i < SOCKETS; i++) {
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]) < 0) {
      perror("socketpair (raise ulimit -n?)");
      return 1;
    }
  }
  const int set = epoll_create1(0);
  if (set < 0) {
    perror("epoll_create1");
    return 1;
  }
  double add_ns = 0, del_ns = 0;
  for (int round = 0; round < ROUNDS; round++) {
    const double t0 = now_ns();
    for (int i = 0; i < SOCKETS; i++) {
      struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
      if (epoll_ctl(set, EPOLL_CTL_ADD, pairs[i][0], &ev) < 0) {
        perror("EPOLL_CTL_ADD");
        return 1;
      }
    }
    const double t1 = now_ns();
    for (int i = 0; i < SOCKETS; i++) {
      if (epoll_ctl(set, EPOLL_CTL_DEL, pairs[i][0], NULL) < 0) {
        perror("EPOLL_CTL_DEL");
        return 1;
      }
    }
    add_ns += t1 - t0;
    del_ns += now_ns() - t1;
  }
  printf("EPOLL_CTL_ADD %.0f ns, EPOLL_CTL_DEL %.0f ns per socket (%d sockets, %d rounds)\n", add_ns / ROUNDS / SOCKETS,
         del_ns / ROUNDS / SOCKETS, SOCKETS, ROUNDS);
  return 0;
}
