/* echo_common.h — what the two C echo servers share: listener setup from
 * --tcp/--udp arguments, and a per-connection out queue with short-write handling. */
#ifndef ECHO_COMMON_H
#define ECHO_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  uint8_t *data;
  size_t len, off, cap;
} out_queue;

static inline void out_push(out_queue *q, const uint8_t *p, size_t n) {
  if (q->off == q->len) q->off = q->len = 0;
  if (q->len + n > q->cap) {
    q->cap = (q->len + n) * 2;
    q->data = realloc(q->data, q->cap);
  }
  memcpy(q->data + q->len, p, n);
  q->len += n;
}

/* Sends what it can; 0 when done or blocked, -1 when the socket failed. */
static inline int out_flush(out_queue *q, int fd) {
  while (q->off < q->len) {
    ssize_t w = send(fd, q->data + q->off, q->len - q->off, MSG_NOSIGNAL);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    q->off += (size_t)w;
  }
  return 0;
}

static inline void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static inline int bind_addr(const char *spec, int type, struct sockaddr_in *out) {
  char host[64];
  const char *colon = strrchr(spec, ':');
  if (colon == NULL || (size_t)(colon - spec) >= sizeof host) return -1;
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = 0;
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &out->sin_addr) != 1) return -1;
  int fd = socket(AF_INET, type | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)out, sizeof *out) < 0) return -1;
  if (type == SOCK_STREAM) {
    set_nodelay(fd);
    if (listen(fd, 1024) < 0) return -1;
  }
  socklen_t len = sizeof *out;
  getsockname(fd, (struct sockaddr *)out, &len);
  return fd;
}

/* Parses --tcp/--udp, binds them, prints "ready <tcp host:port|-> <udp host:port|->". */
static inline void open_listeners(int argc, char **argv, int *tfd, int *ufd) {
  struct sockaddr_in t = {0}, u = {0};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--tcp")) *tfd = bind_addr(argv[i + 1], SOCK_STREAM, &t);
    if (!strcmp(argv[i], "--udp")) *ufd = bind_addr(argv[i + 1], SOCK_DGRAM, &u);
  }
  if ((*tfd < 0 && *ufd < 0)) {
    fprintf(stderr, "usage: %s --tcp H:P and/or --udp H:P\n", argv[0]);
    exit(2);
  }
  printf("ready %s:%d %s:%d\n", *tfd >= 0 ? "127.0.0.1" : "-", ntohs(t.sin_port), *ufd >= 0 ? "127.0.0.1" : "-", ntohs(u.sin_port));
  fflush(stdout);
}

#endif
