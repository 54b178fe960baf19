/* submit.c — turns the caller's op records into SQEs, validating all first. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

static int slab_range_ok(const ringline_ring *ring, uint32_t off, uint32_t len) {
  return off <= ring->slab_bytes && len <= ring->slab_bytes - off;
}

static int validate_msg(const ringline_ring *ring, uint32_t slot, int need_name) {
  if (slot >= ring->msg_slots) return -EINVAL;
  const ringline_msg_desc *d = &ring->msgs[slot];
  if (d->iov_count > RINGLINE_MSG_MAX_IOV || d->name_len > RINGLINE_SOCKADDR_MAX) return -EINVAL;
  if (need_name && d->name_len == 0) return -EINVAL;
  for (uint32_t i = 0; i < d->iov_count; i++)
    if (!slab_range_ok(ring, d->iov[i][0], d->iov[i][1])) return -EINVAL;
  return 0;
}

static int validate_op(const ringline_ring *ring, const ringline_op *op) {
  if (op->kind > RINGLINE_KIND_USER_MAX || op->slot > RINGLINE_SLOT_MAX) return -EINVAL;
  switch (op->opcode) {
  case RINGLINE_OP_NOP:
    return 0;
  case RINGLINE_OP_TIMEOUT:
    return op->a < ring->timer_slots ? 0 : -EINVAL;
  case RINGLINE_OP_TIMEOUT_ABS:
    return op->a < ring->timer_slots && op->c < 1000000000u ? 0 : -EINVAL;
  case RINGLINE_OP_CANCEL:
    return op->a <= 0xFFu && op->b <= RINGLINE_SLOT_MAX ? 0 : -EINVAL;
  default:
    break;
  }
  /* Every other opcode names a descriptor. */
  if (op->opcode >= RINGLINE_OP_COUNT) return -EINVAL;
  if (op->fd < 0) return -EBADF;
  switch (op->opcode) {
  case RINGLINE_OP_RECV_MULTI:
  case RINGLINE_OP_RECVMSG_MULTI:
    return core_find_bufring((ringline_ring *)ring, op->a) ? 0 : -EINVAL;
  case RINGLINE_OP_SEND:
  case RINGLINE_OP_SEND_ZC:
    return ring->slab != NULL && slab_range_ok(ring, op->a, op->b) ? 0 : -EINVAL;
  case RINGLINE_OP_SENDMSG:
    return validate_msg(ring, op->a, 0);
  case RINGLINE_OP_CONNECT:
    return validate_msg(ring, op->a, 1);
  case RINGLINE_OP_SHUTDOWN:
    return op->a <= SHUT_RDWR ? 0 : -EINVAL;
  case RINGLINE_OP_CLOSE:
    return op->a <= RINGLINE_CLOSE_QUIET ? 0 : -EINVAL;
  default:
    return 0;
  }
}

static struct msghdr *build_msg(ringline_ring *ring, uint32_t slot) {
  const ringline_msg_desc *d = &ring->msgs[slot];
  msg_native *m = &ring->msgs_native[slot];
  memset(&m->hdr, 0, sizeof m->hdr);
  for (uint32_t i = 0; i < d->iov_count; i++) {
    m->iov[i].iov_base = ring->slab + d->iov[i][0];
    m->iov[i].iov_len = d->iov[i][1];
  }
  m->hdr.msg_iov = m->iov;
  m->hdr.msg_iovlen = d->iov_count;
  if (d->name_len) {
    memcpy(&m->name, d->name, d->name_len);
    m->hdr.msg_name = &m->name;
    m->hdr.msg_namelen = d->name_len;
  }
  return &m->hdr;
}

static void prep_op(ringline_ring *ring, struct io_uring_sqe *sqe, const ringline_op *op) {
  const int fd = op->fd;
  switch (op->opcode) {
  case RINGLINE_OP_NOP:
    io_uring_prep_nop(sqe);
    break;
  case RINGLINE_OP_ACCEPT_MULTI:
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    break;
  case RINGLINE_OP_RECV_MULTI:
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = (uint16_t)op->a;
    break;
  case RINGLINE_OP_RECVMSG_MULTI:
    io_uring_prep_recvmsg_multishot(sqe, fd, &ring->recvmsg_template, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = (uint16_t)op->a;
    break;
  case RINGLINE_OP_SEND:
    io_uring_prep_send(sqe, fd, ring->slab + op->a, op->b, (int)(op->c | MSG_NOSIGNAL));
    break;
  case RINGLINE_OP_SENDMSG:
    io_uring_prep_sendmsg(sqe, fd, build_msg(ring, op->a), op->c | MSG_NOSIGNAL);
    break;
  case RINGLINE_OP_SEND_ZC:
    io_uring_prep_send_zc(sqe, fd, ring->slab + op->a, op->b, MSG_NOSIGNAL, 0);
    break;
  case RINGLINE_OP_POLL_ADD:
    io_uring_prep_poll_add(sqe, fd, op->a);
    break;
  case RINGLINE_OP_CONNECT: {
    struct msghdr *m = build_msg(ring, op->a);
    io_uring_prep_connect(sqe, fd, m->msg_name, m->msg_namelen);
    break;
  }
  case RINGLINE_OP_SHUTDOWN:
    io_uring_prep_shutdown(sqe, fd, (int)op->a);
    break;
  case RINGLINE_OP_CLOSE:
    io_uring_prep_close(sqe, fd);
    if (op->a == RINGLINE_CLOSE_QUIET && (ring->uring.features & IORING_FEAT_CQE_SKIP))
      sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    break;
  case RINGLINE_OP_TIMEOUT: {
    struct __kernel_timespec *ts = &ring->timers[op->a];
    ts->tv_sec = op->b / 1000u;
    ts->tv_nsec = (long long)(op->b % 1000u) * 1000000;
    io_uring_prep_timeout(sqe, ts, 0, 0);
    break;
  }
  case RINGLINE_OP_TIMEOUT_ABS: {
    struct __kernel_timespec *ts = &ring->timers[op->a];
    ts->tv_sec = op->b;
    ts->tv_nsec = op->c;
    io_uring_prep_timeout(sqe, ts, 0, IORING_TIMEOUT_ABS);
    break;
  }
  case RINGLINE_OP_CANCEL:
    io_uring_prep_cancel64(sqe, core_user_data(op->a, op->b, op->c), 0);
    break;
  case RINGLINE_OP_CANCEL_FD:
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    break;
  default:
    break; /* unreachable: validate_op rejected it */
  }
  io_uring_sqe_set_data64(sqe, core_user_data(op->kind, op->slot, op->gen));
}

int32_t ringline_ring_prepare(ringline_ring *ring, uint32_t n) {
  if (ring == NULL || n > ring->max_ops) return -EINVAL;
  for (uint32_t i = 0; i < n; i++) {
    int rc = validate_op(ring, &ring->ops[i]);
    if (rc < 0) return rc;
  }
  for (uint32_t i = 0; i < n; i++) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->uring);
    if (sqe == NULL) { /* SQ full: hand the kernel what is queued, then go on */
      int rc = io_uring_submit(&ring->uring);
      /* ops [0, i) are SQEs already (queued or submitted): they count as taken */
      if (rc < 0 && rc != -EBUSY) return i > 0 ? (int32_t)i : rc;
      sqe = io_uring_get_sqe(&ring->uring);
      if (sqe == NULL) return (int32_t)i; /* the caller keeps ops [i, n) for later */
    }
    prep_op(ring, sqe, &ring->ops[i]);
  }
  return (int32_t)n;
}
