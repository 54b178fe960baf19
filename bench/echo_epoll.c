/*
 * echo_epoll.c — a small epoll echo server (TCP and UDP, one thread): the
 * classic readiness-based baseline. Prints "ready <tcp> <udp>" when listening.
 *
 *   echo_epoll --tcp 127.0.0.1:0 --udp 127.0.0.1:0
 */
#include "echo_common.h"

#include <sys/epoll.h>

typedef struct {
  int fd;
  int peer_done; /* the client shut down its side: close once the echo has drained */
  out_queue out;
} conn;

int main(int argc, char **argv) {
  int tfd = -1, ufd = -1;
  open_listeners(argc, argv, &tfd, &ufd);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  if (tfd >= 0) ev.data.ptr = &tfd, epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
  if (ufd >= 0) ev.data.ptr = &ufd, epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
  static uint8_t buf[65536];
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == &tfd) {
        int cfd;
        while ((cfd = accept4(tfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          set_nodelay(cfd);
          conn *c = calloc(1, sizeof *c);
          c->fd = cfd;
          struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
        }
        continue;
      }
      if (evs[i].data.ptr == &ufd) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        ssize_t r;
        while ((r = recvfrom(ufd, buf, sizeof buf, 0, (struct sockaddr *)&peer, &plen)) >= 0) {
          sendto(ufd, buf, (size_t)r, 0, (struct sockaddr *)&peer, plen);
          plen = sizeof peer;
        }
        continue;
      }
      conn *c = evs[i].data.ptr;
      int dead = 0;
      if (!c->peer_done && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        ssize_t r = recv(c->fd, buf, sizeof buf, 0);
        if (r > 0) out_push(&c->out, buf, (size_t)r);
        else if (r == 0) c->peer_done = 1;
        else if (errno != EAGAIN) dead = 1;
      }
      if (!dead && out_flush(&c->out, c->fd) < 0) dead = 1;
      int queued = c->out.len > c->out.off;
      if (c->peer_done && !queued) dead = 1;
      if (dead) {
        close(c->fd);
        free(c->out.data);
        free(c);
        continue;
      }
      /* Wait for writability only while bytes are queued; after the peer's EOF, only for that. */
      struct epoll_event cev = {.events = (c->peer_done ? 0 : EPOLLIN) | (queued ? EPOLLOUT : 0), .data.ptr = c};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &cev);
    }
  }
}
