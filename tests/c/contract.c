/*
 * contract.c — the C ABI contract of libringline (csrc/ringline.h), tested on
 * real rings and real sockets (loopback and unix only). Built and run by
 * `zig build test` in Debug, so UBSan traps on undefined behaviour.
 *
 * Each test returns 0 (pass) or 1 (fail). A failed CHECK prints file:line and
 * the expression, and the runner prints `FAIL - name: reason`. Each test runs
 * in a forked child, so a crash or a hang fails that test alone; rings and fds
 * it registers with own_ring()/own_fd() are released when it returns. The run
 * ends with exactly one line "N passed, N failed" and exits 1 if any failed.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ringline.h"

/* ── failure reporting ─────────────────────────────────────────────────── */

static char g_reason[512]; /* first failure of the current test */

__attribute__((format(printf, 3, 4))) static void note_failure(const char *file, int line, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "    %s:%d: %s\n", file, line, msg);
  if (g_reason[0] == '\0') snprintf(g_reason, sizeof g_reason, "%s:%d: %s", file, line, msg);
}

#define CHECK(cond)                                                   \
  do {                                                                \
    if (!(cond)) {                                                    \
      note_failure(__FILE__, __LINE__, "CHECK(%s) failed", #cond);    \
      return 1;                                                       \
    }                                                                 \
  } while (0)

#define CHECK_EQ(a, b)                                                                                  \
  do {                                                                                                  \
    long long a_ = (long long)(a), b_ = (long long)(b);                                                 \
    if (a_ != b_) {                                                                                     \
      note_failure(__FILE__, __LINE__, "CHECK_EQ(%s, %s) failed: %lld != %lld", #a, #b, a_, b_);       \
      return 1;                                                                                         \
    }                                                                                                   \
  } while (0)

/* ── resources released after every test ──────────────────────────────── */

#define MAX_OWNED 192
static ringline_ring *owned_rings[MAX_OWNED];
static int owned_fds[MAX_OWNED];
static char owned_path[128]; /* a unix socket file to unlink */

static ringline_ring *own_ring(ringline_ring *r) {
  for (int i = 0; r != NULL && i < MAX_OWNED; i++)
    if (owned_rings[i] == NULL) {
      owned_rings[i] = r;
      break;
    }
  return r;
}

static void drop_ring(ringline_ring *r) {
  for (int i = 0; i < MAX_OWNED; i++)
    if (owned_rings[i] == r) owned_rings[i] = NULL;
  ringline_ring_destroy(r);
}

static int own_fd(int fd) {
  for (int i = 0; fd >= 0 && i < MAX_OWNED; i++)
    if (owned_fds[i] < 0) {
      owned_fds[i] = fd;
      break;
    }
  return fd;
}

static void drop_fd(int fd) {
  if (fd < 0) return;
  for (int i = 0; i < MAX_OWNED; i++)
    if (owned_fds[i] == fd) owned_fds[i] = -1;
  close(fd);
}

static void reset_owned(void) {
  for (int i = 0; i < MAX_OWNED; i++) {
    owned_rings[i] = NULL;
    owned_fds[i] = -1;
  }
  owned_path[0] = '\0';
}

static void release_owned(void) {
  for (int i = 0; i < MAX_OWNED; i++)
    if (owned_rings[i] != NULL) ringline_ring_destroy(owned_rings[i]);
  for (int i = 0; i < MAX_OWNED; i++)
    if (owned_fds[i] >= 0) close(owned_fds[i]);
  if (owned_path[0] != '\0') unlink(owned_path);
  reset_owned();
}

/* ── helpers ───────────────────────────────────────────────────────────── */

#define F_BUFFER 1u /* IORING_CQE_F_BUFFER */
#define F_MORE 2u   /* IORING_CQE_F_MORE */
#define F_NOTIF 8u  /* IORING_CQE_F_NOTIF */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  int n = 0;
  while (readdir(d) != NULL) n++;
  closedir(d);
  return n;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* sq 64, DEFER_TASKRUN|SINGLE_ISSUER, 64 KiB slab, 16 msg slots, 16 timer slots. */
static ringline_ring_params std_params(void) {
  ringline_ring_params p;
  memset(&p, 0, sizeof p);
  p.sq_entries = 64;
  p.setup_flags = RINGLINE_SETUP_DEFER_TASKRUN | RINGLINE_SETUP_SINGLE_ISSUER;
  p.slab_bytes = 64 * 1024;
  p.msg_slots = 16;
  p.timer_slots = 16;
  return p;
}

/* Creates an owned ring (released after the test); NULL on failure, printed. */
static ringline_ring *make_ring(ringline_ring_params *p) {
  int32_t err = 1;
  ringline_ring *r = ringline_ring_create(p, &err);
  if (r == NULL) fprintf(stderr, "    ringline_ring_create failed: %d (%s)\n", err, strerror(-err));
  return own_ring(r);
}

static ringline_ring *std_ring(void) {
  ringline_ring_params p = std_params();
  return make_ring(&p);
}

/* An AF_UNIX stream pair whose ends the test harness closes; 0 or -1. */
static int own_pair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  own_fd(sv[0]);
  own_fd(sv[1]);
  return 0;
}

/* A ring with the standard params and a stream socketpair (its fds closed when the test ends); NULL on failure. */
static ringline_ring *ring_with_pair(int sv[2]) { return own_pair(sv) == 0 ? std_ring() : NULL; }

/* A descriptor of the ring's notify socket that the test harness closes; -errno on failure. */
static int own_notify_fd(ringline_ring *r) {
  int fd = ringline_ring_notify_fd(r);
  if (fd >= 0) own_fd(fd);
  return fd;
}

/* What every doorbell test starts from: a ring, a socket pair sv, and the ring's notify socket
 * (returned; -1 on failure). */
static int doorbell_setup(int sv[2], ringline_ring **r) {
  *r = ring_with_pair(sv);
  return *r == NULL ? -1 : own_notify_fd(*r);
}

/* Whether fd polls readable within ms milliseconds. */
static int readable_within(int fd, int ms) {
  struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
  return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLIN) != 0;
}

/* Reads what the doorbell wrote to a notify socket (non-blocking), as its caller would. */
static void drain_notify(int fd) {
  char buf[64];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

static void put_op(ringline_ring *r, uint32_t i, uint32_t opcode, uint32_t kind, uint32_t slot, uint32_t gen,
                   int32_t fd, uint32_t a, uint32_t b, uint32_t c) {
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

/* One bounded reap (min 1, 100 ms); the records are at ringline_ring_completions(). */
static int32_t reap_some(ringline_ring *r) { return ringline_ring_reap(r, 1, 100 * 1000); }

/* Fills buf[i] = seed + i (the pattern the recv tests check). */
static void fill_pattern(uint8_t *buf, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(seed + i);
}

/* A listening TCP socket on 127.0.0.1 (ephemeral port); its bound address goes to bound, blen. */
static int32_t loopback_listener(uint8_t *bound, int32_t *blen) {
  uint8_t sa[RINGLINE_SOCKADDR_MAX];
  int32_t len = ringline_addr_parse("127.0.0.1:0", sa, sizeof sa);
  if (len < 0) return len;
  int32_t fd = ringline_socket_listen(sa, (uint32_t)len, 16, 0);
  if (fd < 0) return fd;
  own_fd(fd);
  *blen = ringline_socket_name(fd, 0, bound, RINGLINE_SOCKADDR_MAX);
  return *blen < 0 ? *blen : fd;
}

/* ── 1. probe ──────────────────────────────────────────────────────────── */

static int test_probe(void) {
  int32_t feat = ringline_kernel_probe();
  CHECK(feat >= 0);
  printf("    info: kernel features 0x%x\n", (unsigned)feat);
  const int32_t want = (int32_t)(RINGLINE_FEAT_RING | RINGLINE_FEAT_RECV_MULTI | RINGLINE_FEAT_RECVMSG_MULTI |
                                 RINGLINE_FEAT_ACCEPT_MULTI | RINGLINE_FEAT_BUF_RING | RINGLINE_FEAT_DEFER_TASKRUN);
  CHECK_EQ(feat & want, want);
  int before = count_fds();
  CHECK(before > 0);
  for (int i = 0; i < 50; i++) CHECK_EQ(ringline_kernel_probe(), feat);
  CHECK_EQ(count_fds(), before);
  return 0;
}

/* ── 2. layout ─────────────────────────────────────────────────────────── */

static int test_layout(void) {
  uint32_t out[256];
  int32_t n = ringline_layout_query(out, 256);
  CHECK(n > 0 && n <= 256);
  CHECK_EQ(out[0], RINGLINE_ABI_VERSION);
  CHECK_EQ(out[1], sizeof(ringline_ring_params));
  CHECK_EQ(n, 49);
  CHECK_EQ(out[44], RINGLINE_WAIT_UNBOUNDED);
  CHECK_EQ(out[45], RINGLINE_BUF_OWN_MEMORY);
  CHECK_EQ(out[46], RINGLINE_CLOSE_QUIET);
  CHECK_EQ(out[47], RINGLINE_NOTIFY_CQ);
  CHECK_EQ(out[48], RINGLINE_NOTIFY_DOORBELL);
  /* the recvmsg header block: size, the four field offsets, then the name room */
  const uint32_t recvmsg_block[] = {16, 0, 4, 8, 12, RINGLINE_RECVMSG_NAME_LEN};
  for (int i = 0; i < 6; i++) CHECK_EQ(out[34 + i], recvmsg_block[i]);
  CHECK_EQ(out[34], sizeof(ringline_recvmsg_out));
  CHECK_EQ(out[36], offsetof(ringline_recvmsg_out, controllen));
  CHECK_EQ(ringline_layout_query(out, (uint32_t)n), n); /* exactly enough room */
  for (int i = 0; i < 256; i++) out[i] = 0xA5A5A5A5u;
  CHECK_EQ(ringline_layout_query(out, (uint32_t)n - 1), -EINVAL);
  CHECK_EQ(out[0], 0xA5A5A5A5u); /* a refused query writes nothing */
  CHECK_EQ(ringline_layout_query(out, 0), -EINVAL);
  CHECK_EQ(ringline_layout_query(NULL, 256), -EINVAL);
  return 0;
}

/* ── 3. 1,000 rings ────────────────────────────────────────────────────── */

static int create_destroy_one(void) {
  ringline_ring_params p = std_params();
  int32_t err = 1;
  ringline_ring *r = ringline_ring_create(&p, &err);
  CHECK(r != NULL);
  own_ring(r);
  CHECK_EQ(err, 0);
  CHECK(p.setup_flags & RINGLINE_SETUP_DEFER_TASKRUN);
  CHECK_EQ(ringline_bufring_create(r, 0, 16, 4096, RINGLINE_BUF_OWN_MEMORY), 0);
  drop_ring(r);
  return 0;
}

static int test_create_destroy_1000_rings(void) {
  for (int i = 0; i < 10; i++) CHECK(create_destroy_one() == 0); /* warm up allocators */
  int fds = count_fds();
  long rss = rss_kib();
  CHECK(fds > 0 && rss > 0);
  double t = now_ms();
  for (int i = 0; i < 1000; i++) CHECK(create_destroy_one() == 0);
  long grown = rss_kib() - rss;
  printf("    info: 1,000 rings in %.0f ms, VmRSS grew %ld KiB\n", now_ms() - t, grown);
  CHECK_EQ(count_fds(), fds);
  CHECK(grown < 8 * 1024);
  return 0;
}

/* ── 4. NOP ────────────────────────────────────────────────────────────── */

static int test_nop_round_trip(void) {
  ringline_ring_params p = std_params();
  p.sq_entries = 128; /* 128 ops per prepare */
  ringline_ring *r = make_ring(&p);
  CHECK(r != NULL);
  put_op(r, 0, RINGLINE_OP_NOP, 7, 1234, 0xDEADBEEFu, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 1, 1000000), 1);
  ringline_completion c = ringline_ring_completions(r)[0];
  CHECK_EQ(c.kind, 7);
  CHECK_EQ(c.slot, 1234);
  CHECK_EQ(c.gen, 0xDEADBEEFu);
  CHECK_EQ(c.res, 0);
  CHECK_EQ(c.flags, 0);
  CHECK_EQ(c.bid, -1);

  const uint32_t total = 10000, batch = 128;
  uint64_t slot_sum = 0, want_sum = 0;
  double t = now_ms();
  for (uint32_t done = 0; done < total;) {
    uint32_t n = total - done < batch ? total - done : batch;
    for (uint32_t i = 0; i < n; i++) put_op(r, i, RINGLINE_OP_NOP, 1, done + i, 0, -1, 0, 0, 0);
    CHECK_EQ(ringline_ring_prepare(r, n), n);
    for (uint32_t got = 0; got < n;) {
      int32_t k = ringline_ring_reap(r, n - got, 1000000);
      CHECK(k > 0);
      for (int32_t j = 0; j < k; j++) {
        const ringline_completion *x = &ringline_ring_completions(r)[j];
        CHECK_EQ(x->kind, 1);
        CHECK_EQ(x->res, 0);
        slot_sum += x->slot;
      }
      got += (uint32_t)k;
    }
    for (uint32_t i = 0; i < n; i++) want_sum += done + i;
    done += n;
  }
  double ns = (now_ms() - t) * 1e6 / total;
  CHECK_EQ(slot_sum, want_sum); /* every NOP came back exactly once */
  printf("    info: %.0f ns per NOP (10,000 NOPs, 128 per prepare)\n", ns);
  return 0;
}

/* ── 5. timeouts and cancel ────────────────────────────────────────────── */

/* Finds the record of `kind` among the n just reaped; NULL if absent. */
static const ringline_completion *find_kind(ringline_ring *r, int32_t n, uint32_t kind) {
  for (int32_t i = 0; i < n; i++)
    if (ringline_ring_completions(r)[i].kind == kind) return &ringline_ring_completions(r)[i];
  return NULL;
}

static int test_timeouts_and_cancel(void) {
  ringline_ring *r = std_ring();
  CHECK(r != NULL);

  /* relative: 20 ms */
  put_op(r, 0, RINGLINE_OP_TIMEOUT, 2, 0, 1, -1, 0, 20, 0);
  double t = now_ms();
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  int32_t n = ringline_ring_reap(r, 1, 2000000);
  double elapsed = now_ms() - t;
  CHECK(n >= 1);
  const ringline_completion *c = find_kind(r, n, 2);
  CHECK(c != NULL);
  CHECK_EQ(c->slot, 0);
  CHECK_EQ(c->gen, 1);
  CHECK_EQ(c->res, -ETIME);
  CHECK(elapsed >= 19.0);
  CHECK(elapsed < 1000.0);

  /* absolute: CLOCK_MONOTONIC now + 30 ms */
  struct timespec ts;
  t = now_ms();
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += 30 * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec += 1;
    ts.tv_nsec -= 1000000000L;
  }
  put_op(r, 0, RINGLINE_OP_TIMEOUT_ABS, 2, 1, 2, -1, 1, (uint32_t)ts.tv_sec, (uint32_t)ts.tv_nsec);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  n = ringline_ring_reap(r, 1, 2000000);
  elapsed = now_ms() - t;
  CHECK(n >= 1);
  c = find_kind(r, n, 2);
  CHECK(c != NULL);
  CHECK_EQ(c->slot, 1);
  CHECK_EQ(c->res, -ETIME);
  CHECK(elapsed >= 29.0);
  CHECK(elapsed < 1000.0);

  /* an unbounded wait arms no timer of its own: a TIMEOUT op in flight (15 ms) ends it */
  put_op(r, 0, RINGLINE_OP_TIMEOUT, 2, 0, 3, -1, 0, 15, 0);
  t = now_ms();
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  n = ringline_ring_reap(r, 1, RINGLINE_WAIT_UNBOUNDED);
  elapsed = now_ms() - t;
  CHECK(n >= 1);
  c = find_kind(r, n, 2);
  CHECK(c != NULL);
  CHECK_EQ(c->gen, 3);
  CHECK(elapsed >= 14.0);
  CHECK(elapsed < 1000.0);

  /* cancel a 10 s timeout (kind 3 slot 5 gen 9) that the kernel already holds */
  put_op(r, 0, RINGLINE_OP_TIMEOUT, 3, 5, 9, -1, 2, 10000, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0); /* submitted, nothing ready */
  put_op(r, 0, RINGLINE_OP_CANCEL, 4, 0, 0, -1, 3, 5, 9);
  t = now_ms();
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  int seen_timer = 0, seen_cancel = 0;
  while ((!seen_timer || !seen_cancel) && now_ms() - t < 2000) {
    n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind == 3) {
        CHECK_EQ(x->slot, 5);
        CHECK_EQ(x->gen, 9);
        CHECK_EQ(x->res, -ECANCELED);
        seen_timer++;
      } else if (x->kind == 4) {
        CHECK_EQ(x->res, 0);
        seen_cancel++;
      }
    }
  }
  elapsed = now_ms() - t;
  CHECK_EQ(seen_timer, 1);
  CHECK_EQ(seen_cancel, 1);
  CHECK(elapsed < 1000.0);

  /* cancelling it again finds nothing */
  put_op(r, 0, RINGLINE_OP_CANCEL, 4, 1, 0, -1, 3, 5, 9);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  n = ringline_ring_reap(r, 1, 1000000);
  c = find_kind(r, n, 4);
  CHECK(c != NULL);
  CHECK_EQ(c->res, -ENOENT);
  return 0;
}

/* Waits for one record of `kind`, copied to *out; 0 or 1 (failed). */
static int reap_one_kind(ringline_ring *r, uint32_t kind, ringline_completion *out) {
  double deadline = now_ms() + 2000;
  while (now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    const ringline_completion *x = find_kind(r, n, kind);
    if (x != NULL) {
      *out = *x;
      return 0;
    }
  }
  note_failure(__FILE__, __LINE__, "no completion of kind %u within 2 s", kind);
  return 1;
}

/* A quiet CLOSE: the fd is closed and nothing completes; a failing one still completes. */
static int test_close_quiet(void) {
  int sv[2];
  ringline_ring *r = ring_with_pair(sv);
  CHECK(r != NULL);
  int32_t feat = ringline_kernel_probe();
  CHECK(feat > 0);
  int fd = dup(sv[0]);
  CHECK(fd >= 0);
  put_op(r, 0, RINGLINE_OP_CLOSE, 9, 3, 7, fd, RINGLINE_CLOSE_QUIET, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  int32_t n = ringline_ring_reap(r, 1, 50 * 1000);
  CHECK_EQ(n, (feat & RINGLINE_FEAT_CQE_SKIP) ? 0 : 1);
  CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);

  put_op(r, 0, RINGLINE_OP_CLOSE, 9, 4, 8, 1 << 20, RINGLINE_CLOSE_QUIET, 0, 0); /* no such fd */
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(reap_some(r), 1);
  const ringline_completion *x = &ringline_ring_completions(r)[0];
  CHECK_EQ(x->kind, 9);
  CHECK_EQ(x->slot, 4);
  CHECK_EQ(x->gen, 8);
  CHECK_EQ(x->res, -EBADF);

  put_op(r, 0, RINGLINE_OP_CLOSE, 9, 4, 8, sv[0], RINGLINE_CLOSE_QUIET + 1, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  return 0;
}

/* ── 6. send / sendmsg / multishot recv over a socketpair ──────────────── */

static int test_send_sendmsg_recv_socketpair(void) {
  int sv[2];
  ringline_ring *r = ring_with_pair(sv);
  CHECK(r != NULL);
  CHECK_EQ(ringline_bufring_create(r, 0, 8, 4096, RINGLINE_BUF_OWN_MEMORY), 0);
  uint8_t *base = ringline_bufring_base(r, 0);
  uint8_t *slab = ringline_ring_slab(r);
  CHECK(base != NULL && slab != NULL);

  memcpy(slab, "hello", 5);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 10, 1, 1, sv[0], 0, 0, 0);
  put_op(r, 1, RINGLINE_OP_SEND, 11, 2, 1, sv[1], 0, 5, 0);
  CHECK_EQ(ringline_ring_prepare(r, 2), 2);
  int sent = 0, received = 0;
  double deadline = now_ms() + 2000;
  while ((!sent || !received) && now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind == 11) {
        CHECK_EQ(x->res, 5);
        CHECK_EQ(x->bid, -1);
        sent = 1;
      } else if (x->kind == 10) {
        CHECK_EQ(x->res, 5);
        CHECK(x->flags & F_BUFFER);
        CHECK(x->flags & F_MORE); /* the multishot stays armed */
        CHECK(x->bid >= 0 && x->bid < 8);
        CHECK(memcmp(base + (size_t)x->bid * 4096, "hello", 5) == 0);
        ringline_bufring_returns(r, 0)[0] = (uint16_t)x->bid;
        CHECK_EQ(ringline_bufring_recycle(r, 0, 1), 1);
        received = 1;
      }
    }
  }
  CHECK(sent);
  CHECK(received);

  /* sendmsg: three iovecs at scattered slab offsets arrive as "abcdef" */
  memcpy(slab + 100, "ab", 2);
  memcpy(slab + 2000, "cd", 2);
  memcpy(slab + 60000, "ef", 2);
  ringline_msg_desc *m = &ringline_ring_msgs(r)[0];
  memset(m, 0, sizeof *m);
  m->iov_count = 3;
  m->name_len = 0;
  m->iov[0][0] = 100;
  m->iov[0][1] = 2;
  m->iov[1][0] = 2000;
  m->iov[1][1] = 2;
  m->iov[2][0] = 60000;
  m->iov[2][1] = 2;
  put_op(r, 0, RINGLINE_OP_SENDMSG, 12, 3, 1, sv[1], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  char got[16] = {0};
  int have = 0, sendmsg_done = 0;
  deadline = now_ms() + 2000;
  while ((have < 6 || !sendmsg_done) && now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind == 12) {
        CHECK_EQ(x->res, 6);
        sendmsg_done = 1;
      } else if (x->kind == 10) {
        CHECK(x->res > 0 && have + x->res <= 6);
        CHECK(x->flags & F_BUFFER);
        memcpy(got + have, base + (size_t)x->bid * 4096, (size_t)x->res);
        have += x->res;
        ringline_bufring_returns(r, 0)[0] = (uint16_t)x->bid;
        CHECK_EQ(ringline_bufring_recycle(r, 0, 1), 1);
      }
    }
  }
  CHECK(sendmsg_done);
  CHECK_EQ(have, 6);
  CHECK(memcmp(got, "abcdef", 6) == 0);
  return 0;
}

/* ── 6b. a buffer ring inside the slab: received bytes sent on without a copy ── */

static int test_bufring_in_slab_send(void) {
  int sv[2];
  ringline_ring *r = ring_with_pair(sv); /* 64 KiB slab */
  CHECK(r != NULL);
  enum { OFF = 32768, BUF = 4096 };
  CHECK_EQ(ringline_bufring_create(r, 5, 8, BUF, OFF + 1), -EINVAL); /* its last byte one past the slab */
  CHECK_EQ(ringline_bufring_create(r, 5, 16, BUF, 0x7FFFFFFFu), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 5, 8, BUF, OFF), 0); /* exactly the slab's second half */
  uint8_t *slab = ringline_ring_slab(r);
  CHECK(ringline_bufring_base(r, 5) == slab + OFF);

  CHECK_EQ(write(sv[1], "zero-copy", 9), 9);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 10, 1, 1, sv[0], 5, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  ringline_completion c;
  CHECK(reap_one_kind(r, 10, &c) == 0);
  CHECK_EQ(c.res, 9);
  CHECK(c.bid >= 0 && c.bid < 8);
  const uint32_t at = OFF + (uint32_t)c.bid * BUF;
  CHECK(memcmp(slab + at, "zero-copy", 9) == 0);

  /* the buffer's slab offset is a valid SEND source: the bytes go back out as received */
  put_op(r, 0, RINGLINE_OP_SEND, 11, 2, 1, sv[0], at, 9, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK(reap_one_kind(r, 11, &c) == 0);
  CHECK_EQ(c.res, 9);
  char got[16] = {0};
  CHECK_EQ(read(sv[1], got, sizeof got), 9);
  CHECK(memcmp(got, "zero-copy", 9) == 0);

  /* destroy leaves the slab to the ring: no double unmap */
  CHECK_EQ(ringline_bufring_destroy(r, 5), 0);
  memset(slab + OFF, 0, BUF);
  return 0;
}

/* ── 7. ENOBUFS, replenish, continue ───────────────────────────────────── */

static int test_recv_enobufs_replenish(void) {
  int sv[2];
  ringline_ring *r = ring_with_pair(sv);
  CHECK(r != NULL);
  CHECK_EQ(ringline_bufring_create(r, 0, 4, 64, RINGLINE_BUF_OWN_MEMORY), 0);
  uint8_t *base = ringline_bufring_base(r, 0);
  uint16_t *returns = ringline_bufring_returns(r, 0);
  CHECK(base != NULL && returns != NULL);

  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 10, 1, 1, sv[0], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0); /* armed, nothing to read yet */

  uint8_t sent[6 * 64];
  fill_pattern(sent, sizeof sent, 17);
  for (int k = 0; k < 6; k++) {
    CHECK_EQ(write(sv[1], sent + k * 64, 64), 64);
    usleep(2000);
  }

  uint8_t received[6 * 64];
  int have = 0, data = 0, ended = 0;
  uint16_t bids[4];
  double deadline = now_ms() + 2000;
  while (!ended && now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind != 10) continue;
      CHECK(!ended); /* nothing after the multishot ended */
      if (x->res > 0) {
        CHECK(data < 4);
        CHECK_EQ(x->res, 64);
        CHECK(x->flags & F_BUFFER);
        CHECK(x->flags & F_MORE);
        CHECK(x->bid >= 0 && x->bid < 4);
        for (int j = 0; j < data; j++) CHECK(bids[j] != (uint16_t)x->bid); /* four distinct buffers */
        bids[data++] = (uint16_t)x->bid;
        memcpy(received + have, base + (size_t)x->bid * 64, 64);
        have += 64;
      } else {
        CHECK_EQ(x->res, -ENOBUFS);
        CHECK(!(x->flags & F_MORE)); /* the multishot ended */
        ended = 1;
      }
    }
  }
  CHECK(ended);
  CHECK_EQ(data, 4);
  CHECK(memcmp(received, sent, 4 * 64) == 0);

  /* No more completions arrive while nothing is armed. */
  usleep(5000);
  int32_t n = ringline_ring_reap(r, 0, 0);
  CHECK(n >= 0);
  CHECK(find_kind(r, n, 10) == NULL);

  for (int i = 0; i < 4; i++) returns[i] = bids[i];
  CHECK_EQ(ringline_bufring_recycle(r, 0, 4), 4);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 10, 1, 2, sv[0], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  deadline = now_ms() + 2000;
  while (have < 6 * 64 && now_ms() < deadline) {
    n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind != 10) continue;
      CHECK_EQ(x->gen, 2);
      CHECK(x->res > 0 && have + x->res <= 6 * 64);
      CHECK(x->flags & F_BUFFER);
      memcpy(received + have, base + (size_t)x->bid * 64, (size_t)x->res);
      have += x->res;
    }
  }
  CHECK_EQ(have, 6 * 64);
  CHECK(memcmp(received, sent, sizeof sent) == 0);
  return 0;
}

/* ── 8. wake from another thread; notify eventfd ───────────────────────── */

static void *wake_after_50ms(void *arg) {
  usleep(50 * 1000);
  intptr_t rc = ringline_ring_wake((ringline_ring *)arg);
  return (void *)rc;
}

static int test_wake_and_notify_fd(void) {
  ringline_ring *r = std_ring();
  CHECK(r != NULL);
  pthread_t thread;
  CHECK_EQ(pthread_create(&thread, NULL, wake_after_50ms, r), 0);
  double t = now_ms();
  int32_t n = ringline_ring_reap(r, 1, 10 * 1000 * 1000); /* 10 s bound */
  double waited = now_ms() - t;
  void *wake_rc = NULL;
  pthread_join(thread, &wake_rc); /* before any CHECK can return and free the ring */
  printf("    info: a 10 s wait returned after %.1f ms (wake sent at 50 ms)\n", waited);
  CHECK_EQ((intptr_t)wake_rc, 0);
  CHECK(waited < 70.0); /* interrupted within a few ms of the wake, not at the 10 s bound */
  CHECK_EQ(n, 1);
  const ringline_completion *c = &ringline_ring_completions(r)[0];
  CHECK_EQ(c->kind, RINGLINE_KIND_WAKE);
  CHECK(c->extra >= 1);
  CHECK_EQ(c->bid, -1);

  /* A second wake also works (the internal poll stays armed or is re-armed). */
  CHECK_EQ(ringline_ring_wake(r), 0);
  n = ringline_ring_reap(r, 1, 1000000);
  CHECK_EQ(n, 1);
  CHECK_EQ(ringline_ring_completions(r)[0].kind, RINGLINE_KIND_WAKE);

  /* notify_fd turns readable when the armed doorbell rings; with CQ a pending completion rings
   * it, without reaping. On a fresh ring: a wake's own completion signal may come late (the
   * kernel defers it by an RCU grace period when raised inside an eventfd wakeup), which would
   * blur this. */
  ringline_ring *q = std_ring();
  CHECK(q != NULL);
  int efd = own_notify_fd(q);
  CHECK(efd >= 0);
  CHECK(own_notify_fd(q) != efd); /* each call a new descriptor */
  CHECK(!readable_within(efd, 0)); /* nothing pending yet */
  CHECK_EQ(ringline_ring_notify_toggle(q, RINGLINE_NOTIFY_CQ), -EINVAL); /* CQ alone would ring nothing */
  CHECK_EQ(ringline_ring_notify_toggle(q, RINGLINE_NOTIFY_CQ | RINGLINE_NOTIFY_DOORBELL), 0);
  put_op(q, 0, RINGLINE_OP_TIMEOUT, 5, 0, 0, -1, 0, 10, 0);
  CHECK_EQ(ringline_ring_prepare(q, 1), 1);
  t = now_ms();
  CHECK_EQ(ringline_ring_reap(q, 0, 0), 0); /* submits, nothing ready yet */
  CHECK(!readable_within(efd, 0));          /* not rung before the timer fires */
  CHECK(readable_within(efd, 1000));
  double signalled = now_ms() - t;
  printf("    info: notify_fd readable %.1f ms after a 10 ms timeout was submitted\n", signalled);
  CHECK(signalled >= 5.0 && signalled < 1000.0);
  n = ringline_ring_reap(q, 0, 0);
  CHECK_EQ(n, 1);
  c = &ringline_ring_completions(q)[0];
  CHECK_EQ(c->kind, 5);
  CHECK_EQ(c->res, -ETIME);

  /* Armed without CQ, a completion does not ring it; with CQ again, the next one does. */
  drain_notify(efd);
  CHECK_EQ(ringline_ring_notify_toggle(q, RINGLINE_NOTIFY_DOORBELL), 0);
  put_op(q, 0, RINGLINE_OP_TIMEOUT, 5, 1, 0, -1, 0, 5, 0);
  CHECK_EQ(ringline_ring_prepare(q, 1), 1);
  CHECK_EQ(ringline_ring_reap(q, 0, 0), 0);
  CHECK(!readable_within(efd, 50)); /* the 5 ms timer fired unannounced */
  n = ringline_ring_reap(q, 0, 0);
  CHECK_EQ(n, 1);
  CHECK_EQ(ringline_ring_completions(q)[0].slot, 1);
  CHECK_EQ(ringline_ring_notify_toggle(q, RINGLINE_NOTIFY_CQ | RINGLINE_NOTIFY_DOORBELL), 0);
  put_op(q, 0, RINGLINE_OP_TIMEOUT, 5, 2, 0, -1, 0, 5, 0);
  CHECK_EQ(ringline_ring_prepare(q, 1), 1);
  CHECK_EQ(ringline_ring_reap(q, 0, 0), 0);
  CHECK(readable_within(efd, 1000));
  n = ringline_ring_reap(q, 0, 0);
  CHECK_EQ(n, 1);
  CHECK_EQ(ringline_ring_completions(q)[0].slot, 2);

  /* A wake from another thread rings the armed doorbell too (a parked caller hears of it). */
  drain_notify(efd);
  CHECK_EQ(ringline_ring_notify_toggle(q, RINGLINE_NOTIFY_DOORBELL), 0);
  CHECK(!readable_within(efd, 0));
  CHECK_EQ(pthread_create(&thread, NULL, wake_after_50ms, q), 0);
  const int rang = readable_within(efd, 1000);
  pthread_join(thread, &wake_rc);
  CHECK(rang);
  CHECK_EQ(ringline_ring_notify_toggle(q, 4), -EINVAL);
  return 0;
}

/* ── 9. bad arguments ──────────────────────────────────────────────────── */

static int create_fails(ringline_ring_params p, int32_t want_err) {
  int32_t err = 0;
  ringline_ring *r = ringline_ring_create(&p, &err);
  own_ring(r);
  CHECK(r == NULL);
  CHECK_EQ(err, want_err);
  return 0;
}

static int test_bad_arguments(void) {
  /* NULL ring everywhere */
  CHECK_EQ(ringline_ring_prepare(NULL, 1), -EINVAL);
  CHECK_EQ(ringline_ring_reap(NULL, 0, 0), -EINVAL);
  CHECK_EQ(ringline_ring_reap(NULL, 1, 1000), -EINVAL);
  CHECK_EQ(ringline_ring_wake(NULL), -EINVAL);
  CHECK_EQ(ringline_ring_notify_fd(NULL), -EINVAL);
  CHECK_EQ(ringline_ring_notify_toggle(NULL, 1), -EINVAL);
  CHECK(ringline_ring_ops(NULL) == NULL);
  CHECK(ringline_ring_completions(NULL) == NULL);
  CHECK(ringline_ring_msgs(NULL) == NULL);
  CHECK(ringline_ring_slab(NULL) == NULL);
  CHECK_EQ(ringline_bufring_create(NULL, 0, 4, 64, RINGLINE_BUF_OWN_MEMORY), -EINVAL);
  CHECK_EQ(ringline_bufring_recycle(NULL, 0, 1), -EINVAL);
  CHECK_EQ(ringline_bufring_destroy(NULL, 0), -EINVAL);
  CHECK(ringline_bufring_base(NULL, 0) == NULL);
  CHECK(ringline_bufring_returns(NULL, 0) == NULL);
  ringline_ring_destroy(NULL);

  /* ring_create */
  int32_t err = 0;
  CHECK(ringline_ring_create(NULL, &err) == NULL);
  CHECK_EQ(err, -EINVAL);
  CHECK(ringline_ring_create(NULL, NULL) == NULL);
  ringline_ring_params p = std_params();
  p.sq_entries = 3;
  CHECK(own_ring(ringline_ring_create(&p, NULL)) == NULL); /* err may be NULL */
  const uint32_t bad_sq[] = {0, 3, 65536};
  for (size_t i = 0; i < sizeof bad_sq / sizeof bad_sq[0]; i++) {
    p = std_params();
    p.sq_entries = bad_sq[i];
    CHECK(create_fails(p, -EINVAL) == 0);
  }
  p = std_params();
  p.cq_entries = 32; /* smaller than sq 64 */
  CHECK(create_fails(p, -EINVAL) == 0);
  p.cq_entries = 100; /* not a power of two */
  CHECK(create_fails(p, -EINVAL) == 0);
  p = std_params();
  p.setup_flags |= 1u << 3; /* unknown setup flag */
  CHECK(create_fails(p, -EINVAL) == 0);
  p.setup_flags = 1u << 31;
  CHECK(create_fails(p, -EINVAL) == 0);
  p = std_params();
  p.slab_bytes = RINGLINE_MAX_SLAB_BYTES + 1;
  CHECK(create_fails(p, -EINVAL) == 0);

  ringline_ring *r = std_ring();
  CHECK(r != NULL);
  int sv[2];
  CHECK(own_pair(sv) == 0);

  /* bufring_create / recycle / destroy */
  CHECK_EQ(ringline_bufring_create(r, 0, 0, 64, RINGLINE_BUF_OWN_MEMORY), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0, 3, 64, RINGLINE_BUF_OWN_MEMORY), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0, 65536, 64, RINGLINE_BUF_OWN_MEMORY), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0, 4, 0, RINGLINE_BUF_OWN_MEMORY), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0x10000, 4, 64, RINGLINE_BUF_OWN_MEMORY), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 0, 4, 64, RINGLINE_BUF_OWN_MEMORY), 0);
  CHECK_EQ(ringline_bufring_create(r, 0, 8, 128, RINGLINE_BUF_OWN_MEMORY), -EEXIST);
  CHECK(ringline_bufring_base(r, 1) == NULL); /* unknown group */
  CHECK(ringline_bufring_returns(r, 1) == NULL);
  ringline_bufring_returns(r, 0)[0] = 1;
  ringline_bufring_returns(r, 0)[1] = 4; /* bid == entries */
  CHECK_EQ(ringline_bufring_recycle(r, 0, 2), -EINVAL);
  CHECK_EQ(ringline_bufring_recycle(r, 0, 5), -EINVAL); /* more than entries */
  CHECK_EQ(ringline_bufring_recycle(r, 1, 1), -EINVAL); /* unknown group */
  CHECK_EQ(ringline_bufring_destroy(r, 1), -EINVAL);
  CHECK_EQ(ringline_bufring_create(r, 1, 4, 64, RINGLINE_BUF_OWN_MEMORY), 0);
  CHECK_EQ(ringline_bufring_destroy(r, 1), 0);
  CHECK_EQ(ringline_bufring_destroy(r, 1), -EINVAL); /* already gone */

  /* prepare / reap bounds (max_ops = sq 64, max_completions = cq 256) */
  CHECK_EQ(ringline_ring_prepare(r, 65), -EINVAL);
  CHECK_EQ(ringline_ring_reap(r, 257, 0), -EINVAL);
  CHECK_EQ(ringline_ring_reap(r, 257, 1000), -EINVAL);

  /* invalid ops: each refused before reaching the kernel */
  put_op(r, 0, 99, 1, 0, 0, sv[0], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_COUNT, 1, 0, 0, sv[0], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 1, 0, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EBADF);
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 1, 0, 0, sv[0], 7, 0, 0); /* bgid 7 not registered */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_SEND, 1, 0, 0, sv[1], 64 * 1024 - 4, 8, 0); /* offset+len past the slab */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_SEND, 1, 0, 0, sv[1], 0xFFFFFFF0u, 0x20, 0); /* offset+len wraps */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_SENDMSG, 1, 0, 0, sv[1], 16, 0, 0); /* msg slot == msg_slots */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  ringline_msg_desc *m = &ringline_ring_msgs(r)[0];
  memset(m, 0, sizeof *m);
  m->iov_count = 33;
  put_op(r, 0, RINGLINE_OP_SENDMSG, 1, 0, 0, sv[1], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  m->iov_count = 1;
  m->iov[0][0] = 64 * 1024;
  m->iov[0][1] = 1; /* iovec past the slab */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  m->iov_count = 0;
  m->name_len = RINGLINE_SOCKADDR_MAX + 1;
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  m->name_len = 0;
  put_op(r, 0, RINGLINE_OP_CONNECT, 1, 0, 0, sv[1], 0, 0, 0); /* no peer address */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_NOP, 240, 0, 0, -1, 0, 0, 0); /* kind past RINGLINE_KIND_USER_MAX */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_NOP, RINGLINE_KIND_WAKE, 0, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_NOP, 1, RINGLINE_SLOT_MAX + 1, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_TIMEOUT, 1, 0, 0, -1, 16, 5, 0); /* timer slot == timer_slots */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_TIMEOUT_ABS, 1, 0, 0, -1, 0, 1, 1000000000u); /* nanoseconds >= 1e9 */
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_SHUTDOWN, 1, 0, 0, sv[1], 3, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EINVAL);
  put_op(r, 0, RINGLINE_OP_CLOSE, 1, 0, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), -EBADF);

  /* All or nothing: a bad third op means the first two never run. */
  put_op(r, 0, RINGLINE_OP_NOP, 1, 0, 0, -1, 0, 0, 0);
  put_op(r, 1, RINGLINE_OP_NOP, 1, 1, 0, -1, 0, 0, 0);
  put_op(r, 2, 99, 1, 2, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 3), -EINVAL);
  usleep(1000);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0);
  /* and the ring still works afterwards: exactly one NOP comes back */
  put_op(r, 0, RINGLINE_OP_NOP, 1, 42, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 1, 1000000), 1);
  CHECK_EQ(ringline_ring_completions(r)[0].slot, 42);
  usleep(1000);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0);

  /* a SEND on a ring without a slab */
  ringline_ring_params q = std_params();
  q.slab_bytes = 0;
  ringline_ring *r2 = make_ring(&q);
  CHECK(r2 != NULL);
  CHECK(ringline_ring_slab(r2) == NULL);
  put_op(r2, 0, RINGLINE_OP_SEND, 1, 0, 0, sv[1], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r2, 1), -EINVAL);

  /* sockets */
  uint8_t sa[RINGLINE_SOCKADDR_MAX];
  memset(sa, 0, sizeof sa);
  CHECK_EQ(ringline_socket_nodelay(-1, 1), -EBADF);
  CHECK_EQ(ringline_socket_name(-1, 0, sa, sizeof sa), -EBADF);
  CHECK_EQ(ringline_socket_name(sv[0], 2, sa, sizeof sa), -EINVAL);
  CHECK_EQ(ringline_socket_name(sv[0], 0, NULL, sizeof sa), -EINVAL);
  CHECK_EQ(ringline_socket_close(-1), -EBADF);
  CHECK_EQ(ringline_socket_pair(NULL), -EINVAL);
  CHECK_EQ(ringline_addr_parse(NULL, sa, sizeof sa), -EINVAL);
  CHECK_EQ(ringline_addr_parse("127.0.0.1:1", NULL, sizeof sa), -EINVAL);
  CHECK_EQ(ringline_addr_parse("127.0.0.1:1", sa, 4), -ENOSPC);
  char text[8];
  CHECK_EQ(ringline_addr_format(NULL, 16, text, sizeof text), -EINVAL);
  CHECK_EQ(ringline_addr_format(sa, 1, text, sizeof text), -EINVAL);
  CHECK_EQ(ringline_socket_listen(NULL, 16, 16, 0), -EINVAL);
  CHECK_EQ(ringline_socket_udp(NULL, 16, 0), -EINVAL);
  CHECK_EQ(ringline_socket_stream(NULL, 16), -EINVAL);
  CHECK_EQ(ringline_thread_pin(1u << 20), -EINVAL);
  return 0;
}

/* ── 10. addresses and sockets ─────────────────────────────────────────── */

static int test_addresses_and_sockets(void) {
  uint8_t sa[RINGLINE_SOCKADDR_MAX];
  char text[160];
  CHECK_EQ(ringline_addr_parse("127.0.0.1:0", sa, sizeof sa), 16);
  CHECK_EQ(ringline_addr_parse("[::1]:8080", sa, sizeof sa), 28);
  CHECK_EQ(ringline_addr_parse("localhost:80", sa, sizeof sa), 16);
  struct sockaddr_in in4;
  memcpy(&in4, sa, sizeof in4);
  CHECK_EQ(in4.sin_family, AF_INET);
  CHECK_EQ(ntohs(in4.sin_port), 80);
  CHECK_EQ(ntohl(in4.sin_addr.s_addr), INADDR_LOOPBACK);
  int32_t ulen = ringline_addr_parse("unix:/tmp/x.sock", sa, sizeof sa);
  CHECK_EQ(ulen, (int32_t)(offsetof(struct sockaddr_un, sun_path) + strlen("/tmp/x.sock") + 1));
  const char *bad[] = {"", "1.2.3.4", "1.2.3.4:99999", "[::1]80", "host.example:80", "999.1.1.1:1", "1.2.3.4:",
                       "1.2.3.4:8x", "[::1]:", "[::1", "unix:"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (ringline_addr_parse(bad[i], sa, sizeof sa) != -EINVAL) fprintf(stderr, "    accepted \"%s\"\n", bad[i]);
    CHECK_EQ(ringline_addr_parse(bad[i], sa, sizeof sa), -EINVAL);
  }
  const char *round[] = {"127.0.0.1:8080", "[::1]:8080", "unix:/tmp/x.sock", "10.1.2.3:65535"};
  for (size_t i = 0; i < sizeof round / sizeof round[0]; i++) {
    int32_t len = ringline_addr_parse(round[i], sa, sizeof sa);
    CHECK(len > 0);
    CHECK_EQ(ringline_addr_format(sa, (uint32_t)len, text, sizeof text), strlen(round[i]));
    if (strcmp(text, round[i]) != 0) fprintf(stderr, "    \"%s\" formatted as \"%s\"\n", round[i], text);
    CHECK(strcmp(text, round[i]) == 0);
  }
  int32_t len = ringline_addr_parse("[::1]:8080", sa, sizeof sa);
  CHECK_EQ(ringline_addr_format(sa, (uint32_t)len, text, 5), -ENOSPC); /* too small for the text */

  /* TCP listener on an ephemeral loopback port */
  len = ringline_addr_parse("127.0.0.1:0", sa, sizeof sa);
  CHECK_EQ(ringline_socket_listen(sa, (uint32_t)len, 0, 0), -EINVAL); /* backlog 0 */
  int32_t fd = own_fd(ringline_socket_listen(sa, (uint32_t)len, 16, 0));
  CHECK(fd >= 0);
  uint8_t bound[RINGLINE_SOCKADDR_MAX];
  int32_t blen = ringline_socket_name(fd, 0, bound, sizeof bound);
  CHECK_EQ(blen, 16);
  memcpy(&in4, bound, sizeof in4);
  CHECK(ntohs(in4.sin_port) != 0);
  CHECK_EQ(ringline_socket_name(fd, 0, bound, 4), -ENOSPC);
  CHECK_EQ(ringline_socket_name(fd, 1, bound, sizeof bound), -ENOTCONN); /* a listener has no peer */
  CHECK_EQ(ringline_socket_listen(bound, (uint32_t)blen, 16, 0), -EADDRINUSE);
  CHECK_EQ(ringline_socket_nodelay(fd, 1), 0);
  CHECK_EQ(ringline_socket_nodelay(fd, 2), -EINVAL);
  drop_fd(fd);

  /* two REUSEPORT listeners share a port */
  int32_t a = own_fd(ringline_socket_listen(sa, (uint32_t)len, 16, RINGLINE_SOCK_REUSEPORT));
  CHECK(a >= 0);
  blen = ringline_socket_name(a, 0, bound, sizeof bound);
  CHECK_EQ(blen, 16);
  int32_t b = own_fd(ringline_socket_listen(bound, (uint32_t)blen, 16, RINGLINE_SOCK_REUSEPORT));
  CHECK(b >= 0);
  CHECK_EQ(ringline_socket_listen(bound, (uint32_t)blen, 16, 0), -EADDRINUSE); /* but not a third without it */
  CHECK_EQ(ringline_socket_listen(bound, (uint32_t)blen, 16, 1u << 7), -EINVAL); /* unknown flag */

  /* UDP on [::1]:0 */
  len = ringline_addr_parse("[::1]:0", sa, sizeof sa);
  CHECK_EQ(len, 28);
  int32_t u = own_fd(ringline_socket_udp(sa, (uint32_t)len, 0));
  CHECK(u >= 0);
  blen = ringline_socket_name(u, 0, bound, sizeof bound);
  CHECK_EQ(blen, 28);
  CHECK_EQ(ringline_addr_format(bound, (uint32_t)blen, text, sizeof text), (int32_t)strlen(text));
  CHECK(strncmp(text, "[::1]:", 6) == 0 && strcmp(text, "[::1]:0") != 0);

  /* stream socket of the family of an address */
  int32_t s = own_fd(ringline_socket_stream(sa, (uint32_t)len));
  CHECK(s >= 0);

  /* unix listener over a stale socket file (bound, never listened, closed) */
  snprintf(owned_path, sizeof owned_path, "/tmp/ringline-contract-%d.sock", (int)getpid());
  unlink(owned_path);
  char addr[160];
  snprintf(addr, sizeof addr, "unix:%s", owned_path);
  len = ringline_addr_parse(addr, sa, sizeof sa);
  CHECK(len > 0);
  int stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(stale >= 0);
  int bound_ok = bind(stale, (const struct sockaddr *)sa, (socklen_t)len) == 0;
  close(stale);
  CHECK(bound_ok);
  CHECK(access(owned_path, F_OK) == 0);
  CHECK_EQ(ringline_socket_listen(sa, (uint32_t)len, 16, 0), -EADDRINUSE); /* without UNLINK */
  int32_t ufd = own_fd(ringline_socket_listen(sa, (uint32_t)len, 16, RINGLINE_SOCK_UNLINK));
  CHECK(ufd >= 0);
  blen = ringline_socket_name(ufd, 0, bound, sizeof bound);
  CHECK(blen > 0);
  CHECK(ringline_addr_format(bound, (uint32_t)blen, text, sizeof text) > 0);
  CHECK(strcmp(text, addr) == 0);
  /* a live listener's file is not stale: UNLINK leaves it alone */
  CHECK_EQ(ringline_socket_listen(sa, (uint32_t)len, 16, RINGLINE_SOCK_UNLINK), -EADDRINUSE);
  int client = own_fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CHECK(client >= 0);
  CHECK(connect(client, (const struct sockaddr *)sa, (socklen_t)len) == 0);
  drop_fd(client);
  drop_fd(ufd);
  unlink(owned_path);

  /* a unix sockaddr longer than struct sockaddr_un is refused, not copied */
  uint8_t big[RINGLINE_SOCKADDR_MAX];
  memset(big, 'a', sizeof big);
  sa_family_t fam = AF_UNIX;
  memcpy(big, &fam, sizeof fam);
  memcpy(big + sizeof fam, "/tmp/", 5);
  CHECK(ringline_socket_listen(big, sizeof big, 16, RINGLINE_SOCK_UNLINK) < 0);
  CHECK(ringline_socket_udp(big, sizeof big, RINGLINE_SOCK_UNLINK) < 0);
  CHECK(ringline_socket_stream(big, sizeof big) < 0);
  CHECK(ringline_socket_listen(sa, RINGLINE_SOCKADDR_MAX + 1, 16, 0) < 0);

  /* a stale socket at a full-length path (108 bytes, no NUL, len 110) is replaced too */
  struct sockaddr_un full;
  memset(&full, 0, sizeof full);
  full.sun_family = AF_UNIX;
  int prefix = snprintf(full.sun_path, sizeof full.sun_path, "/tmp/ringline-contract-%d-", (int)getpid());
  CHECK(prefix > 0 && prefix < (int)sizeof full.sun_path);
  memset(full.sun_path + prefix, 'p', sizeof full.sun_path - (size_t)prefix); /* no room left for a NUL */
  memcpy(owned_path, full.sun_path, sizeof full.sun_path); /* the file's name: all 108 bytes */
  owned_path[sizeof full.sun_path] = '\0';
  unlink(owned_path);
  stale = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(stale >= 0);
  bound_ok = bind(stale, (const struct sockaddr *)&full, sizeof full) == 0;
  close(stale);
  CHECK(bound_ok);
  CHECK(access(owned_path, F_OK) == 0);
  uint8_t full_sa[sizeof full];
  memcpy(full_sa, &full, sizeof full);
  CHECK_EQ(ringline_socket_listen(full_sa, sizeof full, 16, 0), -EADDRINUSE);
  int32_t ffd = own_fd(ringline_socket_listen(full_sa, sizeof full, 16, RINGLINE_SOCK_UNLINK));
  CHECK(ffd >= 0);
  blen = ringline_socket_name(ffd, 0, bound, sizeof bound);
  CHECK(blen > 0);
  CHECK_EQ(ringline_addr_format(bound, (uint32_t)blen, text, sizeof text), 5 + 108);
  CHECK(memcmp(text + 5, owned_path, 108) == 0);
  return 0;
}

/* ── 11. multishot accept ──────────────────────────────────────────────── */

static int test_accept_multishot(void) {
  ringline_ring *r = std_ring();
  CHECK(r != NULL);
  uint8_t bound[RINGLINE_SOCKADDR_MAX];
  int32_t blen = 0;
  int32_t lfd = loopback_listener(bound, &blen);
  CHECK(lfd >= 0);
  put_op(r, 0, RINGLINE_OP_ACCEPT_MULTI, 20, 7, 3, lfd, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0); /* armed */
  for (int i = 0; i < 3; i++) {
    int c = own_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); /* blocking client */
    CHECK(c >= 0);
    CHECK(connect(c, (const struct sockaddr *)bound, (socklen_t)blen) == 0);
  }
  int accepted = 0;
  double deadline = now_ms() + 2000;
  while (accepted < 3 && now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind != 20) continue;
      CHECK(x->res >= 0);
      own_fd(x->res);
      CHECK_EQ(x->slot, 7);
      CHECK_EQ(x->gen, 3);
      CHECK(x->flags & F_MORE);
      uint8_t peer[RINGLINE_SOCKADDR_MAX];
      CHECK_EQ(ringline_socket_name(x->res, 1, peer, sizeof peer), 16); /* a connected TCP socket */
      CHECK_EQ(ringline_socket_nodelay(x->res, 1), 0);
      drop_fd(x->res);
      accepted++;
    }
  }
  CHECK_EQ(accepted, 3);
  return 0;
}

/* ── 12. CQ overflow ───────────────────────────────────────────────────── */

static int test_cq_overflow_accounted(void) {
  ringline_ring_params p = std_params();
  p.sq_entries = 8;
  p.cq_entries = 8;
  p.max_completions = 256;
  ringline_ring *r = make_ring(&p);
  CHECK(r != NULL);
  /* 64 NOPs through an 8-entry SQ and CQ, never reaping in between: prepare
   * flushes to the kernel whenever the SQ is full. */
  for (uint32_t batch = 0; batch < 8; batch++) {
    for (uint32_t i = 0; i < 8; i++) put_op(r, i, RINGLINE_OP_NOP, 30, batch * 8 + i, 0, -1, 0, 0, 0);
    CHECK_EQ(ringline_ring_prepare(r, 8), 8);
  }
  int nops = 0;
  uint64_t dropped = 0;
  uint8_t seen[64] = {0};
  double deadline = now_ms() + 2000;
  while (nops + (int)dropped < 64 && now_ms() < deadline) {
    int32_t n = ringline_ring_reap(r, 0, 0);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind == 30) {
        CHECK(x->slot < 64);
        CHECK_EQ(seen[x->slot], 0); /* none twice */
        seen[x->slot] = 1;
        CHECK_EQ(x->res, 0);
        nops++;
      } else if (x->kind == RINGLINE_KIND_OVERFLOW) {
        CHECK(x->extra > 0);
        dropped += x->extra;
      }
    }
    if (n == 0) usleep(1000);
  }
  printf("    info: 64 NOPs through an 8-entry CQ: %d delivered, %llu reported dropped\n", nops,
         (unsigned long long)dropped);
  CHECK_EQ(nops + (long long)dropped, 64);
  return 0;
}

/* ── 13. documented limits ─────────────────────────────────────────────── */

static int nop_once(ringline_ring *r) {
  put_op(r, 0, RINGLINE_OP_NOP, 9, 1, 1, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 1, 1000000), 1);
  CHECK_EQ(ringline_ring_completions(r)[0].kind, 9);
  return 0;
}

static int test_limits_accepted(void) {
  /* sq_entries 1 and RINGLINE_MAX_SQ_ENTRIES are in the documented range, with cq_entries 0 */
  const uint32_t sq[] = {1, RINGLINE_MAX_SQ_ENTRIES};
  for (size_t i = 0; i < sizeof sq / sizeof sq[0]; i++) {
    ringline_ring_params p;
    memset(&p, 0, sizeof p);
    p.sq_entries = sq[i];
    p.setup_flags = RINGLINE_SETUP_DEFER_TASKRUN | RINGLINE_SETUP_SINGLE_ISSUER;
    ringline_ring *r = make_ring(&p);
    if (r == NULL) fprintf(stderr, "    sq_entries %u refused\n", sq[i]);
    CHECK(r != NULL);
    CHECK(nop_once(r) == 0);
    /* max_completions defaults to cq_entries' default, 4 x sq: min up to that is accepted */
    CHECK_EQ(ringline_ring_reap(r, 4 * sq[i], 0), 0);
    CHECK_EQ(ringline_ring_reap(r, 4 * sq[i] + 1, 0), -EINVAL);
    drop_ring(r);
  }
  /* RINGLINE_MAX_BUFRINGS buffer rings per ring, then -ENOSPC */
  ringline_ring *r = std_ring();
  CHECK(r != NULL);
  for (uint32_t g = 0; g < RINGLINE_MAX_BUFRINGS; g++) CHECK_EQ(ringline_bufring_create(r, g * 100, 2, 16, RINGLINE_BUF_OWN_MEMORY), 0);
  CHECK_EQ(ringline_bufring_create(r, 999, 2, 16, RINGLINE_BUF_OWN_MEMORY), -ENOSPC);
  CHECK_EQ(ringline_bufring_destroy(r, 300), 0);
  CHECK_EQ(ringline_bufring_create(r, 999, RINGLINE_MAX_BUF_ENTRIES, 1, RINGLINE_BUF_OWN_MEMORY), 0);
  return 0;
}

/* ── 14. prepare after a failed flush ──────────────────────────────────── */

typedef struct prepare_args {
  ringline_ring *ring;
  int32_t first;  /* prepare(16) through an 8-entry SQ */
  int32_t second; /* prepare(16) again, the SQ still full */
} prepare_args;

/* Deliberately breaks the one-thread rule: under SINGLE_ISSUER the kernel refuses
 * another thread's submit (-EEXIST), the one way to make prepare's flush fail. */
static void *prepare_off_thread(void *arg) {
  prepare_args *a = arg;
  for (uint32_t i = 0; i < 16; i++) put_op(a->ring, i, RINGLINE_OP_NOP, 80, i, 0, -1, 0, 0, 0);
  a->first = ringline_ring_prepare(a->ring, 16);
  a->second = ringline_ring_prepare(a->ring, 16);
  return NULL;
}

static int test_prepare_counts_taken_ops(void) {
  ringline_ring_params p = std_params();
  p.sq_entries = 8;
  p.max_ops = 16;
  ringline_ring *r = make_ring(&p);
  CHECK(r != NULL);
  CHECK(p.setup_flags & RINGLINE_SETUP_SINGLE_ISSUER);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0); /* the internal wake poll is submitted: the SQ is empty */
  prepare_args a = {.ring = r, .first = 0, .second = 0};
  pthread_t thread;
  CHECK_EQ(pthread_create(&thread, NULL, prepare_off_thread, &a), 0);
  pthread_join(thread, NULL);
  CHECK_EQ(a.first, 8);        /* 8 became SQEs before the flush failed: counted, not -EEXIST */
  CHECK_EQ(a.second, -EEXIST); /* nothing taken: the error itself */
  /* the creating thread's reap submits the 8 taken ops, each completes once */
  uint8_t seen[8] = {0};
  int got = 0;
  double deadline = now_ms() + 2000;
  while (got < 8 && now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind != 80) continue;
      CHECK(x->slot < 8);
      CHECK_EQ(seen[x->slot], 0);
      CHECK_EQ(x->res, 0);
      seen[x->slot] = 1;
      got++;
    }
  }
  CHECK_EQ(got, 8);
  CHECK(nop_once(r) == 0); /* and the ring goes on */
  return 0;
}

/* ── 15. SEND_ZC: result, then the zero-copy notification ───────────────── */

/* A connected TCP pair over loopback: *client (blocking) and *server (accepted). */
static int tcp_pair(int *client, int *server) {
  uint8_t bound[RINGLINE_SOCKADDR_MAX];
  int32_t blen = 0;
  int32_t lfd = loopback_listener(bound, &blen);
  CHECK(lfd >= 0);
  int c = own_fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  CHECK(c >= 0);
  CHECK(connect(c, (const struct sockaddr *)bound, (socklen_t)blen) == 0);
  struct pollfd pfd = {.fd = lfd, .events = POLLIN, .revents = 0};
  CHECK_EQ(poll(&pfd, 1, 2000), 1);
  int s = own_fd(accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
  CHECK(s >= 0);
  *client = c;
  *server = s;
  return 0;
}

static int test_send_zc_notif(void) {
  if (!(ringline_kernel_probe() & (int32_t)RINGLINE_FEAT_SEND_ZC)) {
    printf("    info: no SEND_ZC on this kernel, nothing to test\n");
    return 0;
  }
  int c = -1, s = -1;
  CHECK(tcp_pair(&c, &s) == 0);
  ringline_ring *r = std_ring();
  CHECK(r != NULL);
  uint8_t *slab = ringline_ring_slab(r);
  enum { LEN = 8192, OFF = 512 };
  fill_pattern(slab + OFF, LEN, 3);
  put_op(r, 0, RINGLINE_OP_SEND_ZC, 40, 6, 2, c, OFF, LEN, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  int result = 0, notif = 0;
  static uint8_t got[LEN];
  size_t have = 0;
  double deadline = now_ms() + 2000;
  while ((!result || !notif || have < LEN) && now_ms() < deadline) {
    int32_t n = ringline_ring_reap(r, 1, 10 * 1000);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind != 40) continue;
      CHECK_EQ(x->slot, 6);
      CHECK_EQ(x->gen, 2);
      CHECK_EQ(x->bid, -1);
      if (!(x->flags & F_NOTIF)) { /* the result comes first, and promises the notification */
        CHECK(!result && !notif);
        CHECK_EQ(x->res, LEN);
        CHECK(x->flags & F_MORE);
        result = 1;
      } else { /* then the slab range may be reused: the request's last record */
        CHECK(result && !notif);
        CHECK_EQ(x->res, 0);
        CHECK(!(x->flags & F_MORE));
        notif = 1;
      }
    }
    ssize_t k = recv(s, got + have, LEN - have, MSG_DONTWAIT);
    if (k > 0)
      have += (size_t)k;
    else
      CHECK(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)); /* never EOF */
  }
  CHECK(result);
  CHECK(notif);
  CHECK_EQ(have, LEN);
  CHECK(memcmp(got, slab + OFF, LEN) == 0);
  return 0;
}

/* ── 16. POLL_ADD ──────────────────────────────────────────────────────── */

static int test_poll_add(void) {
  int sv[2];
  ringline_ring *r = ring_with_pair(sv);
  CHECK(r != NULL);

  /* POLLOUT on a writable socket completes at once with the ready mask */
  put_op(r, 0, RINGLINE_OP_POLL_ADD, 41, 1, 1, sv[0], POLLOUT, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  int32_t n = ringline_ring_reap(r, 1, 1000 * 1000);
  const ringline_completion *x = find_kind(r, n, 41);
  CHECK(x != NULL);
  CHECK(x->res > 0);
  CHECK(x->res & POLLOUT);
  CHECK(!(x->res & POLLIN)); /* only what was asked for */
  CHECK(!(x->flags & F_MORE)); /* one-shot */
  CHECK_EQ(x->bid, -1);

  /* POLLIN waits for data */
  put_op(r, 0, RINGLINE_OP_POLL_ADD, 42, 2, 1, sv[0], POLLIN, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  n = ringline_ring_reap(r, 1, 20 * 1000);
  CHECK(n >= 0);
  CHECK(find_kind(r, n, 42) == NULL); /* nothing to read yet */
  CHECK_EQ(write(sv[1], "x", 1), 1);
  n = ringline_ring_reap(r, 1, 1000 * 1000);
  x = find_kind(r, n, 42);
  CHECK(x != NULL);
  CHECK(x->res & POLLIN);
  CHECK_EQ(x->slot, 2);
  return 0;
}

/* ── 17. CANCEL / CANCEL_FD of a pending recv ──────────────────────────── */

static int test_cancel_pending_recv(void) {
  int sv[2];
  ringline_ring *r = ring_with_pair(sv);
  CHECK(r != NULL);
  CHECK_EQ(ringline_bufring_create(r, 0, 8, 256, RINGLINE_BUF_OWN_MEMORY), 0);

  /* by user_data: kind 50 slot 3 gen 7 */
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 50, 3, 7, sv[0], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0); /* armed, nothing to read */
  put_op(r, 0, RINGLINE_OP_CANCEL, 51, 0, 0, -1, 50, 3, 7);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  int recv_done = 0, cancel_done = 0;
  double deadline = now_ms() + 2000;
  while ((!recv_done || !cancel_done) && now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind == 50) {
        CHECK(!recv_done);
        CHECK_EQ(x->gen, 7);
        CHECK_EQ(x->res, -ECANCELED);
        CHECK(!(x->flags & F_MORE)); /* the multishot ended */
        recv_done = 1;
      } else if (x->kind == 51) {
        CHECK_EQ(x->res, 0);
        cancel_done = 1;
      }
    }
  }
  CHECK(recv_done);
  CHECK(cancel_done);

  /* by fd: a recv and a poll on sv[0], both cancelled, the cancel reports 2 */
  put_op(r, 0, RINGLINE_OP_RECV_MULTI, 50, 4, 8, sv[0], 0, 0, 0);
  put_op(r, 1, RINGLINE_OP_POLL_ADD, 52, 0, 0, sv[0], POLLIN, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 2), 2);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0);
  put_op(r, 0, RINGLINE_OP_CANCEL_FD, 53, 0, 0, sv[0], 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  int recv2 = 0, poll2 = 0, cancel2 = 0;
  deadline = now_ms() + 2000;
  while ((!recv2 || !poll2 || !cancel2) && now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind == 50) {
        CHECK_EQ(x->gen, 8);
        CHECK_EQ(x->res, -ECANCELED);
        CHECK(!(x->flags & F_MORE));
        recv2++;
      } else if (x->kind == 52) {
        CHECK_EQ(x->res, -ECANCELED);
        poll2++;
      } else if (x->kind == 53) {
        CHECK_EQ(x->res, 2);
        cancel2++;
      }
    }
  }
  CHECK_EQ(recv2, 1);
  CHECK_EQ(poll2, 1);
  CHECK_EQ(cancel2, 1);

  /* nothing is left armed: data now completes nothing */
  CHECK_EQ(write(sv[1], "late", 4), 4);
  int32_t n = ringline_ring_reap(r, 1, 20 * 1000);
  CHECK(n >= 0);
  CHECK(find_kind(r, n, 50) == NULL);
  CHECK(find_kind(r, n, 52) == NULL);
  return 0;
}

/* ── 18. RECVMSG_MULTI over UDP ────────────────────────────────────────── */

static int test_recvmsg_multi_udp(void) {
  uint8_t sa[RINGLINE_SOCKADDR_MAX], rx_addr[RINGLINE_SOCKADDR_MAX], tx_addr[RINGLINE_SOCKADDR_MAX];
  int32_t len = ringline_addr_parse("127.0.0.1:0", sa, sizeof sa);
  CHECK_EQ(len, 16);
  int32_t rx = own_fd(ringline_socket_udp(sa, (uint32_t)len, 0));
  int32_t tx = own_fd(ringline_socket_udp(sa, (uint32_t)len, 0));
  CHECK(rx >= 0 && tx >= 0);
  int32_t rxlen = ringline_socket_name(rx, 0, rx_addr, sizeof rx_addr);
  int32_t txlen = ringline_socket_name(tx, 0, tx_addr, sizeof tx_addr);
  CHECK_EQ(rxlen, 16);
  CHECK_EQ(txlen, 16);

  ringline_ring *r = std_ring();
  CHECK(r != NULL);
  enum { BUF = 128, HEAD = sizeof(ringline_recvmsg_out) + RINGLINE_RECVMSG_NAME_LEN };
  CHECK_EQ(ringline_bufring_create(r, 3, 8, BUF, RINGLINE_BUF_OWN_MEMORY), 0);
  uint8_t *base = ringline_bufring_base(r, 3);
  CHECK(base != NULL);
  put_op(r, 0, RINGLINE_OP_RECVMSG_MULTI, 60, 1, 1, rx, 3, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 1), 1);
  CHECK_EQ(ringline_ring_reap(r, 0, 0), 0); /* armed */

  CHECK_EQ(sendto(tx, "datagram-1", 10, 0, (const struct sockaddr *)rx_addr, (socklen_t)rxlen), 10);
  ringline_completion c;
  CHECK(reap_one_kind(r, 60, &c) == 0);
  CHECK_EQ(c.res, HEAD + 10); /* header + name room + payload */
  CHECK(c.flags & F_BUFFER);
  CHECK(c.flags & F_MORE);
  CHECK(c.bid >= 0 && c.bid < 8);
  const uint8_t *buf = base + (size_t)c.bid * BUF;
  ringline_recvmsg_out h;
  memcpy(&h, buf, sizeof h);
  CHECK_EQ(h.namelen, 16);
  CHECK_EQ(h.controllen, 0);
  CHECK_EQ(h.payloadlen, 10);
  CHECK_EQ(h.flags & MSG_TRUNC, 0);
  CHECK(memcmp(buf + sizeof h, tx_addr, 16) == 0); /* the source address, as sockaddr bytes */
  char from[64], want[64];
  CHECK(ringline_addr_format(buf + sizeof h, h.namelen, from, sizeof from) > 0);
  CHECK(ringline_addr_format(tx_addr, (uint32_t)txlen, want, sizeof want) > 0);
  CHECK(strcmp(from, want) == 0);
  CHECK(memcmp(buf + HEAD, "datagram-1", 10) == 0);
  ringline_bufring_returns(r, 3)[0] = (uint16_t)c.bid;
  CHECK_EQ(ringline_bufring_recycle(r, 3, 1), 1);

  /* a datagram larger than the payload room arrives truncated and flagged; payloadlen is what fitted
   * (the op does not pass MSG_TRUNC in, so the kernel does not report the full length) */
  uint8_t big[200];
  fill_pattern(big, sizeof big, 9);
  CHECK_EQ(sendto(tx, big, sizeof big, 0, (const struct sockaddr *)rx_addr, (socklen_t)rxlen), 200);
  CHECK(reap_one_kind(r, 60, &c) == 0);
  CHECK_EQ(c.res, BUF);
  CHECK(c.flags & F_MORE);
  buf = base + (size_t)c.bid * BUF;
  memcpy(&h, buf, sizeof h);
  CHECK_EQ(h.namelen, 16);
  CHECK_EQ(h.payloadlen, BUF - HEAD);
  CHECK(h.flags & MSG_TRUNC);
  CHECK(memcmp(buf + HEAD, big, BUF - HEAD) == 0);
  return 0;
}

/* ── 19. a closed (non-negative) fd ────────────────────────────────────── */

static int test_closed_fd_ebadf(void) {
  ringline_ring *r = std_ring(); /* before the fd is closed: nothing may reuse its number */
  CHECK(r != NULL);
  int sv[2];
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  own_fd(sv[1]);
  const int fd = sv[0];
  CHECK(close(fd) == 0);
  uint8_t name[RINGLINE_SOCKADDR_MAX];
  CHECK_EQ(ringline_socket_name(fd, 0, name, sizeof name), -EBADF);
  CHECK_EQ(ringline_socket_nodelay(fd, 1), -EBADF);
  CHECK_EQ(ringline_socket_close(fd), -EBADF);

  /* fd >= 0 passes validation; the kernel completes each op with -EBADF, the NOP still runs */
  put_op(r, 0, RINGLINE_OP_POLL_ADD, 70, 0, 0, fd, POLLIN, 0, 0);
  put_op(r, 1, RINGLINE_OP_SEND, 71, 0, 0, fd, 0, 4, 0);
  put_op(r, 2, RINGLINE_OP_CANCEL_FD, 72, 0, 0, fd, 0, 0, 0);
  put_op(r, 3, RINGLINE_OP_NOP, 73, 0, 0, -1, 0, 0, 0);
  CHECK_EQ(ringline_ring_prepare(r, 4), 4);
  int32_t res[4] = {1, 1, 1, 1};
  int got = 0;
  double deadline = now_ms() + 2000;
  while (got < 4 && now_ms() < deadline) {
    int32_t n = reap_some(r);
    CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) {
      const ringline_completion *x = &ringline_ring_completions(r)[i];
      if (x->kind < 70 || x->kind > 73) continue;
      CHECK_EQ(res[x->kind - 70], 1); /* once each */
      res[x->kind - 70] = x->res;
      got++;
    }
  }
  CHECK_EQ(got, 4);
  CHECK_EQ(res[0], -EBADF);
  CHECK_EQ(res[1], -EBADF);
  CHECK_EQ(res[2], -EBADF);
  CHECK_EQ(res[3], 0);
  return 0;
}

/* ── 20. the doorbell ──────────────────────────────────────────────────── */

static int test_doorbell_rings(void) {
  int sv[2], tv[2];
  ringline_ring *r;
  const int efd = doorbell_setup(sv, &r);
  CHECK(efd >= 0);
  CHECK(own_pair(tv) == 0);
  CHECK_EQ(ringline_ring_watch(r, &sv[0], 1), 0);
  CHECK_EQ(ringline_ring_notify_toggle(r, RINGLINE_NOTIFY_DOORBELL), 0);
  CHECK(!readable_within(efd, 0)); /* the edge of sv[0] joining the set (writable) was dropped by arming */

  /* No ring op is pending on sv[0]: only the doorbell can signal notify_fd for this byte. */
  CHECK_EQ(write(sv[1], "x", 1), 1);
  CHECK(readable_within(efd, 1000));
  char buf[8];
  CHECK_EQ(read(sv[0], buf, sizeof buf), 1); /* as the caller's ring would have */

  /* Re-armed, an unwatched socket's data stays silent; the watched one's next byte rings again
   * (which also shows the doorbell was armed while the unwatched one stayed silent). */
  drain_notify(efd);
  CHECK_EQ(ringline_ring_notify_toggle(r, RINGLINE_NOTIFY_DOORBELL), 0);
  CHECK_EQ(write(tv[1], "y", 1), 1);
  CHECK(!readable_within(efd, 50));
  CHECK_EQ(write(sv[1], "z", 1), 1);
  CHECK(readable_within(efd, 1000));
  return 0;
}

static int test_doorbell_drops_stale_edges(void) {
  int sv[2];
  ringline_ring *r;
  const int efd = doorbell_setup(sv, &r);
  CHECK(efd >= 0);
  CHECK_EQ(ringline_ring_watch(r, &sv[0], 1), 0);
  /* Round 0 on a doorbell never armed, round 1 on one that has rung: data that arrives
   * while the caller is busy (signalling off) must not ring once it parks again. */
  for (int round = 0; round < 2; round++) {
    CHECK_EQ(ringline_ring_notify_toggle(r, 0), 0);
    CHECK_EQ(write(sv[1], "x", 1), 1);
    drain_notify(efd);
    CHECK_EQ(ringline_ring_notify_toggle(r, RINGLINE_NOTIFY_DOORBELL), 0);
    CHECK(!readable_within(efd, 50)); /* that edge came before arming */
    CHECK_EQ(write(sv[1], "y", 1), 1);
    CHECK(readable_within(efd, 1000)); /* a new one rings */
    char buf[8];
    CHECK_EQ(read(sv[0], buf, sizeof buf), 2);
  }
  return 0;
}

/* More dropped edges than arming takes in one batch, a third of them from sockets whose peer
 * hung up (those report to the fence unasked): arming still returns at once (the fence never
 * sleeps), drops them all, and the next byte rings. */
static int test_doorbell_fences_many_dropped_edges(void) {
  enum { PAIRS = 70 };
  int sv[2];
  ringline_ring *r;
  const int efd = doorbell_setup(sv, &r);
  CHECK(efd >= 0);
  for (int i = 0; i < PAIRS; i++) {
    int p[2];
    CHECK(own_pair(p) == 0);
    CHECK_EQ(ringline_ring_watch(r, &p[0], 1), 0);
    if (i % 3 == 0)
      drop_fd(p[1]);
    else
      CHECK_EQ(write(p[1], "x", 1), 1);
  }
  CHECK_EQ(ringline_ring_watch(r, &sv[0], 1), 0);
  struct rusage before, after;
  CHECK_EQ(getrusage(RUSAGE_THREAD, &before), 0);
  CHECK_EQ(ringline_ring_notify_toggle(r, RINGLINE_NOTIFY_DOORBELL), 0);
  CHECK_EQ(getrusage(RUSAGE_THREAD, &after), 0);
  CHECK_EQ(after.ru_nvcsw - before.ru_nvcsw, 0); /* a fence that slept is a voluntary switch */
  CHECK(!readable_within(efd, 50));
  CHECK_EQ(write(sv[1], "y", 1), 1);
  CHECK(readable_within(efd, 1000));
  return 0;
}

static int test_doorbell_watch_errors(void) {
  int sv[2], tv[2];
  ringline_ring *r = ring_with_pair(sv);
  CHECK(r != NULL);
  CHECK(own_pair(tv) == 0);
  const int32_t bad = -1;
  CHECK_EQ(ringline_ring_watch(NULL, &sv[0], 1), -EINVAL);
  CHECK_EQ(ringline_ring_watch(r, NULL, 1), -EINVAL);
  CHECK_EQ(ringline_ring_watch(r, NULL, 0), 0);
  CHECK_EQ(ringline_ring_watch(r, &bad, 1), -EBADF);
  CHECK_EQ(ringline_ring_watch(r, &sv[0], 1), 0);
  CHECK_EQ(ringline_ring_watch(r, &sv[0], 1), 0); /* already in the set */

  /* The first error is reported, and the fds after the bad one are still watched. */
  const int32_t list[3] = {sv[0], bad, tv[0]};
  CHECK_EQ(ringline_ring_watch(r, list, 3), -EBADF);
  const int efd = own_notify_fd(r);
  CHECK(efd >= 0);
  CHECK_EQ(ringline_ring_notify_toggle(r, RINGLINE_NOTIFY_DOORBELL), 0);
  CHECK(!readable_within(efd, 0));
  CHECK_EQ(write(tv[1], "x", 1), 1);
  CHECK(readable_within(efd, 1000));
  return 0;
}

static int test_doorbell_unwatch(void) {
  int sv[2];
  ringline_ring *r;
  const int efd = doorbell_setup(sv, &r);
  CHECK(efd >= 0);
  const int32_t bad = -1;
  CHECK_EQ(ringline_ring_unwatch(NULL, &sv[0], 1), -EINVAL);
  CHECK_EQ(ringline_ring_unwatch(r, NULL, 1), -EINVAL);
  CHECK_EQ(ringline_ring_unwatch(r, NULL, 0), 0);
  CHECK_EQ(ringline_ring_unwatch(r, &sv[0], 1), 0); /* not in the set: fine */
  CHECK_EQ(ringline_ring_unwatch(r, &bad, 1), -EBADF);

  /* Out of the set, the socket's data does not ring an armed doorbell. */
  CHECK_EQ(ringline_ring_watch(r, &sv[0], 1), 0);
  CHECK_EQ(ringline_ring_unwatch(r, &sv[0], 1), 0);
  CHECK_EQ(ringline_ring_notify_toggle(r, RINGLINE_NOTIFY_DOORBELL), 0);
  CHECK_EQ(write(sv[1], "x", 1), 1);
  CHECK(!readable_within(efd, 50));

  /* Back in the set, its next byte rings (the doorbell stayed armed meanwhile). */
  CHECK_EQ(ringline_ring_watch(r, &sv[0], 1), 0);
  CHECK_EQ(ringline_ring_notify_toggle(r, RINGLINE_NOTIFY_DOORBELL), 0);
  CHECK_EQ(write(sv[1], "y", 1), 1);
  CHECK(readable_within(efd, 1000));
  return 0;
}

/* ── runner ────────────────────────────────────────────────────────────── */

static const struct {
  const char *name;
  int (*fn)(void);
} tests[] = {
    {"probe: features of this kernel, no fd leak over 50 calls", test_probe},
    {"layout: query publishes the ABI version, refuses small/NULL buffers", test_layout},
    {"create/destroy 1,000 rings with a bufring: no fd or memory leak", test_create_destroy_1000_rings},
    {"NOP round trip echoes kind/slot/gen; batched NOP timing", test_nop_round_trip},
    {"timeouts: relative, absolute, ending an unbounded wait, cancelled by user_data", test_timeouts_and_cancel},
    {"socketpair: send, sendmsg with 3 iovecs, multishot recv", test_send_sendmsg_recv_socketpair},
    {"close quiet: fd closed without a completion, a failure still completes", test_close_quiet},
    {"buffer ring inside the slab: range checked, a received buffer sent on by its slab offset", test_bufring_in_slab_send},
    {"recv multishot: 4 buffers until -ENOBUFS, replenish, continue", test_recv_enobufs_replenish},
    {"wake from another thread; notify eventfd signals pending completions", test_wake_and_notify_fd},
    {"bad arguments return -EINVAL/-EBADF/-EEXIST, never crash", test_bad_arguments},
    {"addresses and sockets: parse, format, listen, reuseport, udp, unix", test_addresses_and_sockets},
    {"multishot accept over TCP loopback", test_accept_multishot},
    {"CQ overflow: every NOP delivered or reported dropped", test_cq_overflow_accounted},
    {"documented limits: sq 1 and 32768, 8 bufrings, 32768 buffers", test_limits_accepted},
    {"prepare counts ops already taken when a later flush fails", test_prepare_counts_taken_ops},
    {"SEND_ZC over TCP loopback: result with F_MORE, then F_NOTIF", test_send_zc_notif},
    {"POLL_ADD: POLLOUT on a writable socket, POLLIN waits for data", test_poll_add},
    {"CANCEL by user_data and CANCEL_FD end a pending recv", test_cancel_pending_recv},
    {"RECVMSG_MULTI over UDP: datagram, source address, truncation", test_recvmsg_multi_udp},
    {"closed fd: socket helpers and ops report -EBADF", test_closed_fd_ebadf},
    {"doorbell: a watched socket's data rings notify_fd, an unwatched one's does not; re-armed, it rings again", test_doorbell_rings},
    {"doorbell: edges from before arming are dropped, the next one rings", test_doorbell_drops_stale_edges},
    {"doorbell: arming fences more dropped edges than a batch, hung-up sockets among them, without sleeping; the next byte rings", test_doorbell_fences_many_dropped_edges},
    {"doorbell: watch refuses NULL/-1 (-EINVAL/-EBADF), accepts a repeat, watches past a bad fd", test_doorbell_watch_errors},
    {"doorbell: unwatch refuses NULL/-1, accepts an fd not in the set; an unwatched socket stays silent until watched again", test_doorbell_unwatch},
};

/* Runs one test in a child process, so a crash (UBSan trap, abort, SIGSEGV) or a
 * hang (20 s alarm) fails that test only and the summary line still comes out.
 * Returns 0 on pass; otherwise the reason is in `reason`. */
static int run_isolated(size_t idx, char *reason, size_t cap) {
  int pfd[2];
  reason[0] = '\0';
  if (pipe(pfd) < 0) {
    snprintf(reason, cap, "pipe: %s", strerror(errno));
    return 1;
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(reason, cap, "fork: %s", strerror(errno));
    close(pfd[0]);
    close(pfd[1]);
    return 1;
  }
  if (pid == 0) {
    close(pfd[0]);
    alarm(20);
    reset_owned();
    g_reason[0] = '\0';
    int rc = tests[idx].fn();
    release_owned();
    if (rc != 0) {
      const char *why = g_reason[0] ? g_reason : "failed without a reason";
      ssize_t w = write(pfd[1], why, strlen(why));
      (void)w;
    }
    fflush(stdout);
    fflush(stderr);
    _exit(rc != 0);
  }
  close(pfd[1]);
  size_t have = 0;
  for (;;) {
    ssize_t k = read(pfd[0], reason + have, cap - 1 - have);
    if (k > 0 && have + (size_t)k < cap - 1) {
      have += (size_t)k;
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k > 0) have += (size_t)k;
    break;
  }
  reason[have] = '\0';
  close(pfd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    snprintf(reason, cap, "%s (signal %d: %s)", sig == SIGALRM ? "timed out after 20 s" : "crashed", sig,
             strsignal(sig));
  } else if (reason[0] == '\0') {
    snprintf(reason, cap, "exited with status %d", WEXITSTATUS(status));
  }
  return 1;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int passed = 0, failed = 0;
  double start = now_ms();
  char reason[sizeof g_reason];
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    if (run_isolated(i, reason, sizeof reason) == 0) {
      passed++;
      printf("ok - %s\n", tests[i].name);
    } else {
      failed++;
      printf("FAIL - %s: %s\n", tests[i].name, reason);
    }
  }
  fprintf(stderr, "    (suite took %.0f ms)\n", now_ms() - start);
  printf("%d passed, %d failed\n", passed, failed);
  fflush(stdout);
  return failed == 0 ? 0 : 1;
}
