/*
 * Exec sessions. A session lives from EXEC until its process has exited and
 * both of its output pipes are drained and closed; then EXIT goes to the host.
 * A session whose host went away ends at once, unreported (proc.c kills its
 * process and calls `abandoned`).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "channel.h"
#include "exec.h"
#include "loop.h"
#include "proc.h"

#define STDIN_PENDING_MAX (8u * 1024u * 1024u)

struct session {
	struct channel *ch; /* NULL: free slot */
	uint32_t stream;
	struct proc *proc;
	int exited;
	int status;
	int fds[3]; /* stdin write end, stdout and stderr read ends; -1 when closed */
	struct buf stdin_pending;
	int stdin_eof; /* close stdin once pending bytes are written */
	struct loop_timer deadline;
	int timed_out;
};

static struct session sessions[MAX_SESSIONS];
/* The stdin of commands given none: opened once, shared (it has no state to share). */
static int dev_null = -1;

static struct session *find(struct channel *ch, uint32_t stream)
{
	if (stream == 0)
		return NULL;
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].ch == ch && sessions[i].stream == stream)
			return &sessions[i];
	return NULL;
}

int session_exists(struct channel *ch, uint32_t stream) { return find(ch, stream) != NULL; }

static void close_fd(struct session *s, int which)
{
	if (s->fds[which] >= 0) {
		loop_remove(s->fds[which]);
		close(s->fds[which]);
		s->fds[which] = -1;
	}
}

static void free_session(struct session *s)
{
	for (int i = 0; i < 3; i++)
		close_fd(s, i);
	buf_free(&s->stdin_pending);
	loop_timer_disarm(&s->deadline);
	s->ch = NULL;
	s->stream = 0;
	s->proc = NULL;
}

static void flush_stdin(struct session *s)
{
	while (s->fds[0] >= 0 && s->stdin_pending.len > 0) {
		ssize_t n = write(s->fds[0], s->stdin_pending.data, s->stdin_pending.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) /* EPIPE: the command stopped reading */
				close_fd(s, 0);
			return;
		}
		memmove(s->stdin_pending.data, s->stdin_pending.data + n, s->stdin_pending.len - (size_t)n);
		s->stdin_pending.len -= (size_t)n;
	}
	if (s->stdin_eof && s->stdin_pending.len == 0)
		close_fd(s, 0);
}

/* Read what the command wrote. `drain`: until empty, ignoring the high-water mark. */
static void pump_output(struct session *s, int which, int drain)
{
	for (int rounds = 0; s->fds[which] >= 0 && (drain || rounds < 4); rounds++) {
		long n = send_data_from_fd(s->ch, s->stream, (uint8_t)which, s->fds[which], 64 * 1024);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			close_fd(s, which);
		return;
	}
}

static void finish_if_done(struct session *s)
{
	if (!s->exited || s->fds[1] >= 0 || s->fds[2] >= 0)
		return;
	int code, signo;
	proc_exit_status(s->status, &code, &signo);
	send_exit(s->ch, s->stream, code, signo, s->timed_out);
	proc_release(s->proc);
	free_session(s);
}

static void on_exited(void *ctx, int status)
{
	struct session *s = ctx;
	s->exited = 1;
	s->status = status;
	loop_timer_disarm(&s->deadline);
	/* Everything the command itself wrote is already in the pipes; a
	 * background job still holding them must not delay the result. */
	pump_output(s, 1, 1);
	pump_output(s, 2, 1);
	for (int i = 0; i < 3; i++)
		close_fd(s, i);
	finish_if_done(s);
}

static void on_abandoned(void *ctx) { free_session(ctx); }

static const struct proc_client session_client = {on_exited, on_abandoned};

static void on_fd(void *ctx, int fd, short revents)
{
	(void)revents;
	struct session *s = ctx;
	if (fd == s->fds[0])
		flush_stdin(s);
	else
		pump_output(s, fd == s->fds[1] ? 1 : 2, 0);
	finish_if_done(s);
}

static void on_deadline(void *ctx)
{
	struct session *s = ctx;
	s->timed_out = 1;
	proc_kill(s->proc);
}

/* Interest that follows state: stdin while bytes wait for it, output while
 * the session's channel is below its high-water mark. */
static int prepare(void *ctx)
{
	(void)ctx;
	for (int i = 0; i < MAX_SESSIONS; i++) {
		struct session *s = &sessions[i];
		if (!s->ch)
			continue;
		if (s->fds[0] >= 0)
			loop_set_events(s->fds[0], s->stdin_pending.len > 0 ? POLLOUT : 0);
		short out = channel_takes_output(s->ch) ? POLLIN : 0;
		for (int fd = 1; fd <= 2; fd++)
			if (s->fds[fd] >= 0)
				loop_set_events(s->fds[fd], out);
	}
	return -1;
}

void sessions_init(void)
{
	for (int i = 0; i < MAX_SESSIONS; i++)
		sessions[i].fds[0] = sessions[i].fds[1] = sessions[i].fds[2] = -1;
	loop_add_hooks(NULL, prepare, NULL);
}

int session_start(struct channel *ch, uint32_t stream, const struct exec_request *req, const char **stage)
{
	struct session *s = NULL;
	for (int i = 0; i < MAX_SESSIONS && !s; i++)
		if (!sessions[i].ch)
			s = &sessions[i];
	*stage = "spawn";
	if (!s) {
		errno = EMFILE;
		return -1;
	}
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	if (req->with_stdin ? pipe2(in, O_CLOEXEC) < 0
			    : dev_null < 0 && (dev_null = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		goto fail;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		goto fail;
	struct spawn_request spawn = {req->argv, req->envp, req->cwd, {req->with_stdin ? in[0] : dev_null, out[1], err[1]}, 0};
	struct proc *p = proc_spawn(&spawn, ch, &session_client, s, stage);
	if (!p)
		goto fail;
	if (in[0] >= 0)
		close(in[0]);
	close(out[1]);
	close(err[1]);

	s->ch = ch;
	s->stream = stream;
	s->proc = p;
	s->exited = 0;
	s->status = 0;
	s->timed_out = 0;
	s->stdin_eof = 0;
	s->fds[0] = in[1];
	s->fds[1] = out[0];
	s->fds[2] = err[0];
	for (int i = 0; i < 3; i++)
		if (s->fds[i] >= 0) {
			fcntl(s->fds[i], F_SETFL, O_NONBLOCK);
			if (loop_add(s->fds[i], 0, on_fd, s) < 0)
				log_errno("watch session pipe");
		}
	if (req->timeout_ms > 0)
		loop_timer_arm(&s->deadline, monotonic_ms() + req->timeout_ms, on_deadline, s);
	return 0;

fail: {
	int e = errno;
	int *fds[] = {in, out, err};
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			if (fds[i][j] >= 0)
				close(fds[i][j]);
	errno = e;
	return -1;
}
}

void session_stdin(struct channel *ch, uint32_t stream, const uint8_t *data, size_t len)
{
	struct session *s = find(ch, stream);
	if (!s || s->fds[0] < 0 || s->stdin_eof)
		return;
	if (s->stdin_pending.len + len > STDIN_PENDING_MAX || buf_append(&s->stdin_pending, data, len) < 0) {
		log_line("stream %u: stdin backlog over %u bytes; closing stdin", stream, STDIN_PENDING_MAX);
		buf_free(&s->stdin_pending);
		close_fd(s, 0);
		return;
	}
	flush_stdin(s);
}

void session_stdin_eof(struct channel *ch, uint32_t stream)
{
	struct session *s = find(ch, stream);
	if (!s)
		return;
	s->stdin_eof = 1;
	flush_stdin(s);
}

void session_signal(struct channel *ch, uint32_t stream, int signo)
{
	struct session *s = find(ch, stream);
	if (!s || s->exited)
		return;
	/* SIGKILL is a cancel: take everything the command started, including
	 * processes that left its group with setsid, as timeouts do. */
	if (signo == SIGKILL)
		proc_kill(s->proc);
	else
		proc_signal(s->proc, signo);
}

size_t sessions_stdin_backlog(struct channel *ch)
{
	size_t most = 0;
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].ch == ch && sessions[i].stdin_pending.len > most)
			most = sessions[i].stdin_pending.len;
	return most;
}
