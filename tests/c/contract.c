/*
 * contract.c — the C ABI contract of libringline (csrc/ringline.h), tested on
 * real rings and real sockets. Built and run by `zig build test` in Debug, so
 * UBSan traps on undefined behaviour. Ends with "N passed, N failed".
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ringline.h"

static int failures_in_test;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      failures_in_test++;                                                     \
      return;                                                                 \
    }                                                                         \
  } while (0)

#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    long long _a = (long long)(a), _b = (long long)(b);                                  \
    if (_a != _b) {                                                                      \
      fprintf(stderr, "    %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b, _a, _b); \
      failures_in_test++;                                                                \
      return;                                                                            \
    }                                                                                    \
  } while (0)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (d == NULL) return -1;
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

static ringline_ring_params default_params(void) {
  ringline_ring_params p = {.sq_entries = 64,
                            .setup_flags = RINGLINE_SETUP_DEFER_TASKRUN | RINGLINE_SETUP_SINGLE_ISSUER,
                            .slab_bytes = 64 * 1024,
                            .msg_slots = 16,
                            .timer_slots = 16};
  return p;
}

static ringline_ring *new_ring(void) {
  ringline_ring_params p = default_params();
  int32_t err = 0;
  return ringline_ring_create(&p, &err);
}

static void put_op(ringline_ring *r, uint32_t i, uint32_t opcode, uint32_t kind, uint32_t slot, uint32_t gen, int32_t fd,
                   uint32_t a, uint32_t b, uint32_t c) {
  ringline_op *op = &ringline_ring_ops(r)[i];
  op->opcode = opcode;
  op->kind = kind;
  op->slot = slot;
  op->gen = gen;
  op->fd = fd;
  op->a = a;
  op->b = b;
  op->c = c;
}

/* Reaps until a completion of `kind` arrives (or 2 s pass); copies it to *out. */
static int wait_kind(ringline_ring *r, uint32_t kind, ringline_completion *out) {
  double deadline = now_ms() + 2000;
  while (now_ms() < deadline) {
    int32_t n = ringline_ring_reap(r, 1, 100000);
    for (int32_t i = 0; i < n; i++)
      if (ringline_ring_completions(r)[i].kind == kind) {
        *out = ringline_ring_completions(r)[i];
        return 1;
      }
  }
  return 0;
}

/* ── tests ─────────────────────────────────────────────────────────────── */

static void test_probe(void) {
  int32_t feat = ringline_kernel_probe();
  CHECK(feat >= 0);
  const int32_t want = RINGLINE_FEAT_RING | RINGLINE_FEAT_RECV_MULTI | RINGLINE_FEAT_RECVMSG_MULTI |
                       RINGLINE_FEAT_ACCEPT_MULTI | RINGLINE_FEAT_BUF_RING | RINGLINE_FEAT_DEFER_TASKRUN |
                       RINGLINE_FEAT_EXT_ARG;
  CHECK_EQ(feat & want, want);
  int before = count_fds();
  for (int i = 0; i < 50; i++) CHECK_EQ(ringline_kernel_probe(), feat);
  CHECK_EQ(count_fds(), before);
}

static void test_layout(void) {
  uint32_t out[128];
  int32_t n = ringline_layout_query(out, 128);
  CHECK(n > 10);
  CHECK_EQ(out[0], RINGLINE_ABI_VERSION);
  CHECK_EQ(out[1], sizeof(ringline_ring_params));
  CHECK_EQ(ringline_layout_query(out, (uint32_t)n - 1), -EINVAL);
  CHECK_EQ(ringline_layout_query(NULL, 128), -EINVAL);
}

static void test_create_destroy_1000_rings_leaks_nothing(void) {
  for (int i = 0; i < 10; i++) ringline_ring_destroy(new_ring()); /* warm up allocators */
  int fds = count_fds();
  long rss = rss_kib();
  for (int i = 0; i < 1000; i++) {
    ringline_ring_params p = default_params();
    int32_t err = 1;
    ringline_ring *r = ringline_ring_create(&p, &err);
    CHECK(r != NULL);
    CHECK_EQ(err, 0);
    CHECK(p.setup_flags & RINGLINE_SETUP_DEFER_TASKRUN);
    CHECK_EQ(ringline_bufring_create(r, 0, 16, 4096), 0);
    ringline_ring_destroy(r);
  }
  CHECK_EQ(count_fds(), fds);
  CHECK(rss_kib() - rss < 8 * 1024);
}

static void test_nop_round_trip(void) {
  ringline_ring *r = new_ring();
  CHECK(r != NULL);
  put_op(r, 0, RINGLINE_OP_NOP, 7, 1234, 0xDEADBEEFu, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 1, 1000000), 1);
  ringline_completion c = ringline_ring_completions(r)[0];
  CHECK_EQ(c.kind, 7);
  CHECK_EQ(c.slot, 1234);
  CHECK_EQ(c.gen, 0xDEADBEEFu);
  CHECK_EQ(c.res, 0);
  CHECK_EQ(c.bid, -1);

  const int total = 10000;
  double t = now_ms();
  for (int done = 0; done < total; done += 64) {
    for (uint32_t i = 0; i < 64; i++) put_op(r, i, RINGLINE_OP_NOP, 1, i, 0, -1, 0, 0, 0);
    CHECK_EQ(ringline_ring_prepare(r, 64), 64);
    for (int got = 0; got < 64;) {
      int32_t n = ringline_ring_reap(r, (uint32_t)(64 - got), 1000000);
      CHECK(n >= 0);
      got += n;
    }
  }
  printf("    info: %.0f ns per NOP batched 64 per submit\n", (now_ms() - t) * 1e6 / total);
  ringline_ring_destroy(r);
}

static void test_timeouts_and_cancel(void) {
  ringline_ring *r = new_ring();
  CHECK(r != NULL);
  ringline_completion c;
  double t = now_ms();
  put_op(r, 0, RINGLINE_OP_TIMEOUT, 2, 0, 0, -1, 0, 20, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK(wait_kind(r, 2, &c));
  CHECK_EQ(c.res, -ETIME);
  CHECK(now_ms() - t >= 19);

  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += 30 * 1000000L;
  if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
  t = now_ms();
  put_op(r, 0, RINGLINE_OP_TIMEOUT_ABS, 2, 1, 0, -1, 1, (uint32_t)ts.tv_sec, (uint32_t)ts.tv_nsec);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK(wait_kind(r, 2, &c));
  CHECK_EQ(c.res, -ETIME);
  CHECK(now_ms() - t >= 28);

  put_op(r, 0, RINGLINE_OP_TIMEOUT, 3, 5, 9, -1, 2, 10000, 0);
  put_op(r, 1, RINGLINE_OP_CANCEL, 4, 0, 0, -1, 3, 5, 9);
  t = now_ms();
  CHECK_EQ(ringline_ring_prepare(r, 2), 2);
  int seen_timer = 0, seen_cancel = 0;
  while ((!seen_timer || !seen_cancel) && now_ms() - t < 1000) {
    int32_t n = ringline_ring_reap(r, 1, 100000);
    for (int32_t i = 0; i < n; i++) {
      ringline_completion x = ringline_ring_completions(r)[i];
      if (x.kind == 3) {
        CHECK_EQ(x.res, -ECANCELED);
        seen_timer = 1;
      }
      if (x.kind == 4) {
        CHECK_EQ(x.res, 0);
        seen_cancel = 1;
      }
    }
  }
  CHECK(seen_timer && seen_cancel);
  ringline_ring_destroy(r);
}

static void test_send_recv_over_socketpair(void) {
  ringline_ring *r = new_ring();
  CHECK(r != NULL);
  int32_t sv[2];
  CHECK_EQ(ringline_socket_pair(sv), 0);
  CHECK_EQ(ringline_bufring_create(r, 0, 8, 4096), 0);
  memcpy(ringline_ring_slab(r), "hello", 5);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 10, 1, 1, sv[0], 0, 0, 0);
  put_op(r, 1, RINGLINE_OP_SEND, 11, 1, 1, sv[1], 0, 5, 0);
  CHECK_EQ(ringline_ring_prepare(r, 2), 2);
  ringline_completion c;
  CHECK(wait_kind(r, 10, &c));
  CHECK_EQ(c.res, 5);
  CHECK(c.flags & 1); /* F_BUFFER */
  CHECK(c.flags & 2); /* F_MORE: multishot still armed */
  CHECK(c.bid >= 0 && c.bid < 8);
  CHECK(memcmp(ringline_bufring_base(r, 0) + (size_t)c.bid * 4096, "hello", 5) == 0);

  /* sendmsg: three iovecs land in order */
  uint8_t *slab = ringline_ring_slab(r);
  memcpy(slab + 100, "ab", 2);
  memcpy(slab + 200, "cd", 2);
  memcpy(slab + 300, "ef", 2);
  ringline_msg_desc *m = &ringline_ring_msgs(r)[0];
  m->iov_count = 3;
  m->name_len = 0;
  m->iov[0][0] = 100, m->iov[0][1] = 2;
  m->iov[1][0] = 200, m->iov[1][1] = 2;
  m->iov[2][0] = 300, m->iov[2][1] = 2;
  put_op(r, 0, RINGLINE_OP_SENDMSG, 12, 2, 1, sv[1], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  char got[8] = {0};
  int have = 0;
  double deadline = now_ms() + 2000;
  while (have < 6 && now_ms() < deadline) {
    int32_t n = ringline_ring_reap(r, 1, 100000);
    for (int32_t i = 0; i < n; i++) {
      ringline_completion x = ringline_ring_completions(r)[i];
      if (x.kind == 12) CHECK_EQ(x.res, 6);
      if (x.kind == 10 && x.res > 0) {
        memcpy(got + have, ringline_bufring_base(r, 0) + (size_t)x.bid * 4096, (size_t)x.res);
        have += x.res;
      }
    }
  }
  CHECK_EQ(have, 6);
  CHECK(memcmp(got, "abcdef", 6) == 0);
  ringline_socket_close(sv[0]);
  ringline_socket_close(sv[1]);
  ringline_ring_destroy(r);
}

static void test_recv_until_enobufs_then_replenish(void) {
  ringline_ring *r = new_ring();
  CHECK(r != NULL);
  int32_t sv[2];
  CHECK_EQ(ringline_socket_pair(sv), 0);
  CHECK_EQ(ringline_bufring_create(r, 0, 4, 64), 0);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 10, 1, 1, sv[0], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0);
  uint8_t chunk[64];
  for (int k = 0; k < 6; k++) {
    for (int i = 0; i < 64; i++) chunk[i] = (uint8_t)(k * 64 + i);
    CHECK_EQ(write(sv[1], chunk, 64), 64);
    usleep(2000);
  }
  uint8_t received[6 * 64];
  int have = 0, ended = 0;
  uint16_t bids[4];
  int nbids = 0;
  double deadline = now_ms() + 2000;
  while (!ended && now_ms() < deadline) {
    int32_t n = ringline_ring_reap(r, 1, 100000);
    for (int32_t i = 0; i < n; i++) {
      ringline_completion x = ringline_ring_completions(r)[i];
      if (x.kind != 10) continue;
      if (x.res > 0) {
        memcpy(received + have, ringline_bufring_base(r, 0) + (size_t)x.bid * 64, (size_t)x.res);
        have += x.res;
        bids[nbids++] = (uint16_t)x.bid;
      } else {
        CHECK_EQ(x.res, -ENOBUFS);
        CHECK(!(x.flags & 2)); /* the multishot ended */
        ended = 1;
      }
    }
  }
  CHECK(ended);
  CHECK_EQ(have, 4 * 64);
  for (int i = 0; i < nbids; i++) ringline_bufring_returns(r, 0)[i] = bids[i];
  CHECK_EQ(ringline_bufring_recycle(r, 0, (uint32_t)nbids), nbids);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 10, 1, 2, sv[0], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  deadline = now_ms() + 2000;
  while (have < 6 * 64 && now_ms() < deadline) {
    int32_t n = ringline_ring_reap(r, 1, 100000);
    for (int32_t i = 0; i < n; i++) {
      ringline_completion x = ringline_ring_completions(r)[i];
      if (x.kind != 10 || x.res <= 0) continue;
      memcpy(received + have, ringline_bufring_base(r, 0) + (size_t)x.bid * 64, (size_t)x.res);
      have += x.res;
      ringline_bufring_returns(r, 0)[0] = (uint16_t)x.bid;
      CHECK_EQ(ringline_bufring_recycle(r, 0, 1), 1);
    }
  }
  CHECK_EQ(have, 6 * 64);
  for (int i = 0; i < 6 * 64; i++) CHECK_EQ(received[i], (uint8_t)i);
  ringline_socket_close(sv[0]);
  ringline_socket_close(sv[1]);
  ringline_ring_destroy(r);
}

static void *wake_later(void *arg) {
  usleep(50 * 1000);
  ringline_ring_wake((ringline_ring *)arg);
  return NULL;
}

static void test_wake_from_another_thread(void) {
  ringline_ring *r = new_ring();
  CHECK(r != NULL);
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, wake_later, r), 0);
  double start = now_ms();
  int32_t n = ringline_ring_reap(r, 1, 10 * 1000 * 1000);
  double waited = now_ms() - start;
  pthread_join(t, NULL);
  CHECK_EQ(n, 1);
  CHECK_EQ(ringline_ring_completions(r)[0].kind, RINGLINE_KIND_WAKE);
  CHECK(ringline_ring_completions(r)[0].extra >= 1);
  CHECK(waited < 1000);
  printf("    info: a 10 s wait woke after %.1f ms (wake sent at 50 ms)\n", waited);

  /* The notify eventfd turns readable when completions are pending, without reaping. */
  int efd = ringline_ring_notify_fd(r);
  CHECK(efd >= 0);
  put_op(r, 0, RINGLINE_OP_TIMEOUT, 5, 0, 0, -1, 0, 10, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0);
  struct pollfd pfd = {.fd = efd, .events = POLLIN};
  CHECK_EQ(poll(&pfd, 1, 1000), 1);
  ringline_completion c;
  CHECK(wait_kind(r, 5, &c));
  CHECK_EQ(c.res, -ETIME);
  ringline_ring_destroy(r);
}

static void test_bad_arguments_never_crash(void) {
  ringline_ring_params p = default_params();
  int32_t err = 0;
  CHECK_EQ(ringline_ring_prepare(NULL, 1), -EINVAL);
  CHECK_EQ(ringline_ring_reap(NULL, 0, 0), -EINVAL);
  CHECK_EQ(ringline_ring_wake(NULL), -EINVAL);
  CHECK_EQ(ringline_ring_notify_fd(NULL), -EINVAL);
  CHECK_EQ(ringline_ring_notify_toggle(NULL, 1), -EINVAL);
  CHECK(ringline_ring_ops(NULL) == NULL && ringline_ring_completions(NULL) == NULL);
  CHECK(ringline_ring_msgs(NULL) == NULL && ringline_ring_slab(NULL) == NULL);
  CHECK_EQ(ringline_bufring_create(NULL, 0, 4, 64), -EINVAL);
  CHECK_EQ(ringline_bufring_recycle(NULL, 0, 1), -EINVAL);
  CHECK_EQ(ringline_bufring_destroy(NULL, 0), -EINVAL);
  CHECK(ringline_bufring_base(NULL, 0) == NULL && ringline_bufring_returns(NULL, 0) == NULL);
  ringline_ring_destroy(NULL);

  CHECK(ringline_ring_create(NULL, &err) == NULL);
  CHECK_EQ(err, -EINVAL);
  uint32_t bad_sq[] = {0, 3, 65536};
  for (int i = 0; i < 3; i++) {
    p = default_params();
    p.sq_entries = bad_sq[i];
    err = 0;
    CHECK(ringline_ring_create(&p, &err) == NULL);
    CHECK_EQ(err, -EINVAL);
  }
  p = default_params();
  p.cq_entries = 32; /* smaller than sq */
  CHECK(ringline_ring_create(&p, &err) == NULL);
  CHECK_EQ(err, -EINVAL);
  p.cq_entries = 100; /* not a power of two */
  CHECK(ringline_ring_create(&p, &err) == NULL);
  CHECK_EQ(err, -EINVAL);
  p = default_params();
  p.setup_flags = 1u << 20;
  CHECK(ringline_ring_create(&p, &err) == NULL);
  CHECK_EQ(err, -EINVAL);

  ringline_ring *r = new_ring();
  CHECK(r != NULL);
  CHECK_EQ(ringline_bufring_create(r, 0, 0, 64), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0, 3, 64), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0, 65536, 64), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0, 4, 0), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0, 4, 64), 0);
  CHECK_EQ(ringline_bufring_create(r, 0, 4, 64), -EEXIST);
  ringline_bufring_returns(r, 0)[0] = 4;
  CHECK_EQ(ringline_bufring_recycle(r, 0, 1), -EINVAL);
  CHECK_EQ(ringline_bufring_recycle(r, 0, 5), -EINVAL);
  CHECK_EQ(ringline_bufring_recycle(r, 9, 1), -EINVAL);
  CHECK_EQ(ringline_ring_prepare(r, 64 + 1), -EINVAL); /* max_ops = sq_entries */
  CHECK_EQ(ringline_ring_reap(r, 1000000, 0), -EINVAL);

  put_op(r, 0, 99, 1, 0, 0, 3, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 1, 0, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EBADF);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 1, 0, 0, 3, 7, 0, 0); /* bgid 7 not registered */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_SEND, 1, 0, 0, 3, 64 * 1024 - 4, 8, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_SENDMSG, 1, 0, 0, 3, 16, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  ringline_ring_msgs(r)[0].iov_count = 33;
  put_op(r, 0, RINGLINE_OP_SENDMSG, 1, 0, 0, 3, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  ringline_ring_msgs(r)[0].iov_count = 0;
  put_op(r, 0, RINGLINE_OP_CONNECT, 1, 0, 0, 3, 0, 0, 0); /* no address */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_NOP, 240, 0, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_TIMEOUT, 1, 0, 0, -1, 16, 5, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);

  /* All or nothing: a bad third op means the first two never run. */
  put_op(r, 0, RINGLINE_OP_NOP, 1, 0, 0, -1, 0, 0, 0);
  put_op(r, 1, RINGLINE_OP_NOP, 1, 1, 0, -1, 0, 0, 0);
  put_op(r, 2, 99, 1, 2, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 3), -EINVAL);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0);

  CHECK_EQ(ringline_socket_nodelay(-1, 1), -EBADF);
  uint8_t sa[128];
  CHECK_EQ(ringline_socket_name(-1, 0, sa, sizeof sa), -EBADF);
  CHECK_EQ(ringline_socket_pair(NULL), -EINVAL);
  CHECK_EQ(ringline_thread_pin(1u << 20), -EINVAL);
  ringline_ring_destroy(r);
}

static void test_addresses_and_sockets(void) {
  uint8_t sa[128];
  char text[160];
  CHECK_EQ(ringline_addr_parse("127.0.0.1:0", sa, sizeof sa), 16);
  CHECK_EQ(ringline_addr_parse("[::1]:8080", sa, sizeof sa), 28);
  CHECK_EQ(ringline_addr_parse("localhost:80", sa, sizeof sa), 16);
  CHECK(ringline_addr_parse("unix:/tmp/x.sock", sa, sizeof sa) > 0);
  const char *bad[] = {"", "1.2.3.4", "1.2.3.4:99999", "[::1]80", "host.example:80", "999.1.1.1:1", "unix:", "1.2.3.4:"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_EQ(ringline_addr_parse(bad[i], sa, sizeof sa), -EINVAL);
  const char *round[] = {"127.0.0.1:8080", "[::1]:8080", "unix:/tmp/x.sock"};
  for (int i = 0; i < 3; i++) {
    int32_t len = ringline_addr_parse(round[i], sa, sizeof sa);
    CHECK(len > 0);
    CHECK(ringline_addr_format(sa, (uint32_t)len, text, sizeof text) > 0);
    CHECK(strcmp(text, round[i]) == 0);
  }

  int32_t len = ringline_addr_parse("127.0.0.1:0", sa, sizeof sa);
  int32_t fd = ringline_socket_listen(sa, (uint32_t)len, 16, 0);
  CHECK(fd >= 0);
  uint8_t bound[128];
  int32_t blen = ringline_socket_name(fd, 0, bound, sizeof bound);
  CHECK_EQ(blen, 16);
  struct sockaddr_in in4;
  memcpy(&in4, bound, sizeof in4);
  CHECK(ntohs(in4.sin_port) != 0);
  CHECK_EQ(ringline_socket_listen(bound, (uint32_t)blen, 16, 0), -EADDRINUSE);
  CHECK_EQ(ringline_socket_listen(sa, (uint32_t)len, 0, 0), -EINVAL);
  ringline_socket_close(fd);

  int32_t a = ringline_socket_listen(sa, (uint32_t)len, 16, RINGLINE_SOCK_REUSEPORT);
  CHECK(a >= 0);
  blen = ringline_socket_name(a, 0, bound, sizeof bound);
  int32_t b = ringline_socket_listen(bound, (uint32_t)blen, 16, RINGLINE_SOCK_REUSEPORT);
  CHECK(b >= 0);
  ringline_socket_close(a);
  ringline_socket_close(b);

  len = ringline_addr_parse("[::1]:0", sa, sizeof sa);
  int32_t u = ringline_socket_udp(sa, (uint32_t)len, 0);
  CHECK(u >= 0);
  ringline_socket_close(u);

  /* A stale unix socket file (bound, never listened, closed) is replaced. */
  char path[64];
  snprintf(path, sizeof path, "/tmp/ringline-contract-%d.sock", (int)getpid());
  char addr[80];
  snprintf(addr, sizeof addr, "unix:%s", path);
  len = ringline_addr_parse(addr, sa, sizeof sa);
  int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  CHECK(bind(stale, (struct sockaddr *)sa, (socklen_t)len) == 0);
  close(stale);
  CHECK_EQ(ringline_socket_listen(sa, (uint32_t)len, 16, 0), -EADDRINUSE);
  fd = ringline_socket_listen(sa, (uint32_t)len, 16, RINGLINE_SOCK_UNLINK);
  CHECK(fd >= 0);
  ringline_socket_close(fd);
  unlink(path);
}

static void test_accept_multishot(void) {
  ringline_ring *r = new_ring();
  CHECK(r != NULL);
  uint8_t sa[128];
  int32_t len = ringline_addr_parse("127.0.0.1:0", sa, sizeof sa);
  int32_t lfd = ringline_socket_listen(sa, (uint32_t)len, 16, 0);
  CHECK(lfd >= 0);
  uint8_t bound[128];
  int32_t blen = ringline_socket_name(lfd, 0, bound, sizeof bound);
  put_op(r, 0, RINGLINE_OP_ACCEPT_MULTI, 20, 0, 0, lfd, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0);
  int clients[3];
  for (int i = 0; i < 3; i++) {
    clients[i] = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(clients[i], (struct sockaddr *)bound, (socklen_t)blen) == 0);
  }
  int accepted = 0;
  double deadline = now_ms() + 2000;
  while (accepted < 3 && now_ms() < deadline) {
    int32_t n = ringline_ring_reap(r, 1, 100000);
    for (int32_t i = 0; i < n; i++) {
      ringline_completion x = ringline_ring_completions(r)[i];
      if (x.kind != 20) continue;
      CHECK(x.res >= 0);
      CHECK(x.flags & 2);
      ringline_socket_close(x.res);
      accepted++;
    }
  }
  CHECK_EQ(accepted, 3);
  for (int i = 0; i < 3; i++) close(clients[i]);
  ringline_socket_close(lfd);
  ringline_ring_destroy(r);
}

static void test_cq_overflow_is_reported_never_silent(void) {
  ringline_ring_params p = default_params();
  p.sq_entries = 8;
  p.cq_entries = 8;
  p.max_completions = 256;
  int32_t err = 0;
  ringline_ring *r = ringline_ring_create(&p, &err);
  CHECK(r != NULL);
  for (int batch = 0; batch < 8; batch++) {
    for (uint32_t i = 0; i < 8; i++) put_op(r, i, RINGLINE_OP_NOP, 30, (uint32_t)batch * 8 + i, 0, -1, 0, 0, 0);
    CHECK_EQ(ringline_ring_prepare(r, 8), 8); /* flushes to the kernel when the SQ fills */
  }
  int nops = 0;
  uint32_t dropped = 0;
  for (int round = 0; round < 20 && nops + (int)dropped < 64; round++) {
    int32_t n = ringline_ring_reap(r, 0, 0);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      ringline_completion x = ringline_ring_completions(r)[i];
      if (x.kind == 30) nops++;
      if (x.kind == RINGLINE_KIND_OVERFLOW) dropped += x.extra;
    }
  }
  printf("    info: 64 NOPs through an 8-entry CQ: %d delivered, %u reported dropped\n", nops, dropped);
  CHECK_EQ(nops + (int)dropped, 64);
  ringline_ring_destroy(r);
}

/* ── runner ───────────────────────────────────────────────────────────── */

static const struct {
  const char *name;
  void (*fn)(void);
} tests[] = {
    {"probe reports this kernel's features and leaks no fd", test_probe},
    {"layout query publishes the records", test_layout},
    {"create/destroy 1,000 rings leaks no fd or memory", test_create_destroy_1000_rings_leaks_nothing},
    {"NOP round trip echoes kind/slot/generation", test_nop_round_trip},
    {"relative and absolute timeouts; cancel by user_data", test_timeouts_and_cancel},
    {"send, sendmsg and multishot recv over a socketpair", test_send_recv_over_socketpair},
    {"recv multishot with 4 buffers until ENOBUFS, replenish, continue", test_recv_until_enobufs_then_replenish},
    {"eventfd wake from another thread interrupts a 10 s wait", test_wake_from_another_thread},
    {"bad arguments return -EINVAL/-EBADF, never crash", test_bad_arguments_never_crash},
    {"address parse/format and socket helpers", test_addresses_and_sockets},
    {"multishot accept over TCP loopback", test_accept_multishot},
    {"CQ overflow is reported, never silent", test_cq_overflow_is_reported_never_silent},
};

int main(void) {
  int passed = 0, failed = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    failures_in_test = 0;
    tests[i].fn();
    if (failures_in_test == 0) {
      passed++;
      printf("ok - %s\n", tests[i].name);
    } else {
      failed++;
      printf("FAIL - %s\n", tests[i].name);
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  fflush(stdout);
  return failed == 0 ? 0 : 1;
}
