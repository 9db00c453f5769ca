/* Pure encode/decode of frames and fields (protocol.h). No I/O, no globals. */
#ifndef PYRO_WIRE_H
#define PYRO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

struct frame_header {
	uint8_t type;
	uint8_t flags;
	uint32_t stream;
	uint32_t length;
};

enum header_status { HEADER_OK = 0, HEADER_BAD_MAGIC = -1, HEADER_TOO_LARGE = -2 };

void header_encode(uint8_t out[PYRO_FRAME_HEADER_BYTES], const struct frame_header *h);
/* buf holds at least PYRO_FRAME_HEADER_BYTES bytes. */
enum header_status header_decode(const uint8_t *buf, struct frame_header *out);

/*
 * Incremental frame parser over a fixed buffer big enough for one maximal frame.
 * Bytes are read straight into parser_space(); parser_next() then yields each
 * complete frame in place.
 */
#define PARSER_CAPACITY (PYRO_FRAME_HEADER_BYTES + PYRO_MAX_FRAME_PAYLOAD_BYTES)

struct parser {
	uint8_t *buf; /* PARSER_CAPACITY bytes, owned by the caller */
	size_t start; /* first unconsumed byte */
	size_t end;   /* one past the last byte read */
};

enum parse_status { PARSE_NEED_MORE = 0, PARSE_FRAME = 1, PARSE_ERROR = -1 };

void parser_init(struct parser *p, uint8_t *buf);
void parser_reset(struct parser *p);
/* Where the next read may write, and how much room there is (never 0). */
uint8_t *parser_space(struct parser *p, size_t *room);
void parser_commit(struct parser *p, size_t n);
/* On PARSE_FRAME, *payload points into the buffer and stays valid until the
 * next parser_next/parser_space call. On PARSE_ERROR, *why says what was wrong. */
enum parse_status parser_next(struct parser *p, struct frame_header *h,
			      const uint8_t **payload, const char **why);

/* Fields: u16 key, u32 length, value. */
#define FIELD_HEADER_BYTES 6u

struct field_iter {
	const uint8_t *p;
	size_t left;
};

/* 0 when the whole payload is a well-formed field list, else -1. */
int fields_validate(const uint8_t *p, size_t len);
void fields_iter_init(struct field_iter *it, const uint8_t *p, size_t len);
/* 1 and the next field, or 0 at the end. Call only on validated payloads. */
int fields_next(struct field_iter *it, uint16_t *key, const uint8_t **val, uint32_t *vlen);
/* The first field with this key: 1 if found. */
int fields_find(const uint8_t *p, size_t len, uint16_t key, const uint8_t **val, uint32_t *vlen);
/* The first i64 field with this key: 1 found, 0 absent, -1 wrong length. */
int fields_i64(const uint8_t *p, size_t len, uint16_t key, int64_t *out);

/* A growable byte buffer for building payloads. */
struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
void buf_clear(struct buf *b);
void buf_free(struct buf *b);
int buf_field(struct buf *b, uint16_t key, const void *val, uint32_t vlen);
int buf_field_str(struct buf *b, uint16_t key, const char *s);
int buf_field_i64(struct buf *b, uint16_t key, int64_t v);

uint16_t load_be16(const uint8_t *p);
uint32_t load_be32(const uint8_t *p);
uint64_t load_be64(const uint8_t *p);
void store_be16(uint8_t *p, uint16_t v);
void store_be32(uint8_t *p, uint32_t v);
void store_be64(uint8_t *p, uint64_t v);

#endif
