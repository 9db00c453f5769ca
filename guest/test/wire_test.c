/* Black-box tests of the agent's frame parser and field codec (guest/agent/wire.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../agent/wire.h"
#include "check.h"

static uint8_t parser_buf[PARSER_CAPACITY];

static size_t make_frame(uint8_t *out, uint8_t type, uint32_t stream, const void *payload, uint32_t len)
{
	struct frame_header h = {type, 0, stream, len};
	header_encode(out, &h);
	memcpy(out + PYRO_FRAME_HEADER_BYTES, payload, len);
	return PYRO_FRAME_HEADER_BYTES + len;
}

static void feed(struct parser *p, const uint8_t *bytes, size_t n)
{
	size_t room;
	uint8_t *space = parser_space(p, &room);
	CHECK(room >= n);
	memcpy(space, bytes, n);
	parser_commit(p, n);
}

static void frames_split_across_reads(void)
{
	struct parser p;
	parser_init(&p, parser_buf);
	uint8_t wire[64];
	size_t n = make_frame(wire, PYRO_MSG_PING, 7, "hello", 5);
	n += make_frame(wire + n, PYRO_MSG_PING, 8, "", 0);
	struct frame_header h;
	const uint8_t *payload;
	const char *why;
	for (size_t i = 0; i < n; i++) {
		feed(&p, wire + i, 1);
		enum parse_status st = parser_next(&p, &h, &payload, &why);
		if (i == PYRO_FRAME_HEADER_BYTES + 4) {
			CHECK(st == PARSE_FRAME);
			CHECK(h.stream == 7 && h.length == 5 && memcmp(payload, "hello", 5) == 0);
		} else if (i == n - 1) {
			CHECK(st == PARSE_FRAME);
			CHECK(h.stream == 8 && h.length == 0);
		} else {
			CHECK(st == PARSE_NEED_MORE);
		}
	}
}

static void bad_magic_is_an_error(void)
{
	struct parser p;
	parser_init(&p, parser_buf);
	uint8_t wire[PYRO_FRAME_HEADER_BYTES] = {'X', 'Y', 1, 0, 0, 0, 0, 1, 0, 0, 0, 0};
	feed(&p, wire, sizeof wire);
	struct frame_header h;
	const uint8_t *payload;
	const char *why = NULL;
	CHECK(parser_next(&p, &h, &payload, &why) == PARSE_ERROR);
	CHECK(why && strstr(why, "magic"));
}

static void oversized_length_is_rejected_before_buffering(void)
{
	struct parser p;
	parser_init(&p, parser_buf);
	uint8_t wire[PYRO_FRAME_HEADER_BYTES];
	struct frame_header h = {PYRO_MSG_DATA, 1, 1, PYRO_MAX_FRAME_PAYLOAD_BYTES + 1};
	header_encode(wire, &h);
	feed(&p, wire, sizeof wire);
	const uint8_t *payload;
	const char *why = NULL;
	CHECK(parser_next(&p, &h, &payload, &why) == PARSE_ERROR);
	CHECK(why && strstr(why, "larger"));
}

static void maximal_frame_fits(void)
{
	struct parser p;
	parser_init(&p, parser_buf);
	static uint8_t wire[PARSER_CAPACITY];
	struct frame_header h = {PYRO_MSG_DATA, 0, 3, PYRO_MAX_FRAME_PAYLOAD_BYTES};
	header_encode(wire, &h);
	memset(wire + PYRO_FRAME_HEADER_BYTES, 0xab, PYRO_MAX_FRAME_PAYLOAD_BYTES);
	feed(&p, wire, sizeof wire);
	const uint8_t *payload;
	const char *why;
	CHECK(parser_next(&p, &h, &payload, &why) == PARSE_FRAME);
	CHECK(h.length == PYRO_MAX_FRAME_PAYLOAD_BYTES && payload[h.length - 1] == 0xab);
	size_t room;
	parser_space(&p, &room);
	CHECK(room == PARSER_CAPACITY);
}

static void fields_round_trip(void)
{
	struct buf b = {0};
	buf_field_i64(&b, PYRO_F_TIMEOUT_MS, -5);
	buf_field_str(&b, PYRO_F_ARG, "ls");
	buf_field_str(&b, PYRO_F_ARG, "-l");
	CHECK(fields_validate(b.data, b.len) == 0);
	int64_t v = 0;
	CHECK(fields_i64(b.data, b.len, PYRO_F_TIMEOUT_MS, &v) == 1 && v == -5);
	CHECK(fields_i64(b.data, b.len, PYRO_F_ARG, &v) == -1); /* wrong length */
	CHECK(fields_i64(b.data, b.len, PYRO_F_CWD, &v) == 0);
	struct field_iter it;
	uint16_t key;
	const uint8_t *val;
	uint32_t vlen;
	int args = 0;
	fields_iter_init(&it, b.data, b.len);
	while (fields_next(&it, &key, &val, &vlen))
		args += key == PYRO_F_ARG;
	CHECK(args == 2);
	buf_free(&b);
}

static void truncated_fields_are_invalid(void)
{
	uint8_t field[FIELD_HEADER_BYTES + 2] = {0, 10, 0, 0, 0, 9, 'a', 'b'};
	CHECK(fields_validate(field, sizeof field) == -1);
	CHECK(fields_validate(field, 3) == -1);
	CHECK(fields_validate(field, 0) == 0);
	/* A length that would wrap around when added to the offset. */
	uint8_t huge[FIELD_HEADER_BYTES] = {0, 1, 0xff, 0xff, 0xff, 0xff};
	CHECK(fields_validate(huge, sizeof huge) == -1);
}

int main(void)
{
	frames_split_across_reads();
	bad_magic_is_an_error();
	oversized_length_is_rejected_before_buffering();
	maximal_frame_fits();
	fields_round_trip();
	truncated_fields_are_invalid();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("wire tests passed\n");
	return 0;
}
