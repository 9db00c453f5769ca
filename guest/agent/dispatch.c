/*
 * What the host's frames mean: each is decoded and checked here, then handed
 * to the module that does the work (attach.c, exec.c, proc.c, shell.c). A malformed
 * request is a protocol error for its channel alone.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "channel.h"
#include "dispatch.h"
#include "exec.h"
#include "proc.h"
#include "shell.h"

#define MAX_ARGS 4096
#define MAX_ENV 4096

static struct buf scratch; /* a reply being built */

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

static void handle_hello(struct channel *ch, const uint8_t *payload, size_t len)
{
	int64_t generation = 0;
	const uint8_t *nonce = NULL;
	uint32_t nonce_len = 0;
	if (fields_i64(payload, len, PYRO_F_GENERATION, &generation) != 1 || generation < 1) {
		channel_protocol_error(ch, "HELLO without a valid generation");
		return;
	}
	if (fields_find(payload, len, PYRO_F_NONCE, &nonce, &nonce_len) && nonce_len > PYRO_MAX_NONCE_BYTES) {
		channel_protocol_error(ch, "HELLO nonce too long");
		return;
	}
	/* A HELLO starts a new conversation on this channel. */
	channel_begin(ch);
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
	send_frame(ch, PYRO_MSG_HELLO, 0, 0, scratch.data, scratch.len);
}

static void handle_attach(struct channel *ch, uint32_t stream, const uint8_t *payload, size_t len)
{
	if (attached) {
		send_error(ch, stream, EALREADY, "attach", "already attached");
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
		send_error(ch, stream, EINVAL, "attach", "ATTACH needs a scratch serial and a valid clock");
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
		send_error(ch, stream, errno, stage, strerror(errno));
		goto out;
	}
	send_ok(ch, stream);
out:
	free(serial);
	free(hostname);
}

/* A clone of a template taken after attach wakes up attached, with the
 * template's clock, random pool and hostname: replace them before anything runs. */
static void handle_refresh(struct channel *ch, uint32_t stream, const uint8_t *payload, size_t len)
{
	if (!attached) {
		send_error(ch, stream, EAGAIN, "refresh", "the VM is not attached yet");
		return;
	}
	const uint8_t *val;
	uint32_t vlen;
	struct attach_request req = {0};
	char *hostname = NULL;
	if (fields_i64(payload, len, PYRO_F_REALTIME_NS, &req.realtime_ns) < 0) {
		send_error(ch, stream, EINVAL, "refresh", "REFRESH has a malformed clock");
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
		send_error(ch, stream, errno, stage, strerror(errno));
	else
		send_ok(ch, stream);
	free(hostname);
}

static void handle_exec(struct channel *ch, uint32_t stream, const uint8_t *payload, size_t len)
{
	if (!attached) {
		send_error(ch, stream, EAGAIN, "exec", "the VM is not attached yet");
		return;
	}
	if (stream == 0 || session_exists(ch, stream)) {
		send_error(ch, stream, EINVAL, "exec", "stream id is in use");
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
		send_error(ch, stream, EINVAL, "exec", "EXEC needs argv, env without NUL bytes and valid numbers");
		goto out;
	}
	req.cwd = cwd ? cwd : "/";
	req.with_stdin = with_stdin != 0;
	const char *stage = "spawn";
	if (session_start(ch, stream, &req, &stage) < 0) {
		char message[512];
		int err = errno;
		snprintf(message, sizeof message, "%s: %s", strerror(err),
			 strcmp(stage, "chdir") == 0 ? req.cwd : req.argv[0]);
		send_error(ch, stream, err, stage, message);
	}
out:
	free_strings(req.argv);
	free_strings(req.envp);
	free(cwd);
}

/* A shell id as the host chooses them: 1 to 32 lowercase hex digits. */
static int valid_shell_id(const char *id)
{
	size_t n = strlen(id);
	return n >= 1 && n <= 32 && strspn(id, "0123456789abcdef") == n;
}

static int valid_size(int64_t n) { return n >= 1 && n <= PYRO_SHELL_MAX_SIZE; }

static void handle_shell_open(struct channel *ch, uint32_t stream, const uint8_t *payload, size_t len, const char *id)
{
	size_t nargs = 0, nenv = 0;
	struct shell_open_request req = {.id = id};
	const uint8_t *val;
	uint32_t vlen;
	char *cwd = NULL;
	int64_t cols = 0, rows = 0;
	req.argv = collect_strings(payload, len, PYRO_F_ARG, MAX_ARGS, &nargs);
	req.envp = collect_strings(payload, len, PYRO_F_ENV, MAX_ENV, &nenv);
	if (fields_find(payload, len, PYRO_F_CWD, &val, &vlen) && vlen <= 4096)
		cwd = dup_string(val, vlen);
	if (!req.argv || !req.envp || !cwd || fields_i64(payload, len, PYRO_F_COLS, &cols) != 1 ||
	    fields_i64(payload, len, PYRO_F_ROWS, &rows) != 1 || !valid_size(cols) || !valid_size(rows)) {
		send_error(ch, stream, EINVAL, "shell", "SHELL_OPEN needs a cwd, a size and strings without NUL bytes");
		goto out;
	}
	req.cwd = cwd;
	req.cols = (int)cols;
	req.rows = (int)rows;
	shell_open(ch, stream, &req);
out:
	free_strings(req.argv);
	free_strings(req.envp);
	free(cwd);
}

/* Every shell request names its shell; each then needs its own fields, checked here. */
static void handle_shell(struct channel *ch, const struct frame_header *h, const uint8_t *payload)
{
	uint32_t stream = h->stream;
	size_t len = h->length;
	if (!attached) {
		send_error(ch, stream, EAGAIN, "shell", "the VM is not attached yet");
		return;
	}
	const uint8_t *val;
	uint32_t vlen;
	char *id = NULL;
	if (fields_find(payload, len, PYRO_F_SHELL_ID, &val, &vlen) && vlen <= 32)
		id = dup_string(val, vlen);
	int64_t a = 0, b = 0, c = 0;
	int ok = id && valid_shell_id(id);
	switch (ok ? h->type : 0) {
	case PYRO_MSG_SHELL_OPEN:
		handle_shell_open(ch, stream, payload, len, id);
		break;
	case PYRO_MSG_SHELL_READ:
		ok = fields_i64(payload, len, PYRO_F_CURSOR, &a) == 1 && a >= 0 &&
		     fields_i64(payload, len, PYRO_F_MAX_BYTES, &b) == 1 && b >= 0 &&
		     fields_i64(payload, len, PYRO_F_WAIT_IDLE_MS, &c) >= 0 && c >= 0;
		if (ok)
			shell_read(ch, stream, id, (uint64_t)a, (size_t)b, c);
		break;
	case PYRO_MSG_SHELL_WRITE:
		ok = fields_find(payload, len, PYRO_F_INPUT, &val, &vlen);
		if (ok)
			shell_write(ch, stream, id, val, vlen);
		break;
	case PYRO_MSG_SHELL_SIGNAL:
		ok = fields_i64(payload, len, PYRO_F_SIGNAL, &a) == 1 &&
		     (a == SIGHUP || a == SIGINT || a == SIGTERM || a == SIGKILL);
		if (ok)
			shell_signal(ch, stream, id, (int)a);
		break;
	case PYRO_MSG_SHELL_CLOSE:
		shell_close(ch, stream, id);
		break;
	case PYRO_MSG_SHELL_RESIZE:
		ok = fields_i64(payload, len, PYRO_F_COLS, &a) == 1 && fields_i64(payload, len, PYRO_F_ROWS, &b) == 1 &&
		     valid_size(a) && valid_size(b);
		if (ok)
			shell_resize(ch, stream, id, (int)a, (int)b);
		break;
	}
	if (!ok)
		send_error(ch, stream, EINVAL, "shell", "a shell request needs a valid shell id and valid fields");
	free(id);
}

static void handle_frame(struct channel *ch, const struct frame_header *h, const uint8_t *payload)
{
	int raw = h->type == PYRO_MSG_DATA || h->type == PYRO_MSG_PING;
	if (!raw && fields_validate(payload, h->length) < 0) {
		channel_protocol_error(ch, "malformed fields");
		return;
	}
	if (channel_state(ch) == CHANNEL_AWAIT_HELLO && h->type != PYRO_MSG_HELLO) {
		channel_protocol_error(ch, "first frame must be HELLO");
		return;
	}
	switch (h->type) {
	case PYRO_MSG_HELLO:
		handle_hello(ch, payload, h->length);
		break;
	case PYRO_MSG_ATTACH:
		handle_attach(ch, h->stream, payload, h->length);
		break;
	case PYRO_MSG_REFRESH:
		handle_refresh(ch, h->stream, payload, h->length);
		break;
	case PYRO_MSG_EXEC:
		handle_exec(ch, h->stream, payload, h->length);
		break;
	case PYRO_MSG_DATA:
		if (h->flags == PYRO_FD_STDIN)
			session_stdin(ch, h->stream, payload, h->length);
		break;
	case PYRO_MSG_EOF:
		if (h->flags == PYRO_FD_STDIN)
			session_stdin_eof(ch, h->stream);
		break;
	case PYRO_MSG_SIGNAL: {
		int64_t signo = 0;
		if (fields_i64(payload, h->length, PYRO_F_SIGNAL, &signo) == 1 && signo > 0 && signo < 65)
			session_signal(ch, h->stream, (int)signo);
		break;
	}
	case PYRO_MSG_SHELL_OPEN:
	case PYRO_MSG_SHELL_READ:
	case PYRO_MSG_SHELL_WRITE:
	case PYRO_MSG_SHELL_SIGNAL:
	case PYRO_MSG_SHELL_CLOSE:
	case PYRO_MSG_SHELL_RESIZE:
		handle_shell(ch, h, payload);
		break;
	case PYRO_MSG_PING:
		send_frame(ch, PYRO_MSG_PONG, 0, h->stream, payload, h->length);
		break;
	case PYRO_MSG_SYNC:
		sync();
		send_ok(ch, h->stream);
		break;
	case PYRO_MSG_FREEZE: {
		int64_t timeout_ms = 0;
		fields_i64(payload, h->length, PYRO_F_TIMEOUT_MS, &timeout_ms);
		int rc = freeze_for(ch, timeout_ms);
		if (rc < 0)
			send_error(ch, h->stream, -rc, "freeze", rc == -EBUSY ? "already frozen" : strerror(-rc));
		else
			send_ok(ch, h->stream);
		break;
	}
	case PYRO_MSG_THAW:
		thaw_scratch();
		send_ok(ch, h->stream);
		break;
	case PYRO_MSG_POWEROFF:
		proc_abandon_all();
		send_ok(ch, h->stream);
		channel_flush(ch);
		power_off("host asked");
	default:
		send_error(ch, h->stream, ENOSYS, "protocol", "unknown message type");
		break;
	}
}

static int conversation_ended(struct channel *ch)
{
	shells_channel_ended(ch);
	freeze_channel_ended(ch);
	return proc_abandon(ch);
}

const struct channel_handler dispatch_handler = {
	.frame = handle_frame,
	.ended = conversation_ended,
	.stdin_backlog = sessions_stdin_backlog,
};
