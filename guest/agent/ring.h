/*
 * ring.h: an append-only byte log that keeps only its newest bytes. Positions
 * are absolute cursors (bytes appended since the start), so a reader that
 * fell behind learns how much it missed. Pure: no I/O, natively tested
 * (guest/test/ring_test.c).
 */
#ifndef PYRO_RING_H
#define PYRO_RING_H

#include <stddef.h>
#include <stdint.h>

struct ring {
	uint8_t *data; /* `size` bytes */
	size_t size;
	uint64_t end; /* bytes ever appended: the cursor of the next one */
};

/* 0, or -1 if the memory could not be had. */
int ring_init(struct ring *r, size_t size);
void ring_free(struct ring *r);
/* The oldest cursor still held. */
uint64_t ring_first(const struct ring *r);
/* Where the next append may write in one piece, and how much room that is (never 0). */
uint8_t *ring_space(struct ring *r, size_t *room);
/* `n` bytes were written at ring_space(). */
void ring_commit(struct ring *r, size_t n);
void ring_append(struct ring *r, const uint8_t *p, size_t n);
/*
 * Copy up to `max` bytes from `cursor` (moved up to ring_first() if older) into
 * `out`; returns how many, and sets *start to where they begin. `cursor` past
 * ring.end copies nothing.
 */
size_t ring_read(const struct ring *r, uint64_t cursor, uint8_t *out, size_t max, uint64_t *start);

#endif
