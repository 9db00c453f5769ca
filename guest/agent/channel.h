/*
 * channel.c: one connection to a host over a virtio-serial port: the frame
 * parser, the outgoing queue and the connection's state. What the frames mean
 * is the handler's business (dispatch.c), so the channel calls nothing above it.
 */
#ifndef PYRO_CHANNEL_H
#define PYRO_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* Well under exec.c's STDIN_PENDING_MAX, with room for what one read brings in. */
#define STDIN_HIGH_WATER (2u * 1024u * 1024u)

enum channel_state {
	CHANNEL_DISCONNECTED, /* no host on the socket */
	CHANNEL_AWAIT_HELLO,  /* host connected; first frame must be HELLO */
	CHANNEL_READY,
	CHANNEL_BROKEN, /* malformed input: discard everything until the host reconnects */
};

struct channel;

struct channel_handler {
	/* A complete frame; the payload is valid only during the call. */
	void (*frame)(struct channel *ch, const struct frame_header *h, const uint8_t *payload);
	/* The conversation ended (host gone, a new HELLO, a protocol error): drop
	 * what it owned. Returns how many sessions that stopped. */
	int (*ended)(struct channel *ch);
	/* The largest stdin backlog of this channel's sessions: above
	 * STDIN_HIGH_WATER the channel stops reading, which pushes back on the host
	 * through the port. */
	size_t (*stdin_backlog)(struct channel *ch);
};

/* Serve the open port `fd` (non-blocking, O_ASYNC) through `handler`. */
struct channel *channel_open(int fd, const char *name, const struct channel_handler *handler);
enum channel_state channel_state(const struct channel *ch);
/* A valid HELLO: end any earlier conversation, then READY. */
void channel_begin(struct channel *ch);
/* Stop trusting the input until the host reconnects. */
void channel_protocol_error(struct channel *ch, const char *why);
/* Whether the outgoing queue is below its high-water mark: sessions read
 * their output only then, which pushes back on a guest producing faster than
 * the host reads. */
int channel_takes_output(const struct channel *ch);
/* Write what is queued, as far as the port takes it now. */
void channel_flush(struct channel *ch);

/* Outgoing frames, queued until the port can take them. */
int send_frame(struct channel *ch, uint8_t type, uint8_t flags, uint32_t stream, const void *payload, size_t len);
/* Read up to `max` bytes from fd straight into a DATA frame. Returns bytes read,
 * 0 at EOF, -1 with errno (EAGAIN when empty). */
long send_data_from_fd(struct channel *ch, uint32_t stream, uint8_t fd_flag, int fd, size_t max);
int send_error(struct channel *ch, uint32_t stream, int err, const char *stage, const char *message);
int send_exit(struct channel *ch, uint32_t stream, int code, int signo, int timed_out);
int send_ok(struct channel *ch, uint32_t stream);

#endif
