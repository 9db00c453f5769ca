/* The shell output ring; see ring.h. */
#include <stdlib.h>
#include <string.h>

#include "ring.h"

int ring_init(struct ring *r, size_t size)
{
	/* Large enough that malloc maps it: pages cost memory only once written. */
	r->data = malloc(size);
	r->size = r->data ? size : 0;
	r->end = 0;
	return r->data ? 0 : -1;
}

void ring_free(struct ring *r)
{
	free(r->data);
	*r = (struct ring){0};
}

uint64_t ring_first(const struct ring *r) { return r->end > r->size ? r->end - r->size : 0; }

uint8_t *ring_space(struct ring *r, size_t *room)
{
	size_t at = (size_t)(r->end % r->size);
	*room = r->size - at;
	return r->data + at;
}

void ring_commit(struct ring *r, size_t n) { r->end += n; }

void ring_append(struct ring *r, const uint8_t *p, size_t n)
{
	/* Only the last `size` bytes of a longer append can be kept. */
	if (n > r->size) {
		r->end += n - r->size;
		p += n - r->size;
		n = r->size;
	}
	while (n > 0) {
		size_t room;
		uint8_t *at = ring_space(r, &room);
		size_t k = n < room ? n : room;
		memcpy(at, p, k);
		ring_commit(r, k);
		p += k;
		n -= k;
	}
}

size_t ring_read(const struct ring *r, uint64_t cursor, uint8_t *out, size_t max, uint64_t *start)
{
	uint64_t first = ring_first(r);
	if (cursor < first)
		cursor = first;
	*start = cursor;
	if (cursor >= r->end)
		return 0;
	uint64_t avail = r->end - cursor;
	size_t n = avail < max ? (size_t)avail : max;
	size_t at = (size_t)(cursor % r->size);
	size_t k = n < r->size - at ? n : r->size - at;
	memcpy(out, r->data + at, k);
	memcpy(out + k, r->data, n - k);
	return n;
}
