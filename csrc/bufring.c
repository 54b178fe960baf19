/* bufring.c — provided-buffer rings, mapped and registered by hand
 * (liburing 2.3 has no io_uring_setup_buf_ring). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

bufring *core_find_bufring(ringline_ring *ring, uint32_t bgid) {
  for (uint32_t i = 0; i < RINGLINE_MAX_BUFRINGS; i++)
    if (ring->bufrings[i].used && ring->bufrings[i].bgid == bgid) return &ring->bufrings[i];
  return NULL;
}

static void bufring_free(ringline_ring *ring, bufring *b, int registered) {
  if (registered) io_uring_unregister_buf_ring(&ring->uring, (int)b->bgid);
  core_unmap(b->br, b->br_bytes);
  if (!b->bufs_in_slab) core_unmap(b->bufs, b->bufs_bytes);
  free(b->returns);
  memset(b, 0, sizeof *b);
}

void core_bufrings_free(ringline_ring *ring) {
  for (uint32_t i = 0; i < RINGLINE_MAX_BUFRINGS; i++)
    if (ring->bufrings[i].used) bufring_free(ring, &ring->bufrings[i], ring->uring_ready);
}

int32_t ringline_bufring_create(ringline_ring *ring, uint32_t bgid, uint32_t entries, uint32_t buf_size,
                                uint32_t slab_offset) {
  if (ring == NULL || bgid > 0xFFFFu || !core_is_pow2(entries) || entries > RINGLINE_MAX_BUF_ENTRIES ||
      buf_size == 0 || buf_size > RINGLINE_MAX_BUF_SIZE)
    return -EINVAL;
  const size_t bufs_bytes = (size_t)entries * buf_size;
  const int in_slab = slab_offset != RINGLINE_BUF_OWN_MEMORY;
  if (in_slab && (slab_offset > ring->slab_bytes || bufs_bytes > ring->slab_bytes - slab_offset)) return -EINVAL;
  if (core_find_bufring(ring, bgid) != NULL) return -EEXIST;
  bufring *b = NULL;
  for (uint32_t i = 0; i < RINGLINE_MAX_BUFRINGS && b == NULL; i++)
    if (!ring->bufrings[i].used) b = &ring->bufrings[i];
  if (b == NULL) return -ENOSPC;

  b->used = 1;
  b->bgid = bgid;
  b->entries = entries;
  b->buf_size = buf_size;
  b->br_bytes = (size_t)entries * sizeof(struct io_uring_buf);
  b->bufs_bytes = bufs_bytes;
  b->bufs_in_slab = in_slab;
  b->br = core_map(b->br_bytes);
  b->bufs = in_slab ? ring->slab + slab_offset : core_map(b->bufs_bytes);
  b->returns = calloc(entries, sizeof *b->returns);
  if (b->br == NULL || b->bufs == NULL || b->returns == NULL) {
    bufring_free(ring, b, 0);
    return -ENOMEM;
  }
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uint64_t)(uintptr_t)b->br;
  reg.ring_entries = entries;
  reg.bgid = (uint16_t)bgid;
  int rc = io_uring_register_buf_ring(&ring->uring, &reg, 0);
  if (rc < 0) {
    bufring_free(ring, b, 0);
    return rc;
  }
  io_uring_buf_ring_init(b->br);
  const int mask = io_uring_buf_ring_mask(entries);
  for (uint32_t i = 0; i < entries; i++)
    io_uring_buf_ring_add(b->br, b->bufs + (size_t)i * buf_size, buf_size, (unsigned short)i, mask, (int)i);
  io_uring_buf_ring_advance(b->br, (int)entries);
  return 0;
}

uint8_t *ringline_bufring_base(ringline_ring *ring, uint32_t bgid) {
  bufring *b = ring ? core_find_bufring(ring, bgid) : NULL;
  return b ? b->bufs : NULL;
}

uint16_t *ringline_bufring_returns(ringline_ring *ring, uint32_t bgid) {
  bufring *b = ring ? core_find_bufring(ring, bgid) : NULL;
  return b ? b->returns : NULL;
}

int32_t ringline_bufring_recycle(ringline_ring *ring, uint32_t bgid, uint32_t n) {
  bufring *b = ring ? core_find_bufring(ring, bgid) : NULL;
  if (b == NULL || n > b->entries) return -EINVAL;
  for (uint32_t i = 0; i < n; i++)
    if (b->returns[i] >= b->entries) return -EINVAL;
  const int mask = io_uring_buf_ring_mask(b->entries);
  for (uint32_t i = 0; i < n; i++) {
    uint16_t id = b->returns[i];
    io_uring_buf_ring_add(b->br, b->bufs + (size_t)id * b->buf_size, b->buf_size, id, mask, (int)i);
  }
  io_uring_buf_ring_advance(b->br, (int)n);
  return (int32_t)n;
}

int32_t ringline_bufring_destroy(ringline_ring *ring, uint32_t bgid) {
  bufring *b = ring ? core_find_bufring(ring, bgid) : NULL;
  if (b == NULL) return -EINVAL;
  bufring_free(ring, b, 1);
  return 0;
}
