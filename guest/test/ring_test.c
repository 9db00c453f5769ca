/* Black-box tests of the shell output ring (guest/agent/ring.c). */
#include <stdio.h>
#include <string.h>

#include "../agent/ring.h"
#include "check.h"

static void reads_what_was_appended(void)
{
	struct ring r;
	CHECK(ring_init(&r, 8) == 0);
	uint8_t out[16];
	uint64_t start = 99;
	CHECK(ring_read(&r, 0, out, sizeof out, &start) == 0 && start == 0);
	ring_append(&r, (const uint8_t *)"hello", 5);
	CHECK(ring_read(&r, 0, out, sizeof out, &start) == 5 && start == 0 && memcmp(out, "hello", 5) == 0);
	CHECK(ring_read(&r, 2, out, 2, &start) == 2 && start == 2 && memcmp(out, "ll", 2) == 0);
	CHECK(ring_read(&r, 5, out, sizeof out, &start) == 0 && start == 5);
	CHECK(ring_read(&r, 9, out, sizeof out, &start) == 0);
	ring_free(&r);
}

static void drops_the_oldest_and_says_where_it_starts(void)
{
	struct ring r;
	CHECK(ring_init(&r, 8) == 0);
	ring_append(&r, (const uint8_t *)"abcdefghij", 10); /* wraps: holds cdefghij */
	uint8_t out[16];
	uint64_t start = 0;
	CHECK(ring_first(&r) == 2 && r.end == 10);
	CHECK(ring_read(&r, 0, out, sizeof out, &start) == 8 && start == 2 && memcmp(out, "cdefghij", 8) == 0);
	CHECK(ring_read(&r, 7, out, sizeof out, &start) == 3 && start == 7 && memcmp(out, "hij", 3) == 0);
	ring_append(&r, (const uint8_t *)"0123456789ABCDEFGHIJ", 20); /* longer than the ring */
	CHECK(r.end == 30 && ring_first(&r) == 22);
	CHECK(ring_read(&r, 0, out, sizeof out, &start) == 8 && start == 22 && memcmp(out, "CDEFGHIJ", 8) == 0);
	size_t room;
	uint8_t *at = ring_space(&r, &room);
	CHECK(room == 2); /* 30 % 8 = 6: two bytes to the end of the buffer */
	memcpy(at, "xy", 2);
	ring_commit(&r, 2);
	CHECK(ring_read(&r, 30, out, sizeof out, &start) == 2 && memcmp(out, "xy", 2) == 0);
	ring_free(&r);
}

int main(void)
{
	reads_what_was_appended();
	drops_the_oldest_and_says_where_it_starts();
	if (failures) {
		fprintf(stderr, "%d ring check(s) failed\n", failures);
		return 1;
	}
	printf("ring tests passed\n");
	return 0;
}
