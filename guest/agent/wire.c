#include "wire.h"

#include <stdlib.h>
#include <string.h>

uint16_t load_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

uint32_t load_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t load_be64(const uint8_t *p) { return ((uint64_t)load_be32(p) << 32) | load_be32(p + 4); }

void store_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void store_be64(uint8_t *p, uint64_t v)
{
	store_be32(p, (uint32_t)(v >> 32));
	store_be32(p + 4, (uint32_t)v);
}

void header_encode(uint8_t out[PYRO_FRAME_HEADER_BYTES], const struct frame_header *h)
{
	store_be16(out, PYRO_FRAME_MAGIC);
	out[2] = h->type;
	out[3] = h->flags;
	store_be32(out + 4, h->stream);
	store_be32(out + 8, h->length);
}

enum header_status header_decode(const uint8_t *buf, struct frame_header *out)
{
	if (load_be16(buf) != PYRO_FRAME_MAGIC)
		return HEADER_BAD_MAGIC;
	out->type = buf[2];
	out->flags = buf[3];
	out->stream = load_be32(buf + 4);
	out->length = load_be32(buf + 8);
	if (out->length > PYRO_MAX_FRAME_PAYLOAD_BYTES)
		return HEADER_TOO_LARGE;
	return HEADER_OK;
}

void parser_init(struct parser *p, uint8_t *buf)
{
	p->buf = buf;
	parser_reset(p);
}

void parser_reset(struct parser *p) { p->start = p->end = 0; }

uint8_t *parser_space(struct parser *p, size_t *room)
{
	/* Keep the unconsumed tail at the front so a maximal frame always fits. */
	if (p->start > 0) {
		memmove(p->buf, p->buf + p->start, p->end - p->start);
		p->end -= p->start;
		p->start = 0;
	}
	*room = PARSER_CAPACITY - p->end;
	return p->buf + p->end;
}

void parser_commit(struct parser *p, size_t n) { p->end += n; }

enum parse_status parser_next(struct parser *p, struct frame_header *h,
			      const uint8_t **payload, const char **why)
{
	size_t avail = p->end - p->start;
	if (avail < PYRO_FRAME_HEADER_BYTES)
		return PARSE_NEED_MORE;
	switch (header_decode(p->buf + p->start, h)) {
	case HEADER_BAD_MAGIC:
		*why = "bad frame magic";
		return PARSE_ERROR;
	case HEADER_TOO_LARGE:
		*why = "frame larger than the maximum";
		return PARSE_ERROR;
	case HEADER_OK:
		break;
	}
	if (avail - PYRO_FRAME_HEADER_BYTES < h->length)
		return PARSE_NEED_MORE;
	*payload = p->buf + p->start + PYRO_FRAME_HEADER_BYTES;
	p->start += PYRO_FRAME_HEADER_BYTES + h->length;
	return PARSE_FRAME;
}

int fields_validate(const uint8_t *p, size_t len)
{
	while (len > 0) {
		if (len < FIELD_HEADER_BYTES)
			return -1;
		uint32_t vlen = load_be32(p + 2);
		if (vlen > len - FIELD_HEADER_BYTES)
			return -1;
		p += FIELD_HEADER_BYTES + vlen;
		len -= FIELD_HEADER_BYTES + vlen;
	}
	return 0;
}

void fields_iter_init(struct field_iter *it, const uint8_t *p, size_t len)
{
	it->p = p;
	it->left = len;
}

int fields_next(struct field_iter *it, uint16_t *key, const uint8_t **val, uint32_t *vlen)
{
	if (it->left < FIELD_HEADER_BYTES)
		return 0;
	*key = load_be16(it->p);
	*vlen = load_be32(it->p + 2);
	if (*vlen > it->left - FIELD_HEADER_BYTES)
		return 0;
	*val = it->p + FIELD_HEADER_BYTES;
	it->p += FIELD_HEADER_BYTES + *vlen;
	it->left -= FIELD_HEADER_BYTES + *vlen;
	return 1;
}

int fields_find(const uint8_t *p, size_t len, uint16_t key, const uint8_t **val, uint32_t *vlen)
{
	struct field_iter it;
	uint16_t k;
	fields_iter_init(&it, p, len);
	while (fields_next(&it, &k, val, vlen))
		if (k == key)
			return 1;
	return 0;
}

int fields_i64(const uint8_t *p, size_t len, uint16_t key, int64_t *out)
{
	const uint8_t *val;
	uint32_t vlen;
	if (!fields_find(p, len, key, &val, &vlen))
		return 0;
	if (vlen != 8)
		return -1;
	*out = (int64_t)load_be64(val);
	return 1;
}

int buf_reserve(struct buf *b, size_t extra)
{
	if (b->cap - b->len >= extra)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra) {
		if (cap > SIZE_MAX / 2)
			return -1;
		cap *= 2;
	}
	uint8_t *data = realloc(b->data, cap);
	if (!data)
		return -1;
	b->data = data;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_clear(struct buf *b) { b->len = 0; }

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int buf_field(struct buf *b, uint16_t key, const void *val, uint32_t vlen)
{
	uint8_t hdr[FIELD_HEADER_BYTES];
	store_be16(hdr, key);
	store_be32(hdr + 2, vlen);
	if (buf_append(b, hdr, sizeof hdr) < 0)
		return -1;
	return buf_append(b, val, vlen);
}

int buf_field_str(struct buf *b, uint16_t key, const char *s)
{
	return buf_field(b, key, s, (uint32_t)strlen(s));
}

int buf_field_i64(struct buf *b, uint16_t key, int64_t v)
{
	uint8_t be[8];
	store_be64(be, (uint64_t)v);
	return buf_field(b, key, be, sizeof be);
}
