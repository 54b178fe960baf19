/*
 * loadgen.c — the benchmark load generator (a C client, so the client is not
 * what saturates first). Every echoed byte is verified; a run with any error,
 * mismatch or zero operations prints ok:false and is never reported as a number.
 * One line of JSON per run on stdout.
 *
 *   loadgen tcp-rr        --addr H:P --conns N --size M --seconds S [--rate R]
 *   loadgen firehose      --addr H:P --bytes B --seconds S
 *   loadgen udp-rr        --addr H:P --size M --seconds S
 *   loadgen udp-flood     --addr H:P --senders K --size M --seconds S
 *   loadgen connect-storm --addr H:P --count N --concurrency C
 *   loadgen hold          --addr H:P --conns N --seconds S
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in target;
static long opt_conns = 16, opt_size = 64, opt_rate = 0, opt_senders = 4, opt_count = 1000, opt_conc = 1;
static double opt_seconds = 3;
static long long opt_bytes = 64ll << 20;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void parse_addr(const char *s) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (colon == NULL || (size_t)(colon - s) >= sizeof host) exit(2);
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &target.sin_addr) != 1) {
    fprintf(stderr, "loadgen: --addr wants an IPv4 host:port\n");
    exit(2);
  }
}

static int tcp_connect(int nonblock) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&target, sizeof target) < 0) {
    close(fd);
    return -1;
  }
  if (nonblock) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

static void fill(uint8_t *buf, long n, uint64_t seed) {
  for (long i = 0; i < n; i++) buf[i] = (uint8_t)(seed * 131 + (uint64_t)i * 7);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ── TCP request/response (closed loop, or open loop at --rate) ─────────── */

typedef struct {
  int fd;
  uint64_t seq;
  long got;        /* bytes of the current reply received */
  double sched;    /* open loop: when this request was due */
  int waiting;     /* a request is outstanding */
  uint8_t *expect; /* the current request's bytes */
  uint8_t *inbuf;
} rr_conn;

static int cmd_tcp_rr(void) {
  rr_conn *c = calloc((size_t)opt_conns, sizeof *c);
  int ep = epoll_create1(0);
  long errors = 0;
  for (long i = 0; i < opt_conns; i++) {
    c[i].fd = tcp_connect(1);
    if (c[i].fd < 0) {
      printf("{\"ok\":false,\"error\":\"connect failed: %s\"}\n", strerror(errno));
      return 1;
    }
    c[i].expect = malloc((size_t)opt_size);
    c[i].inbuf = malloc((size_t)opt_size);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
    epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
  }
  size_t lat_cap = 1 << 22, nlat = 0;
  double *lat = opt_rate ? malloc(lat_cap * sizeof *lat) : NULL;
  double interval = opt_rate ? (double)opt_conns / (double)opt_rate : 0; /* per connection */
  double start = now_s(), end = start + opt_seconds;
  long ops = 0;
  for (long i = 0; i < opt_conns; i++) c[i].sched = start + (opt_rate ? interval * (double)i / (double)opt_conns : 0);
  struct epoll_event evs[256];
  for (;;) {
    double t = now_s();
    if (t >= end) break;
    for (long i = 0; i < opt_conns; i++) {
      if (c[i].waiting || t < c[i].sched) continue;
      fill(c[i].expect, opt_size, c[i].seq);
      ssize_t w = send(c[i].fd, c[i].expect, (size_t)opt_size, MSG_NOSIGNAL);
      if (w != opt_size) errors++; /* small requests never block on loopback */
      c[i].waiting = 1;
      c[i].got = 0;
    }
    /* Closed loop waits for replies; open loop wakes in time for the next due send. */
    double next = end;
    if (opt_rate)
      for (long i = 0; i < opt_conns; i++)
        if (!c[i].waiting && c[i].sched < next) next = c[i].sched;
    double wait = next - now_s();
    if (wait > 0.001) wait = 0.001;
    if (wait < 0) wait = 0;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(wait * 1e9)};
    int n = epoll_pwait2(ep, evs, 256, &ts, NULL);
    t = now_s();
    for (int k = 0; k < n; k++) {
      rr_conn *x = &c[evs[k].data.u64];
      ssize_t r = recv(x->fd, x->inbuf + x->got, (size_t)(opt_size - x->got), 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        errors++;
        goto done;
      }
      x->got += r;
      if (x->got < opt_size) continue;
      if (!x->waiting || memcmp(x->inbuf, x->expect, (size_t)opt_size) != 0) errors++;
      if (opt_rate && nlat < lat_cap) lat[nlat++] = (t - x->sched) * 1e6;
      x->waiting = 0;
      x->seq++;
      x->sched = opt_rate ? x->sched + interval : t;
      ops++;
    }
  }
done:;
  double secs = now_s() - start;
  for (long i = 0; i < opt_conns; i++) close(c[i].fd);
  printf("{\"ok\":%s,\"ops\":%ld,\"seconds\":%.3f,\"errors\":%ld", errors == 0 && ops > 0 ? "true" : "false", ops, secs, errors);
  if (opt_rate && nlat > 0) {
    qsort(lat, nlat, sizeof *lat, cmp_double);
    printf(",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f", lat[nlat / 2], lat[(size_t)(nlat * 0.99)], lat[(size_t)(nlat * 0.999)]);
  }
  printf("}\n");
  return 0;
}

/* ── firehose: write B bytes while reading the echo back, on a fresh ──────
 *    connection each time, until S seconds have passed (one 64 MiB transfer is
 *    ~70 ms: repeating it makes the cell as long, and as steady, as the others) */

static int fh_fd;
static void *fh_writer(void *arg) {
  (void)arg;
  uint8_t buf[65536];
  for (long long sent = 0; sent < opt_bytes;) {
    long n = opt_bytes - sent < (long long)sizeof buf ? (long)(opt_bytes - sent) : (long)sizeof buf;
    for (long i = 0; i < n; i++) buf[i] = (uint8_t)((sent + i) * 7 + 3);
    ssize_t w = send(fh_fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w <= 0) return (void *)1;
    sent += w;
  }
  shutdown(fh_fd, SHUT_WR);
  return NULL;
}

/* One transfer: every byte echoed back and checked. Returns the bytes received; counts mismatches in *errors. */
static long long fh_transfer(long long *errors) {
  fh_fd = tcp_connect(0);
  if (fh_fd < 0) {
    (*errors)++;
    return 0;
  }
  pthread_t w;
  pthread_create(&w, NULL, fh_writer, NULL);
  uint8_t buf[65536];
  long long got = 0;
  while (got < opt_bytes) {
    ssize_t r = recv(fh_fd, buf, sizeof buf, 0);
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] != (uint8_t)((got + i) * 7 + 3)) (*errors)++;
    got += r;
  }
  void *werr;
  pthread_join(w, &werr);
  close(fh_fd);
  if (got != opt_bytes || werr != NULL) (*errors)++;
  return got;
}

static int cmd_firehose(void) {
  double start = now_s(), end = start + opt_seconds;
  long long got = 0, errors = 0;
  long transfers = 0;
  do {
    got += fh_transfer(&errors);
    transfers++;
  } while (errors == 0 && now_s() < end);
  double secs = now_s() - start;
  printf("{\"ok\":%s,\"ops\":%lld,\"bytes\":%lld,\"transfers\":%ld,\"seconds\":%.3f,\"errors\":%lld,\"mb_per_s\":%.1f}\n",
         errors == 0 && got > 0 ? "true" : "false", got / 65536, got, transfers, secs, errors, got / 1e6 / secs);
  return 0;
}

/* ── UDP ────────────────────────────────────────────────────────────────── */

static int udp_socket(int nonblock) {
  int fd = socket(AF_INET, SOCK_DGRAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
  struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static int cmd_udp_rr(void) {
  int fd = udp_socket(0);
  uint8_t *req = malloc((size_t)opt_size), *rep = malloc((size_t)opt_size + 64);
  long ops = 0, errors = 0;
  double start = now_s(), end = start + opt_seconds;
  while (now_s() < end) {
    fill(req, opt_size, (uint64_t)ops);
    sendto(fd, req, (size_t)opt_size, 0, (struct sockaddr *)&target, sizeof target);
    ssize_t r = recv(fd, rep, (size_t)opt_size + 64, 0);
    if (r != opt_size || memcmp(req, rep, (size_t)opt_size) != 0) {
      errors++;
      break;
    }
    ops++;
  }
  double secs = now_s() - start;
  printf("{\"ok\":%s,\"ops\":%ld,\"seconds\":%.3f,\"errors\":%ld}\n", errors == 0 && ops > 0 ? "true" : "false", ops, secs, errors);
  return 0;
}

/* Senders blast datagrams; ops are the echoes that come back (loss is UDP's right, but counted). */
static int cmd_udp_flood(void) {
  int *fds = calloc((size_t)opt_senders, sizeof *fds);
  struct pollfd *pfd = calloc((size_t)opt_senders, sizeof *pfd);
  for (long i = 0; i < opt_senders; i++) {
    fds[i] = udp_socket(1);
    pfd[i].fd = fds[i];
    pfd[i].events = POLLIN;
  }
  uint8_t *buf = malloc((size_t)opt_size + 64);
  fill(buf, opt_size, 42);
  long sent = 0, received = 0, written_off = 0, errors = 0;
  uint8_t *in = malloc((size_t)opt_size + 64);
  double start = now_s(), end = start + opt_seconds;
  /* A bounded window in flight per sender, so the server, not the socket buffers, is the limit. */
  const long window = 64 * opt_senders;
  while (now_s() < end) {
    for (long i = 0; i < opt_senders && sent - received - written_off < window; i++)
      for (int burst = 0; burst < 16 && sent - received - written_off < window; burst++) {
        if (sendto(fds[i], buf, (size_t)opt_size, 0, (struct sockaddr *)&target, sizeof target) < 0) break;
        sent++;
      }
    if (poll(pfd, (nfds_t)opt_senders, 1) <= 0) {
      written_off = sent - received; /* nothing came back for 1 ms: count the window as lost */
      continue;
    }
    for (long i = 0; i < opt_senders; i++) {
      ssize_t r;
      while ((r = recv(fds[i], in, (size_t)opt_size + 64, 0)) > 0) {
        if (r != opt_size || memcmp(in, buf, (size_t)opt_size) != 0) errors++;
        received++;
      }
    }
  }
  double secs = now_s() - start;
  printf("{\"ok\":%s,\"ops\":%ld,\"sent\":%ld,\"seconds\":%.3f,\"errors\":%ld}\n", errors == 0 && received > 0 ? "true" : "false",
         received, sent, secs, errors);
  return 0;
}

/* ── connect storm ──────────────────────────────────────────────────────── */

static long storm_each;
static void *storm_worker(void *arg) {
  long *errors = arg;
  for (long i = 0; i < storm_each; i++) {
    int fd = tcp_connect(0);
    uint8_t b = (uint8_t)i, r = 0;
    if (fd < 0 || send(fd, &b, 1, MSG_NOSIGNAL) != 1 || recv(fd, &r, 1, 0) != 1 || r != b) (*errors)++;
    if (fd >= 0) close(fd);
  }
  return NULL;
}

static int cmd_connect_storm(void) {
  pthread_t *t = calloc((size_t)opt_conc, sizeof *t);
  long *errs = calloc((size_t)opt_conc, sizeof *errs);
  storm_each = opt_count / opt_conc;
  double start = now_s();
  for (long i = 0; i < opt_conc; i++) pthread_create(&t[i], NULL, storm_worker, &errs[i]);
  long errors = 0;
  for (long i = 0; i < opt_conc; i++) {
    pthread_join(t[i], NULL);
    errors += errs[i];
  }
  double secs = now_s() - start;
  long ops = storm_each * opt_conc;
  printf("{\"ok\":%s,\"ops\":%ld,\"seconds\":%.3f,\"errors\":%ld}\n", errors == 0 && ops > 0 ? "true" : "false", ops, secs, errors);
  return 0;
}

/* ── hold N idle connections (for RSS per connection) ───────────────────── */

static int cmd_hold(void) {
  long opened = 0;
  int *fds = calloc((size_t)opt_conns, sizeof *fds);
  for (long i = 0; i < opt_conns; i++) {
    fds[i] = tcp_connect(0);
    if (fds[i] >= 0) opened++;
  }
  printf("{\"ok\":%s,\"ops\":%ld,\"seconds\":%.3f,\"errors\":%ld}\n", opened == opt_conns ? "true" : "false", opened, opt_seconds,
         opt_conns - opened);
  fflush(stdout);
  usleep((useconds_t)(opt_seconds * 1e6));
  for (long i = 0; i < opt_conns; i++)
    if (fds[i] >= 0) close(fds[i]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: loadgen <tcp-rr|firehose|udp-rr|udp-flood|connect-storm|hold> --addr H:P [options]\n");
    return 2;
  }
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--addr")) parse_addr(v);
    else if (!strcmp(k, "--conns")) opt_conns = atol(v);
    else if (!strcmp(k, "--size")) opt_size = atol(v);
    else if (!strcmp(k, "--seconds")) opt_seconds = atof(v);
    else if (!strcmp(k, "--rate")) opt_rate = atol(v);
    else if (!strcmp(k, "--bytes")) opt_bytes = atoll(v);
    else if (!strcmp(k, "--senders")) opt_senders = atol(v);
    else if (!strcmp(k, "--count")) opt_count = atol(v);
    else if (!strcmp(k, "--concurrency")) opt_conc = atol(v);
    else {
      fprintf(stderr, "loadgen: unknown option %s\n", k);
      return 2;
    }
  }
  if (opt_conns < 1 || opt_size < 1 || opt_conc < 1 || opt_senders < 1) return 2;
  const char *cmd = argv[1];
  if (!strcmp(cmd, "tcp-rr")) return cmd_tcp_rr();
  if (!strcmp(cmd, "firehose")) return cmd_firehose();
  if (!strcmp(cmd, "udp-rr")) return cmd_udp_rr();
  if (!strcmp(cmd, "udp-flood")) return cmd_udp_flood();
  if (!strcmp(cmd, "connect-storm")) return cmd_connect_storm();
  if (!strcmp(cmd, "hold")) return cmd_hold();
  fprintf(stderr, "loadgen: unknown command %s\n", cmd);
  return 2;
}
