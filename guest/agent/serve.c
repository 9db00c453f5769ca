/*
 * The agent's one loop: poll() over the channel port, a signalfd (SIGCHLD,
 * SIGIO) and every session's pipes. Single-threaded, so no locks.
 *
 * Outgoing frames go through a queue, written with non-blocking writes: a
 * blocking write on a virtio port whose host is gone would wait for the next
 * host forever. Sessions' output is read only while the queue is below
 * OUTQ_HIGH_WATER, which pushes back on a guest producing faster than the
 * host reads.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent.h"

#define OUTQ_HIGH_WATER (1024u * 1024u)
/* Well under exec.c's STDIN_PENDING_MAX, with room for what one read brings in. */
#define STDIN_HIGH_WATER (2u * 1024u * 1024u)
#define DATA_CHUNK_BYTES (64u * 1024u)
/* With the host away, re-check the port this often in case a SIGIO was missed. */
#define DISCONNECTED_RECHECK_MS 1000
#define MAX_ARGS 4096
#define MAX_ENV 4096

enum conn_state {
	CONN_DISCONNECTED, /* no host on the socket */
	CONN_AWAIT_HELLO,  /* host connected; first frame must be HELLO */
	CONN_READY,
	CONN_BROKEN, /* malformed input: discard everything until the host reconnects */
};

static int port_fd = -1;
static enum conn_state conn = CONN_DISCONNECTED;
static struct parser parser;
static uint8_t parser_buf[PARSER_CAPACITY];
static struct buf outq;
static size_t outq_head;
static struct buf scratch; /* payload being built */

static size_t outq_pending(void) { return outq.len - outq_head; }

static void outq_reset(void)
{
	buf_clear(&outq);
	outq_head = 0;
}

/* Reserve room for a frame of up to `payload` bytes; compacts first. */
static uint8_t *outq_reserve(size_t payload)
{
	if (outq_head > 0 && outq_head == outq.len)
		outq_reset();
	else if (outq_head > (1u << 20)) {
		memmove(outq.data, outq.data + outq_head, outq.len - outq_head);
		outq.len -= outq_head;
		outq_head = 0;
	}
	if (buf_reserve(&outq, PYRO_FRAME_HEADER_BYTES + payload) < 0)
		return NULL;
	return outq.data + outq.len;
}

int send_frame(uint8_t type, uint8_t flags, uint32_t stream, const void *payload, size_t len)
{
	if (conn != CONN_READY && type != PYRO_MSG_HELLO && !(type == PYRO_MSG_ERROR && stream == 0))
		return 0; /* nobody to tell */
	uint8_t *p = outq_reserve(len);
	if (!p)
		return log_errno("queue frame");
	struct frame_header h = {type, flags, stream, (uint32_t)len};
	header_encode(p, &h);
	if (len)
		memcpy(p + PYRO_FRAME_HEADER_BYTES, payload, len);
	outq.len += PYRO_FRAME_HEADER_BYTES + len;
	return 0;
}

long send_data_from_fd(uint32_t stream, uint8_t fd_flag, int fd, size_t max)
{
	if (max > DATA_CHUNK_BYTES)
		max = DATA_CHUNK_BYTES;
	uint8_t *p = outq_reserve(max);
	if (!p)
		return -1;
	ssize_t n = read(fd, p + PYRO_FRAME_HEADER_BYTES, max);
	if (n <= 0)
		return n;
	if (conn == CONN_READY) {
		struct frame_header h = {PYRO_MSG_DATA, fd_flag, stream, (uint32_t)n};
		header_encode(p, &h);
		outq.len += PYRO_FRAME_HEADER_BYTES + (size_t)n;
	}
	return n;
}

int send_error(uint32_t stream, int err, const char *stage, const char *message)
{
	buf_clear(&scratch);
	buf_field_i64(&scratch, PYRO_F_ERRNO, err);
	buf_field_str(&scratch, PYRO_F_STAGE, stage);
	buf_field_str(&scratch, PYRO_F_MESSAGE, message);
	return send_frame(PYRO_MSG_ERROR, 0, stream, scratch.data, scratch.len);
}

int send_exit(uint32_t stream, int code, int signo, int timed_out)
{
	buf_clear(&scratch);
	buf_field_i64(&scratch, PYRO_F_EXIT_CODE, code);
	buf_field_i64(&scratch, PYRO_F_SIGNAL, signo);
	buf_field_i64(&scratch, PYRO_F_TIMED_OUT, timed_out);
	return send_frame(PYRO_MSG_EXIT, 0, stream, scratch.data, scratch.len);
}

static void send_ok(uint32_t stream)
{
	buf_clear(&scratch);
	buf_field_i64(&scratch, PYRO_F_UPTIME_NS, boottime_ns());
	send_frame(PYRO_MSG_OK, 0, stream, scratch.data, scratch.len);
}

static void flush_outq(void)
{
	while (outq_pending() > 0) {
		ssize_t n = write(port_fd, outq.data + outq_head, outq_pending());
		if (n > 0) {
			outq_head += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return; /* EAGAIN: wait for POLLOUT; other errors surface as POLLHUP */
	}
	outq_reset();
}

static void connection_lost(void)
{
	if (conn != CONN_DISCONNECTED && sessions_active() > 0)
		log_line("host disconnected; stopping %d session(s)", sessions_active());
	sessions_abandon();
	parser_reset(&parser);
	outq_reset();
	conn = CONN_DISCONNECTED;
}

/* Stop trusting the input until the host reconnects. */
static void protocol_error(const char *why)
{
	log_line("protocol error: %s", why);
	sessions_abandon();
	outq_reset();
	send_error(0, EPROTO, "protocol", why);
	parser_reset(&parser);
	conn = CONN_BROKEN;
}

/* Copy a string field into a fresh NUL-terminated string; NULL if it holds a NUL. */
static char *dup_string(const uint8_t *val, uint32_t len)
{
	if (memchr(val, 0, len))
		return NULL;
	char *s = malloc((size_t)len + 1);
	if (!s)
		return NULL;
	memcpy(s, val, len);
	s[len] = 0;
	return s;
}

static void free_strings(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* Collect every field with `key` into a NULL-terminated array. */
static char **collect_strings(const uint8_t *payload, size_t len, uint16_t key, size_t max,
			      size_t *count)
{
	struct field_iter it;
	uint16_t k;
	const uint8_t *val;
	uint32_t vlen;
	size_t n = 0;
	fields_iter_init(&it, payload, len);
	while (fields_next(&it, &k, &val, &vlen))
		n += k == key;
	*count = n;
	if (n > max)
		return NULL;
	char **out = calloc(n + 1, sizeof *out);
	if (!out)
		return NULL;
	size_t i = 0;
	fields_iter_init(&it, payload, len);
	while (fields_next(&it, &k, &val, &vlen)) {
		if (k != key)
			continue;
		if (!(out[i++] = dup_string(val, vlen))) {
			free_strings(out);
			return NULL;
		}
	}
	return out;
}

static void handle_hello(const uint8_t *payload, size_t len)
{
	int64_t generation = 0;
	const uint8_t *nonce = NULL;
	uint32_t nonce_len = 0;
	if (fields_i64(payload, len, PYRO_F_GENERATION, &generation) != 1 || generation < 1) {
		protocol_error("HELLO without a valid generation");
		return;
	}
	if (fields_find(payload, len, PYRO_F_NONCE, &nonce, &nonce_len) && nonce_len > PYRO_MAX_NONCE_BYTES) {
		protocol_error("HELLO nonce too long");
		return;
	}
	/* A HELLO starts a new conversation: anything from an earlier host (one we
	 * never saw leave, as after a snapshot restore) is dropped. */
	if (sessions_active() > 0)
		sessions_abandon();
	outq_reset();
	conn = CONN_READY;
	buf_clear(&scratch);
	buf_field_i64(&scratch, PYRO_F_GENERATION,
		      generation < PYRO_PROTOCOL_GENERATION ? generation : PYRO_PROTOCOL_GENERATION);
	if (nonce)
		buf_field(&scratch, PYRO_F_NONCE, nonce, nonce_len);
	buf_field_str(&scratch, PYRO_F_STATE, attached ? "attached" : "ready");
	buf_field_str(&scratch, PYRO_F_AGENT_VERSION, AGENT_VERSION);
	buf_field_i64(&scratch, PYRO_F_UPTIME_NS, boottime_ns());
	buf_field_i64(&scratch, PYRO_F_MODULES_NS, boot_marks.modules_ns);
	buf_field_i64(&scratch, PYRO_F_ROOT_NS, boot_marks.root_ns);
	send_frame(PYRO_MSG_HELLO, 0, 0, scratch.data, scratch.len);
}

static void handle_attach(uint32_t stream, const uint8_t *payload, size_t len)
{
	if (attached) {
		send_error(stream, EALREADY, "attach", "already attached");
		return;
	}
	const uint8_t *val;
	uint32_t vlen;
	struct attach_request req = {0};
	char *serial = NULL, *hostname = NULL;
	if (fields_find(payload, len, PYRO_F_SCRATCH_SERIAL, &val, &vlen))
		serial = dup_string(val, vlen);
	if (fields_find(payload, len, PYRO_F_HOSTNAME, &val, &vlen))
		hostname = dup_string(val, vlen);
	if (!serial || fields_i64(payload, len, PYRO_F_REALTIME_NS, &req.realtime_ns) < 0) {
		send_error(stream, EINVAL, "attach", "ATTACH needs a scratch serial and a valid clock");
		goto out;
	}
	if (fields_find(payload, len, PYRO_F_ENTROPY, &val, &vlen)) {
		req.entropy = val;
		req.entropy_len = vlen;
	}
	req.scratch_serial = serial;
	req.hostname = hostname;
	const char *stage = "attach";
	if (attach(&req, &stage) < 0) {
		send_error(stream, errno, stage, strerror(errno));
		goto out;
	}
	send_ok(stream);
out:
	free(serial);
	free(hostname);
}

/* A clone of a template taken after attach wakes up attached, with the
 * template's clock, random pool and hostname: replace them before anything runs. */
static void handle_refresh(uint32_t stream, const uint8_t *payload, size_t len)
{
	if (!attached) {
		send_error(stream, EAGAIN, "refresh", "the VM is not attached yet");
		return;
	}
	const uint8_t *val;
	uint32_t vlen;
	struct attach_request req = {0};
	char *hostname = NULL;
	if (fields_i64(payload, len, PYRO_F_REALTIME_NS, &req.realtime_ns) < 0) {
		send_error(stream, EINVAL, "refresh", "REFRESH has a malformed clock");
		return;
	}
	if (fields_find(payload, len, PYRO_F_HOSTNAME, &val, &vlen))
		hostname = dup_string(val, vlen);
	if (fields_find(payload, len, PYRO_F_ENTROPY, &val, &vlen)) {
		req.entropy = val;
		req.entropy_len = vlen;
	}
	req.hostname = hostname;
	const char *stage = "refresh";
	if (personalise(&req, &stage) < 0)
		send_error(stream, errno, stage, strerror(errno));
	else
		send_ok(stream);
	free(hostname);
}

static void handle_exec(uint32_t stream, const uint8_t *payload, size_t len)
{
	if (!attached) {
		send_error(stream, EAGAIN, "exec", "the VM is not attached yet");
		return;
	}
	if (stream == 0 || session_exists(stream)) {
		send_error(stream, EINVAL, "exec", "stream id is in use");
		return;
	}
	size_t nargs = 0, nenv = 0;
	struct exec_request req = {0};
	const uint8_t *val;
	uint32_t vlen;
	char *cwd = NULL;
	req.argv = collect_strings(payload, len, PYRO_F_ARG, MAX_ARGS, &nargs);
	req.envp = collect_strings(payload, len, PYRO_F_ENV, MAX_ENV, &nenv);
	if (fields_find(payload, len, PYRO_F_CWD, &val, &vlen))
		cwd = dup_string(val, vlen);
	int64_t with_stdin = 0;
	if (!req.argv || nargs == 0 || !req.envp ||
	    fields_i64(payload, len, PYRO_F_TIMEOUT_MS, &req.timeout_ms) < 0 ||
	    fields_i64(payload, len, PYRO_F_STDIN, &with_stdin) < 0 || req.timeout_ms < 0) {
		send_error(stream, EINVAL, "exec", "EXEC needs argv, env without NUL bytes and valid numbers");
		goto out;
	}
	req.cwd = cwd ? cwd : "/";
	req.with_stdin = with_stdin != 0;
	const char *stage = "spawn";
	if (session_start(stream, &req, &stage) < 0) {
		char message[512];
		int err = errno;
		snprintf(message, sizeof message, "%s: %s", strerror(err),
			 strcmp(stage, "chdir") == 0 ? req.cwd : req.argv[0]);
		send_error(stream, err, stage, message);
	}
out:
	free_strings(req.argv);
	free_strings(req.envp);
	free(cwd);
}

static void handle_frame(const struct frame_header *h, const uint8_t *payload)
{
	int raw = h->type == PYRO_MSG_DATA || h->type == PYRO_MSG_PING;
	if (!raw && fields_validate(payload, h->length) < 0) {
		protocol_error("malformed fields");
		return;
	}
	if (conn == CONN_AWAIT_HELLO && h->type != PYRO_MSG_HELLO) {
		protocol_error("first frame must be HELLO");
		return;
	}
	switch (h->type) {
	case PYRO_MSG_HELLO:
		handle_hello(payload, h->length);
		break;
	case PYRO_MSG_ATTACH:
		handle_attach(h->stream, payload, h->length);
		break;
	case PYRO_MSG_REFRESH:
		handle_refresh(h->stream, payload, h->length);
		break;
	case PYRO_MSG_EXEC:
		handle_exec(h->stream, payload, h->length);
		break;
	case PYRO_MSG_DATA:
		if (h->flags == PYRO_FD_STDIN)
			session_stdin(h->stream, payload, h->length);
		break;
	case PYRO_MSG_EOF:
		if (h->flags == PYRO_FD_STDIN)
			session_stdin_eof(h->stream);
		break;
	case PYRO_MSG_SIGNAL: {
		int64_t signo = 0;
		if (fields_i64(payload, h->length, PYRO_F_SIGNAL, &signo) == 1 && signo > 0 && signo < 65)
			session_signal(h->stream, (int)signo);
		break;
	}
	case PYRO_MSG_PING:
		send_frame(PYRO_MSG_PONG, 0, h->stream, payload, h->length);
		break;
	case PYRO_MSG_SYNC:
		sync();
		send_ok(h->stream);
		break;
	case PYRO_MSG_POWEROFF:
		sessions_abandon();
		send_ok(h->stream);
		flush_outq();
		power_off("host asked");
	default:
		send_error(h->stream, ENOSYS, "protocol", "unknown message type");
		break;
	}
}

static void read_channel(void)
{
	for (;;) {
		size_t room;
		uint8_t *space = parser_space(&parser, &room);
		ssize_t n = read(port_fd, space, room);
		if (n == 0) {
			connection_lost();
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				connection_lost();
			return;
		}
		if (conn == CONN_BROKEN)
			continue; /* discard */
		parser_commit(&parser, (size_t)n);
		struct frame_header h;
		const uint8_t *payload;
		const char *why = NULL;
		enum parse_status st;
		while (conn != CONN_BROKEN && (st = parser_next(&parser, &h, &payload, &why)) == PARSE_FRAME)
			handle_frame(&h, payload);
		if (conn != CONN_BROKEN && st == PARSE_ERROR)
			protocol_error(why);
		/* A command slower than its stdin: stop reading until it catches up. */
		if (sessions_stdin_backlog() >= STDIN_HIGH_WATER)
			return;
	}
}

/* With the host away, poll() reports POLLHUP at once; find out whether it is back. */
static int host_connected(void)
{
	struct pollfd p = {port_fd, POLLIN, 0};
	if (poll(&p, 1, 0) < 0)
		return 0;
	return !(p.revents & POLLHUP);
}

static int open_signalfd(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGIO);
	int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		power_off("signalfd failed");
	return fd;
}

static void drain_signalfd(int fd)
{
	struct signalfd_siginfo info;
	while (read(fd, &info, sizeof info) == sizeof info) {
	}
}

void serve(int fd)
{
	port_fd = fd;
	parser_init(&parser, parser_buf);
	int sig_fd = open_signalfd();
	sessions_init();
	struct pollfd pfds[2 + 3 * MAX_SESSIONS];

	for (;;) {
		if (conn == CONN_DISCONNECTED && host_connected())
			conn = CONN_AWAIT_HELLO;
		int timeout = sessions_check_deadlines();
		size_t n = 0;
		pfds[n++] = (struct pollfd){sig_fd, POLLIN, 0};
		size_t port_index = n;
		if (conn != CONN_DISCONNECTED) {
			short want_in = sessions_stdin_backlog() < STDIN_HIGH_WATER ? POLLIN : 0;
			pfds[n++] = (struct pollfd){port_fd, (short)(want_in | (outq_pending() ? POLLOUT : 0)), 0};
		} else if (timeout < 0 || timeout > DISCONNECTED_RECHECK_MS) {
			timeout = DISCONNECTED_RECHECK_MS;
		}
		size_t sessions_start = n;
		n = sessions_pollfds(pfds, n, sizeof pfds / sizeof pfds[0], outq_pending() < OUTQ_HIGH_WATER);

		int ready = poll(pfds, (nfds_t)n, timeout);
		if (ready < 0) {
			if (errno != EINTR)
				log_errno("poll");
			continue;
		}
		if (pfds[0].revents)
			drain_signalfd(sig_fd);
		sessions_reap();
		if (port_index < sessions_start) {
			short rev = pfds[port_index].revents;
			if (rev & POLLIN)
				read_channel();
			if (conn != CONN_DISCONNECTED && (rev & POLLHUP) && !(rev & POLLIN))
				connection_lost();
		}
		sessions_handle_poll(pfds, sessions_start, n - sessions_start);
		if (conn != CONN_DISCONNECTED)
			flush_outq();
	}
}
