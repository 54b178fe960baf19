/* socket.c — address parsing/formatting and socket setup helpers. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ringline.h"

static int parse_port(const char *s, uint16_t *port) {
  if (*s == '\0') return -EINVAL;
  unsigned long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -EINVAL;
    v = v * 10 + (unsigned long)(*p - '0');
    if (v > 65535) return -EINVAL;
  }
  *port = (uint16_t)v;
  return 0;
}

static int32_t parse_unix(const char *path, uint8_t *out, uint32_t cap) {
  struct sockaddr_un un;
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof un.sun_path) return -EINVAL;
  memset(&un, 0, sizeof un);
  un.sun_family = AF_UNIX;
  memcpy(un.sun_path, path, len);
  uint32_t total = (uint32_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  if (cap < total) return -ENOSPC;
  memcpy(out, &un, total);
  return (int32_t)total;
}

int32_t ringline_addr_parse(const char *text, uint8_t *out, uint32_t cap) {
  if (text == NULL || out == NULL) return -EINVAL;
  if (strncmp(text, "unix:", 5) == 0) return parse_unix(text + 5, out, cap);
  char host[64];
  const char *port_str;
  if (text[0] == '[') {
    const char *end = strchr(text, ']');
    if (end == NULL || end[1] != ':' || (size_t)(end - text - 1) >= sizeof host) return -EINVAL;
    memcpy(host, text + 1, (size_t)(end - text - 1));
    host[end - text - 1] = '\0';
    port_str = end + 2;
  } else {
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof host) return -EINVAL;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    port_str = colon + 1;
  }
  uint16_t port;
  if (parse_port(port_str, &port) < 0) return -EINVAL;
  if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");

  struct sockaddr_in in4;
  memset(&in4, 0, sizeof in4);
  if (text[0] != '[' && inet_pton(AF_INET, host, &in4.sin_addr) == 1) {
    if (cap < sizeof in4) return -ENOSPC;
    in4.sin_family = AF_INET;
    in4.sin_port = htons(port);
    memcpy(out, &in4, sizeof in4);
    return (int32_t)sizeof in4;
  }
  struct sockaddr_in6 in6;
  memset(&in6, 0, sizeof in6);
  if (inet_pton(AF_INET6, host, &in6.sin6_addr) == 1) {
    if (cap < sizeof in6) return -ENOSPC;
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    memcpy(out, &in6, sizeof in6);
    return (int32_t)sizeof in6;
  }
  return -EINVAL;
}

int32_t ringline_addr_format(const uint8_t *sa, uint32_t len, char *out, uint32_t cap) {
  if (sa == NULL || out == NULL || cap == 0 || len < sizeof(sa_family_t)) return -EINVAL;
  sa_family_t family;
  memcpy(&family, sa, sizeof family);
  char host[INET6_ADDRSTRLEN];
  int n;
  if (family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    struct sockaddr_in in4;
    memcpy(&in4, sa, sizeof in4);
    inet_ntop(AF_INET, &in4.sin_addr, host, sizeof host);
    n = snprintf(out, cap, "%s:%u", host, ntohs(in4.sin_port));
  } else if (family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 in6;
    memcpy(&in6, sa, sizeof in6);
    inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    n = snprintf(out, cap, "[%s]:%u", host, ntohs(in6.sin6_port));
  } else if (family == AF_UNIX && len <= RINGLINE_SOCKADDR_MAX) {
    /* getsockname reports a full 108-byte path as 111 bytes (with the kernel's NUL). */
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    const size_t ulen = len < sizeof un ? len : sizeof un;
    memcpy(&un, sa, ulen);
    size_t path_len = ulen > offsetof(struct sockaddr_un, sun_path) ? ulen - offsetof(struct sockaddr_un, sun_path) : 0;
    n = snprintf(out, cap, "unix:%.*s", (int)strnlen(un.sun_path, path_len), un.sun_path);
  } else {
    return -EAFNOSUPPORT;
  }
  if (n < 0) return -EINVAL;
  return (uint32_t)n >= cap ? -ENOSPC : n;
}

static int family_of(const uint8_t *sa, uint32_t len) {
  if (sa == NULL || len < sizeof(sa_family_t) || len > RINGLINE_SOCKADDR_MAX) return -EINVAL;
  sa_family_t family;
  memcpy(&family, sa, sizeof family);
  if (family == AF_INET && len >= sizeof(struct sockaddr_in)) return AF_INET;
  if (family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) return AF_INET6;
  if (family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path)) {
    /* Longer than sockaddr_un: bind would refuse it, and unlink_stale_unix must not copy it. */
    return len <= sizeof(struct sockaddr_un) ? AF_UNIX : -EINVAL;
  }
  return -EAFNOSUPPORT;
}

static int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value) < 0 ? -errno : 0;
}

/* A unix socket file nobody listens on is stale; anything else is left alone. */
static void unlink_stale_unix(const uint8_t *sa, uint32_t len) {
  struct sockaddr_un un;
  memset(&un, 0, sizeof un);
  memcpy(&un, sa, len);
  /* A full 108-byte sun_path has no NUL: name the file from a terminated copy. */
  char path[sizeof un.sun_path + 1];
  memcpy(path, un.sun_path, sizeof un.sun_path);
  path[sizeof un.sun_path] = '\0';
  struct stat st;
  if (stat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) return;
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return;
  if (connect(probe, (const struct sockaddr *)&un, len) < 0 && errno == ECONNREFUSED) unlink(path);
  close(probe);
}

static int32_t bound_socket(const uint8_t *sa, uint32_t len, int type, uint32_t flags) {
  int family = family_of(sa, len);
  if (family < 0) return family;
  if (flags & ~(RINGLINE_SOCK_REUSEPORT | RINGLINE_SOCK_UNLINK)) return -EINVAL;
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int rc = 0;
  if (family != AF_UNIX) {
    rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == 0 && (flags & RINGLINE_SOCK_REUSEPORT)) rc = set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    if (rc == 0 && family == AF_INET6) rc = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
  } else if (flags & RINGLINE_SOCK_UNLINK) {
    unlink_stale_unix(sa, len);
  }
  if (rc == 0 && bind(fd, (const struct sockaddr *)sa, len) < 0) rc = -errno;
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}

int32_t ringline_socket_listen(const uint8_t *sa, uint32_t len, uint32_t backlog, uint32_t flags) {
  if (backlog == 0 || backlog > 65535) return -EINVAL;
  int32_t fd = bound_socket(sa, len, SOCK_STREAM, flags);
  if (fd < 0) return fd;
  if (listen(fd, (int)backlog) < 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

int32_t ringline_socket_udp(const uint8_t *sa, uint32_t len, uint32_t flags) {
  return bound_socket(sa, len, SOCK_DGRAM, flags);
}

int32_t ringline_socket_stream(const uint8_t *sa, uint32_t len) {
  int family = family_of(sa, len);
  if (family < 0) return family;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

int32_t ringline_socket_name(int32_t fd, uint32_t peer, uint8_t *out, uint32_t cap) {
  if (fd < 0) return -EBADF;
  if (out == NULL || peer > 1) return -EINVAL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len);
  if (rc < 0) return -errno;
  if (len > cap) return -ENOSPC;
  memcpy(out, &ss, len);
  return (int32_t)len;
}

int32_t ringline_socket_pair(int32_t *fds) {
  if (fds == NULL) return -EINVAL;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
  fds[0] = sv[0];
  fds[1] = sv[1];
  return 0;
}

int32_t ringline_socket_nodelay(int32_t fd, uint32_t on) {
  if (fd < 0) return -EBADF;
  if (on > 1) return -EINVAL;
  return set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, (int)on);
}

int32_t ringline_socket_close(int32_t fd) {
  if (fd < 0) return -EBADF;
  return close(fd) < 0 ? -errno : 0;
}

int32_t ringline_thread_pin(uint32_t cpu) {
  if (cpu >= CPU_SETSIZE) return -EINVAL;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) < 0 ? -errno : 0;
}
