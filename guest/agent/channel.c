/*
 * A host connection. Outgoing frames go through a queue, written with
 * non-blocking writes: a blocking write on a virtio port whose host is gone
 * would wait for the next host forever. The queue is flushed once per turn
 * of the loop, after everything that turn queued.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "channel.h"
#include "loop.h"

#define OUTQ_HIGH_WATER (1024u * 1024u)
#define DATA_CHUNK_BYTES (64u * 1024u)
/* With the host away, re-check the port this often in case a SIGIO was missed. */
#define DISCONNECTED_RECHECK_MS 1000

struct channel {
	int fd;
	char name[64];
	enum channel_state state;
	const struct channel_handler *handler;
	struct parser parser;
	struct buf outq;
	size_t outq_head;
};

static struct channel *channels[MAX_CHANNEL_PORTS];
static size_t channel_count;
static struct buf scratch; /* payload being built */

static size_t outq_pending(const struct channel *ch) { return ch->outq.len - ch->outq_head; }

static void outq_reset(struct channel *ch)
{
	buf_clear(&ch->outq);
	ch->outq_head = 0;
}

/* Reserve room for a frame of up to `payload` bytes; compacts first. */
static uint8_t *outq_reserve(struct channel *ch, size_t payload)
{
	struct buf *q = &ch->outq;
	if (ch->outq_head > 0 && ch->outq_head == q->len)
		outq_reset(ch);
	else if (ch->outq_head > (1u << 20)) {
		memmove(q->data, q->data + ch->outq_head, q->len - ch->outq_head);
		q->len -= ch->outq_head;
		ch->outq_head = 0;
	}
	if (buf_reserve(q, PYRO_FRAME_HEADER_BYTES + payload) < 0)
		return NULL;
	return q->data + q->len;
}

int send_frame(struct channel *ch, uint8_t type, uint8_t flags, uint32_t stream, const void *payload, size_t len)
{
	if (ch->state != CHANNEL_READY && type != PYRO_MSG_HELLO && !(type == PYRO_MSG_ERROR && stream == 0))
		return 0; /* nobody to tell */
	uint8_t *p = outq_reserve(ch, len);
	if (!p)
		return log_errno("queue frame");
	struct frame_header h = {type, flags, stream, (uint32_t)len};
	header_encode(p, &h);
	if (len)
		memcpy(p + PYRO_FRAME_HEADER_BYTES, payload, len);
	ch->outq.len += PYRO_FRAME_HEADER_BYTES + len;
	return 0;
}

long send_data_from_fd(struct channel *ch, uint32_t stream, uint8_t fd_flag, int fd, size_t max)
{
	if (max > DATA_CHUNK_BYTES)
		max = DATA_CHUNK_BYTES;
	uint8_t *p = outq_reserve(ch, max);
	if (!p)
		return -1;
	ssize_t n = read(fd, p + PYRO_FRAME_HEADER_BYTES, max);
	if (n <= 0)
		return n;
	if (ch->state == CHANNEL_READY) {
		struct frame_header h = {PYRO_MSG_DATA, fd_flag, stream, (uint32_t)n};
		header_encode(p, &h);
		ch->outq.len += PYRO_FRAME_HEADER_BYTES + (size_t)n;
	}
	return n;
}

int send_error(struct channel *ch, uint32_t stream, int err, const char *stage, const char *message)
{
	buf_clear(&scratch);
	buf_field_i64(&scratch, PYRO_F_ERRNO, err);
	buf_field_str(&scratch, PYRO_F_STAGE, stage);
	buf_field_str(&scratch, PYRO_F_MESSAGE, message);
	return send_frame(ch, PYRO_MSG_ERROR, 0, stream, scratch.data, scratch.len);
}

int send_exit(struct channel *ch, uint32_t stream, int code, int signo, int timed_out)
{
	buf_clear(&scratch);
	buf_field_i64(&scratch, PYRO_F_EXIT_CODE, code);
	buf_field_i64(&scratch, PYRO_F_SIGNAL, signo);
	buf_field_i64(&scratch, PYRO_F_TIMED_OUT, timed_out);
	return send_frame(ch, PYRO_MSG_EXIT, 0, stream, scratch.data, scratch.len);
}

int send_ok(struct channel *ch, uint32_t stream)
{
	buf_clear(&scratch);
	buf_field_i64(&scratch, PYRO_F_UPTIME_NS, boottime_ns());
	return send_frame(ch, PYRO_MSG_OK, 0, stream, scratch.data, scratch.len);
}

enum channel_state channel_state(const struct channel *ch) { return ch->state; }

int channel_takes_output(const struct channel *ch) { return outq_pending(ch) < OUTQ_HIGH_WATER; }

void channel_flush(struct channel *ch)
{
	while (outq_pending(ch) > 0) {
		ssize_t n = write(ch->fd, ch->outq.data + ch->outq_head, outq_pending(ch));
		if (n > 0) {
			ch->outq_head += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return; /* EAGAIN: wait for POLLOUT; other errors surface as POLLHUP */
	}
	outq_reset(ch);
}

static void connection_lost(struct channel *ch)
{
	int was_connected = ch->state != CHANNEL_DISCONNECTED;
	int stopped = ch->handler->ended(ch);
	if (was_connected && stopped > 0)
		log_line("%s: host disconnected; stopped %d session(s)", ch->name, stopped);
	parser_reset(&ch->parser);
	outq_reset(ch);
	ch->state = CHANNEL_DISCONNECTED;
}

void channel_protocol_error(struct channel *ch, const char *why)
{
	log_line("%s: protocol error: %s", ch->name, why);
	ch->handler->ended(ch);
	outq_reset(ch);
	send_error(ch, 0, EPROTO, "protocol", why);
	parser_reset(&ch->parser);
	ch->state = CHANNEL_BROKEN;
}

void channel_begin(struct channel *ch)
{
	/* Anything from an earlier host (one we never saw leave, as after a
	 * snapshot restore) is dropped. */
	ch->handler->ended(ch);
	outq_reset(ch);
	ch->state = CHANNEL_READY;
}

static void read_port(struct channel *ch)
{
	for (;;) {
		size_t room;
		uint8_t *space = parser_space(&ch->parser, &room);
		ssize_t n = read(ch->fd, space, room);
		if (n == 0) {
			connection_lost(ch);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				connection_lost(ch);
			return;
		}
		if (ch->state == CHANNEL_BROKEN)
			continue; /* discard */
		parser_commit(&ch->parser, (size_t)n);
		struct frame_header h;
		const uint8_t *payload;
		const char *why = NULL;
		enum parse_status st;
		while (ch->state != CHANNEL_BROKEN && (st = parser_next(&ch->parser, &h, &payload, &why)) == PARSE_FRAME)
			ch->handler->frame(ch, &h, payload);
		if (ch->state != CHANNEL_BROKEN && st == PARSE_ERROR)
			channel_protocol_error(ch, why);
		/* A command slower than its stdin: stop reading until it catches up. */
		if (ch->handler->stdin_backlog(ch) >= STDIN_HIGH_WATER)
			return;
	}
}

static void on_port(void *ctx, int fd, short revents)
{
	(void)fd;
	struct channel *ch = ctx;
	if (revents & POLLIN)
		read_port(ch);
	if (ch->state != CHANNEL_DISCONNECTED && (revents & POLLHUP) && !(revents & POLLIN))
		connection_lost(ch);
}

static void settle(void *ctx)
{
	(void)ctx;
	for (size_t i = 0; i < channel_count; i++)
		if (channels[i]->state != CHANNEL_DISCONNECTED)
			channel_flush(channels[i]);
}

/* With the host away, poll() reports POLLHUP at once, so the port is left out
 * of it; SIGIO (or the recheck) wakes the loop to see whether a host is back. */
static int prepare_one(struct channel *ch)
{
	if (ch->state == CHANNEL_DISCONNECTED) {
		int revents = loop_probe(ch->fd);
		if (revents >= 0 && !(revents & POLLHUP))
			ch->state = CHANNEL_AWAIT_HELLO;
	}
	if (ch->state == CHANNEL_DISCONNECTED) {
		loop_set_events(ch->fd, 0);
		return DISCONNECTED_RECHECK_MS;
	}
	short in = ch->handler->stdin_backlog(ch) < STDIN_HIGH_WATER ? POLLIN : 0;
	loop_set_events(ch->fd, (short)(POLLHUP | in | (outq_pending(ch) ? POLLOUT : 0)));
	return -1;
}

static int prepare(void *ctx)
{
	(void)ctx;
	int timeout = -1;
	for (size_t i = 0; i < channel_count; i++) {
		int want = prepare_one(channels[i]);
		if (want >= 0 && (timeout < 0 || want < timeout))
			timeout = want;
	}
	return timeout;
}

struct channel *channel_open(int fd, const char *name, const struct channel_handler *handler)
{
	if (channel_count == MAX_CHANNEL_PORTS) {
		errno = EMFILE;
		return NULL;
	}
	struct channel *ch = calloc(1, sizeof *ch);
	uint8_t *parser_buf = malloc(PARSER_CAPACITY);
	if (!ch || !parser_buf || loop_add(fd, 0, on_port, ch) < 0) {
		free(ch);
		free(parser_buf);
		return NULL;
	}
	ch->fd = fd;
	snprintf(ch->name, sizeof ch->name, "%s", name);
	ch->state = CHANNEL_DISCONNECTED;
	ch->handler = handler;
	parser_init(&ch->parser, parser_buf);
	if (channel_count == 0)
		loop_add_hooks(settle, prepare, NULL);
	channels[channel_count++] = ch;
	return ch;
}
