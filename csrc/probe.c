/* probe.c — what this kernel's io_uring can do, tested by doing it on
 * throwaway rings and unix sockets (never TCP: a locked-down host may forbid
 * it). Failures come back as values: this decides the backend, so it must not crash. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

static int try_flags(unsigned flags, struct io_uring_params *out) {
  struct io_uring ring;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = flags;
  int rc = io_uring_queue_init_params(4, &ring, &p);
  if (rc == 0) {
    if (out) *out = p;
    io_uring_queue_exit(&ring);
  }
  return rc;
}

/* Waits up to 1 s for one CQE; 0 with its res/flags, or -errno. */
static int wait_one(struct io_uring *ring, int *res, unsigned *flags) {
  struct __kernel_timespec ts = {.tv_sec = 1, .tv_nsec = 0};
  struct io_uring_cqe *cqe = NULL;
  int rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
  if (rc < 0) return rc;
  if (cqe == NULL) return -ETIME;
  *res = cqe->res;
  *flags = cqe->flags;
  io_uring_cqe_seen(ring, cqe);
  return 0;
}

static int is_multishot_ok(int rc, int res, unsigned flags) {
  return rc == 0 && res >= 0 && (flags & IORING_CQE_F_MORE);
}

/* Multishot recv (stream) or recvmsg (datagram) on a socketpair with a 2-buffer ring. */
static int probe_recv(struct io_uring *ring, int type, int use_msg) {
  int sv[2];
  if (socketpair(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) return 0;
  struct msghdr tmpl;
  memset(&tmpl, 0, sizeof tmpl);
  struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
  if (use_msg)
    io_uring_prep_recvmsg_multishot(sqe, sv[0], &tmpl, 0);
  else
    io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  int ok = 0, res = 0;
  unsigned flags = 0;
  if (write(sv[1], "x", 1) == 1) ok = is_multishot_ok(wait_one(ring, &res, &flags), res, flags);
  close(sv[0]);
  close(sv[1]);
  return ok;
}

static int probe_accept(struct io_uring *ring) {
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (lfd < 0) return 0;
  struct sockaddr_un addr;
  socklen_t len = sizeof(sa_family_t);
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  int ok = 0;
  /* A bind with only the family autobinds to a unique abstract name. */
  if (bind(lfd, (struct sockaddr *)&addr, len) == 0 && listen(lfd, 4) == 0) {
    len = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &len);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    int cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cfd >= 0 && connect(cfd, (struct sockaddr *)&addr, len) == 0) {
      int res = -1; /* stays -1 when no CQE came: never close(0) */
      unsigned flags = 0;
      ok = is_multishot_ok(wait_one(ring, &res, &flags), res, flags);
      if (res >= 0) close(res);
    }
    if (cfd >= 0) close(cfd);
  }
  close(lfd);
  return ok;
}

/* Registers a 2-buffer ring as group 0 on `ring` and hands both buffers to it. */
static int register_probe_bufs(struct io_uring *ring, void *br_mem, uint8_t *bufs) {
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)br_mem;
  reg.ring_entries = 2;
  reg.bgid = 0;
  if (io_uring_register_buf_ring(ring, &reg, 0) != 0) return 0;
  struct io_uring_buf_ring *br = br_mem;
  io_uring_buf_ring_init(br);
  for (int i = 0; i < 2; i++)
    io_uring_buf_ring_add(br, bufs + i * 64, 64, (unsigned short)i, io_uring_buf_ring_mask(2), i);
  io_uring_buf_ring_advance(br, 2);
  return 1;
}

/* Multishot recv and recvmsg, each on a fresh ring (exit reaps what stays armed). */
static int32_t probe_buffer_select(void *br_mem, uint8_t *bufs) {
  int32_t feat = 0;
  for (int use_msg = 0; use_msg <= 1; use_msg++) {
    struct io_uring ring;
    if (io_uring_queue_init(8, &ring, 0) < 0) break;
    if (register_probe_bufs(&ring, br_mem, bufs)) {
      feat |= RINGLINE_FEAT_BUF_RING;
      if (probe_recv(&ring, use_msg ? SOCK_DGRAM : SOCK_STREAM, use_msg))
        feat |= use_msg ? RINGLINE_FEAT_RECVMSG_MULTI : RINGLINE_FEAT_RECV_MULTI;
    }
    io_uring_queue_exit(&ring);
  }
  return feat;
}

int32_t ringline_kernel_probe(void) {
  struct io_uring_params p;
  int rc = try_flags(0, &p);
  if (rc < 0) return rc; /* -ENOSYS (no io_uring), -EPERM (seccomp, sysctl) */
  int32_t feat = RINGLINE_FEAT_RING;
  if (p.features & IORING_FEAT_EXT_ARG) feat |= RINGLINE_FEAT_EXT_ARG;
  if (p.features & IORING_FEAT_NODROP) feat |= RINGLINE_FEAT_NODROP;
  if (p.features & IORING_FEAT_CQE_SKIP) feat |= RINGLINE_FEAT_CQE_SKIP;
  if (try_flags(IORING_SETUP_SINGLE_ISSUER, NULL) == 0) feat |= RINGLINE_FEAT_SINGLE_ISSUER;
  if (try_flags(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, NULL) == 0)
    feat |= RINGLINE_FEAT_DEFER_TASKRUN;
  if (try_flags(IORING_SETUP_COOP_TASKRUN, NULL) == 0) feat |= RINGLINE_FEAT_COOP_TASKRUN;

  struct io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) == 0) {
    struct io_uring_probe *ops = io_uring_get_probe_ring(&ring);
    if (ops != NULL) {
      if (io_uring_opcode_supported(ops, IORING_OP_SEND_ZC)) feat |= RINGLINE_FEAT_SEND_ZC;
      io_uring_free_probe(ops);
    }
    if (probe_accept(&ring)) feat |= RINGLINE_FEAT_ACCEPT_MULTI;
    io_uring_queue_exit(&ring);
  }
  void *br_mem = core_map(4096);
  uint8_t *bufs = core_map(2 * 64);
  if (br_mem != NULL && bufs != NULL) feat |= probe_buffer_select(br_mem, bufs);
  core_unmap(br_mem, 4096);
  core_unmap(bufs, 2 * 64);
  return feat;
}
