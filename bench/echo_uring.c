/*
 * echo_uring.c — a small single-threaded io_uring echo server: the practical
 * limit the benchmark compares ringline against. Multishot accept, multishot
 * recv/recvmsg into provided-buffer rings (registered by hand: liburing 2.3 has
 * no io_uring_setup_buf_ring), DEFER_TASKRUN|SINGLE_ISSUER, one send in flight
 * per connection with the rest queued behind it. Prints "ready <tcp> <udp>".
 *
 *   echo_uring --tcp 127.0.0.1:0 --udp 127.0.0.1:0 [--wait-timeout-us N] [--busy-ns N]
 *
 * --wait-timeout-us bounds every wait with a kernel timeout, as a runtime that
 * must return to its own event loop would: the bench row "C io_uring, timed
 * waits" measures what arming that timer per wait costs.
 * --busy-ns spins N ns of user time per completion: what a given amount of
 * user-space work per operation costs in CPU per op, kernel time included
 * (bench/pair.ts against the server "C io_uring, 2 µs busy per completion").
 */
#include "echo_common.h"

#include <liburing.h>
#include <sys/mman.h>
#include <time.h>

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_UDP_RECV, OP_UDP_SEND };
#define TCP_BGID 0
#define UDP_BGID 1
#define BUFS 1024
#define BUF_SIZE 16384
#define UDP_SLOTS 256
#define MAX_FDS 65536

typedef struct {
  out_queue inflight, pending; /* the kernel reads `inflight` until its send completes */
  int sending;
  int eof; /* the peer finished: close once everything queued is sent */
} conn;

static struct io_uring ring;
static conn *conns[MAX_FDS];
static struct io_uring_buf_ring *br[2];
static uint8_t *bufs[2];

static struct io_uring_sqe *sqe_for(int op, uint32_t fd) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
  if (sqe == NULL) {
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  io_uring_sqe_set_data64(sqe, ((uint64_t)op << 32) | fd);
  return sqe;
}

static void setup_bufs(int bgid) {
  size_t ring_bytes = BUFS * sizeof(struct io_uring_buf);
  br[bgid] = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  bufs[bgid] = mmap(NULL, (size_t)BUFS * BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)br[bgid], .ring_entries = BUFS, .bgid = (uint16_t)bgid};
  if (io_uring_register_buf_ring(&ring, &reg, 0) < 0) exit(1);
  io_uring_buf_ring_init(br[bgid]);
  for (int i = 0; i < BUFS; i++)
    io_uring_buf_ring_add(br[bgid], bufs[bgid] + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i, io_uring_buf_ring_mask(BUFS), i);
  io_uring_buf_ring_advance(br[bgid], BUFS);
}

static void recycle(int bgid, int bid) {
  io_uring_buf_ring_add(br[bgid], bufs[bgid] + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid, io_uring_buf_ring_mask(BUFS), 0);
  io_uring_buf_ring_advance(br[bgid], 1);
}

static void arm_recv(int fd) {
  struct io_uring_sqe *sqe = sqe_for(OP_RECV, (uint32_t)fd);
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = TCP_BGID;
}

static void start_send(int fd, conn *c) {
  if (c->sending || c->pending.len == c->pending.off) return;
  out_queue t = c->inflight; /* swap: queued bytes go in flight, the drained buffer takes new ones */
  c->inflight = c->pending;
  c->pending = t;
  c->pending.len = c->pending.off = 0;
  c->sending = 1;
  io_uring_prep_send(sqe_for(OP_SEND, (uint32_t)fd), fd, c->inflight.data + c->inflight.off, c->inflight.len - c->inflight.off, MSG_NOSIGNAL);
}

static void close_conn(int fd) {
  conn *c = conns[fd];
  if (c == NULL) return;
  conns[fd] = NULL;
  free(c->inflight.data);
  free(c->pending.data);
  free(c);
  close(fd);
}

/* UDP: a reply holds one slot (payload + sender + msghdr) until its sendmsg completes. */
typedef struct {
  struct msghdr msg;
  struct iovec iov;
  struct sockaddr_storage peer;
  uint8_t data[BUF_SIZE];
} udp_slot;
static udp_slot slots[UDP_SLOTS];
static int free_slots[UDP_SLOTS], nfree;
static struct msghdr recvmsg_tmpl = {.msg_namelen = sizeof(struct sockaddr_storage)};

static void arm_udp(int ufd) {
  struct io_uring_sqe *sqe = sqe_for(OP_UDP_RECV, (uint32_t)ufd);
  io_uring_prep_recvmsg_multishot(sqe, ufd, &recvmsg_tmpl, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = UDP_BGID;
}

static void udp_echo(int ufd, int bid, int res) {
  struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(bufs[UDP_BGID] + (size_t)bid * BUF_SIZE, res, &recvmsg_tmpl);
  if (o == NULL || nfree == 0) return; /* no slot free: the datagram is dropped, as UDP may */
  udp_slot *s = &slots[free_slots[--nfree]];
  size_t n = io_uring_recvmsg_payload_length(o, res, &recvmsg_tmpl);
  memcpy(s->data, io_uring_recvmsg_payload(o, &recvmsg_tmpl), n);
  memcpy(&s->peer, io_uring_recvmsg_name(o), o->namelen);
  s->iov = (struct iovec){.iov_base = s->data, .iov_len = n};
  s->msg = (struct msghdr){.msg_name = &s->peer, .msg_namelen = o->namelen, .msg_iov = &s->iov, .msg_iovlen = 1};
  io_uring_prep_sendmsg(sqe_for(OP_UDP_SEND, (uint32_t)(s - slots)), ufd, &s->msg, 0);
}

/* Spins for ns nanoseconds of (user) time. */
static void busy_wait(long ns) {
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  do clock_gettime(CLOCK_MONOTONIC, &now);
  while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < ns);
}

int main(int argc, char **argv) {
  int tfd = -1, ufd = -1;
  long wait_timeout_us = 0, busy_ns = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--wait-timeout-us")) wait_timeout_us = atol(argv[i + 1]);
    if (!strcmp(argv[i], "--busy-ns")) busy_ns = atol(argv[i + 1]);
  }
  struct __kernel_timespec wait_bound = {.tv_sec = wait_timeout_us / 1000000, .tv_nsec = wait_timeout_us % 1000000 * 1000};
  struct io_uring_params p = {.flags = IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQSIZE, .cq_entries = 8192};
  if (io_uring_queue_init_params(2048, &ring, &p) < 0) return 1;
  setup_bufs(TCP_BGID);
  setup_bufs(UDP_BGID);
  for (int i = 0; i < UDP_SLOTS; i++) free_slots[nfree++] = i;
  open_listeners(argc, argv, &tfd, &ufd);
  if (tfd >= 0) io_uring_prep_multishot_accept(sqe_for(OP_ACCEPT, (uint32_t)tfd), tfd, NULL, NULL, SOCK_NONBLOCK);
  if (ufd >= 0) arm_udp(ufd);
  for (;;) {
    struct io_uring_cqe *cqe;
    if (wait_timeout_us > 0) io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wait_bound, NULL);
    else io_uring_submit_and_wait(&ring, 1);
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      seen++;
      if (busy_ns > 0) busy_wait(busy_ns);
      int op = (int)(cqe->user_data >> 32);
      int fd = (int)(uint32_t)cqe->user_data;
      int res = cqe->res;
      int more = cqe->flags & IORING_CQE_F_MORE;
      int bid = (cqe->flags & IORING_CQE_F_BUFFER) ? (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) : -1;
      switch (op) {
      case OP_ACCEPT:
        if (res >= 0 && res < MAX_FDS) {
          set_nodelay(res);
          conns[res] = calloc(1, sizeof(conn));
          arm_recv(res);
        }
        if (!more) io_uring_prep_multishot_accept(sqe_for(OP_ACCEPT, (uint32_t)tfd), tfd, NULL, NULL, SOCK_NONBLOCK);
        break;
      case OP_RECV:
        if (bid >= 0) {
          if (res > 0 && conns[fd]) out_push(&conns[fd]->pending, bufs[TCP_BGID] + (size_t)bid * BUF_SIZE, (size_t)res);
          recycle(TCP_BGID, bid);
        }
        if (conns[fd] == NULL) break;
        if (res > 0) start_send(fd, conns[fd]);
        if (!more) {
          if (res == 0 || (res < 0 && res != -ENOBUFS)) {
            conns[fd]->eof = 1;
            if (!conns[fd]->sending) close_conn(fd);
          } else {
            arm_recv(fd);
          }
        }
        break;
      case OP_SEND:
        if (conns[fd] == NULL) break;
        conns[fd]->sending = 0;
        if (res < 0) {
          close_conn(fd);
          break;
        }
        conns[fd]->inflight.off += (size_t)res;
        if (conns[fd]->inflight.off < conns[fd]->inflight.len) { /* short send: the rest goes first */
          out_queue *q = &conns[fd]->inflight;
          conns[fd]->sending = 1;
          io_uring_prep_send(sqe_for(OP_SEND, (uint32_t)fd), fd, q->data + q->off, q->len - q->off, MSG_NOSIGNAL);
        } else {
          start_send(fd, conns[fd]);
          if (!conns[fd]->sending && conns[fd]->eof) close_conn(fd);
        }
        break;
      case OP_UDP_RECV:
        if (bid >= 0) {
          udp_echo(ufd, bid, res);
          recycle(UDP_BGID, bid);
        }
        if (!more) arm_udp(ufd);
        break;
      case OP_UDP_SEND:
        free_slots[nfree++] = fd;
        break;
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
}
