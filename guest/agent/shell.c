/*
 * PTY shells; see shell.h and docs/guest-protocol.md §14. The master side of
 * each shell's terminal is in the loop: what the shell writes goes into its
 * ring as soon as it comes (oldest bytes dropped when full), and input waits
 * in a bounded backlog until the terminal takes it. Reads that wait for the
 * shell to go quiet are answered from the loop's timers.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "channel.h"
#include "loop.h"
#include "proc.h"
#include "ring.h"
#include "shell.h"

/* Input the terminal has not taken yet; a host writing faster is told EAGAIN. */
#define INPUT_PENDING_MAX (256u * 1024u)
#define READ_CHUNK (64u * 1024u)
#define MAX_WAITING_READS 64
#define CLOSE_GRACE_MS 1000

struct shell {
	int used;
	char id[33];
	char *cwd;
	int cols, rows;
	struct proc *proc; /* NULL once stopped */
	int master;        /* -1 once the terminal is gone */
	int status;        /* waitpid status, once stopped */
	int64_t started_ms, ended_ms; /* CLOCK_REALTIME */
	int64_t last_output_ms;       /* CLOCK_MONOTONIC */
	struct ring output;
	struct buf input;
	/* SHELL_CLOSE in progress: answered on `closer` once stopped (NULL: its host left). */
	int closing;
	struct channel *closer;
	uint32_t close_stream;
	struct loop_timer close_timer;
};

struct waiting_read {
	struct channel *ch; /* NULL: free slot */
	uint32_t stream;
	struct shell *sh;
	uint64_t cursor;
	size_t max_bytes;
	int64_t wait_ms, requested_ms;
	struct loop_timer timer;
};

static struct shell shells[PYRO_MAX_SHELLS];
static struct waiting_read waiting[MAX_WAITING_READS];
static struct buf reply;

static int64_t realtime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct shell *find(const char *id)
{
	for (int i = 0; i < PYRO_MAX_SHELLS; i++)
		if (shells[i].used && strcmp(shells[i].id, id) == 0)
			return &shells[i];
	return NULL;
}

/* The shell's facts, the start of every reply about it. */
static void begin_reply(const struct shell *sh)
{
	buf_clear(&reply);
	buf_field_str(&reply, PYRO_F_SHELL_ID, sh->id);
	buf_field_str(&reply, PYRO_F_CWD, sh->cwd);
	buf_field_i64(&reply, PYRO_F_COLS, sh->cols);
	buf_field_i64(&reply, PYRO_F_ROWS, sh->rows);
	buf_field_str(&reply, PYRO_F_SHELL_STATE, sh->proc ? "running" : "stopped");
	buf_field_i64(&reply, PYRO_F_STARTED_MS, sh->started_ms);
	if (!sh->proc) {
		int code, signo;
		proc_exit_status(sh->status, &code, &signo);
		buf_field_i64(&reply, PYRO_F_ENDED_MS, sh->ended_ms);
		buf_field_i64(&reply, PYRO_F_EXIT_CODE, code);
		buf_field_i64(&reply, PYRO_F_SIGNAL, signo);
	}
}

static void send_reply(struct channel *ch, uint32_t stream)
{
	send_frame(ch, PYRO_MSG_OK, 0, stream, reply.data, reply.len);
}

static void reply_facts(struct channel *ch, uint32_t stream, const struct shell *sh)
{
	begin_reply(sh);
	send_reply(ch, stream);
}

/* Its output from `cursor`, at most `max` bytes, written straight into the reply. */
static void answer_read(struct channel *ch, uint32_t stream, const struct shell *sh, uint64_t cursor, size_t max)
{
	begin_reply(sh);
	uint64_t start = cursor;
	size_t n = 0;
	if (buf_reserve(&reply, FIELD_HEADER_BYTES + max) == 0) {
		uint8_t *field = reply.data + reply.len;
		n = ring_read(&sh->output, cursor, field + FIELD_HEADER_BYTES, max, &start);
		store_be16(field, PYRO_F_OUTPUT);
		store_be32(field + 2, (uint32_t)n);
		reply.len += FIELD_HEADER_BYTES + n;
	}
	buf_field_i64(&reply, PYRO_F_CURSOR, (int64_t)start);
	buf_field_i64(&reply, PYRO_F_NEXT_CURSOR, (int64_t)(start + n));
	buf_field_i64(&reply, PYRO_F_FIRST_CURSOR, (int64_t)ring_first(&sh->output));
	buf_field_i64(&reply, PYRO_F_END_CURSOR, (int64_t)sh->output.end);
	send_reply(ch, stream);
}

static void drop_waiting(struct waiting_read *w)
{
	loop_timer_disarm(&w->timer);
	w->ch = NULL;
	w->sh = NULL;
}

static void answer_waiting(struct waiting_read *w)
{
	answer_read(w->ch, w->stream, w->sh, w->cursor, w->max_bytes);
	drop_waiting(w);
}

static void answer_waiting_on(const struct shell *sh)
{
	for (int i = 0; i < MAX_WAITING_READS; i++)
		if (waiting[i].ch && waiting[i].sh == sh)
			answer_waiting(&waiting[i]);
}

/* Quiet for wait_ms since the later of the request and the last output, or the cap. */
static void on_wait_timer(void *ctx)
{
	struct waiting_read *w = ctx;
	int64_t since = w->sh->last_output_ms > w->requested_ms ? w->sh->last_output_ms : w->requested_ms;
	int64_t due = since + w->wait_ms;
	int64_t cap = w->requested_ms + PYRO_SHELL_WAIT_CAP_MS;
	if (due > cap)
		due = cap;
	if (monotonic_ms() >= due)
		answer_waiting(w);
	else
		loop_timer_arm(&w->timer, due, on_wait_timer, w);
}

static void watch_master(struct shell *sh)
{
	if (sh->master >= 0)
		loop_set_events(sh->master, POLLIN | (sh->input.len > 0 ? POLLOUT : 0));
}

static void close_master(struct shell *sh)
{
	if (sh->master < 0)
		return;
	loop_remove(sh->master);
	close(sh->master);
	sh->master = -1;
	buf_free(&sh->input);
}

/* Read what the shell wrote: a few chunks a turn, or with `drain` until nothing
 * is left (bounded: a background job writing without pause must not hold the
 * loop). EIO: no process holds the terminal any more. */
static void pump_output(struct shell *sh, int drain)
{
	for (int rounds = 0; sh->master >= 0 && rounds < (drain ? 64 : 4); rounds++) {
		size_t room;
		uint8_t *at = ring_space(&sh->output, &room);
		ssize_t n = read(sh->master, at, room < READ_CHUNK ? room : READ_CHUNK);
		if (n > 0) {
			ring_commit(&sh->output, (size_t)n);
			sh->last_output_ms = monotonic_ms();
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			close_master(sh);
		return;
	}
}

static void flush_input(struct shell *sh)
{
	while (sh->master >= 0 && sh->input.len > 0) {
		ssize_t n = write(sh->master, sh->input.data, sh->input.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) /* the terminal is gone: nobody will read it */
				buf_clear(&sh->input);
			break;
		}
		memmove(sh->input.data, sh->input.data + n, sh->input.len - (size_t)n);
		sh->input.len -= (size_t)n;
	}
	watch_master(sh);
}

static void on_master(void *ctx, int fd, short revents)
{
	(void)fd;
	struct shell *sh = ctx;
	if (revents & POLLOUT)
		flush_input(sh);
	if (revents & (POLLIN | POLLHUP | POLLERR))
		pump_output(sh, 0);
}

static void free_shell(struct shell *sh)
{
	for (int i = 0; i < MAX_WAITING_READS; i++)
		if (waiting[i].ch && waiting[i].sh == sh)
			drop_waiting(&waiting[i]);
	close_master(sh);
	loop_timer_disarm(&sh->close_timer);
	ring_free(&sh->output);
	buf_free(&sh->input);
	free(sh->cwd);
	*sh = (struct shell){0};
	sh->master = -1;
}

static void on_exited(void *ctx, int status)
{
	struct shell *sh = ctx;
	/* Everything it wrote is in the terminal already; what a background job
	 * still holding the terminal writes later is not waited for. */
	pump_output(sh, 1);
	close_master(sh);
	/* A shell's processes go with it, as a command's do. */
	proc_kill(sh->proc);
	proc_release(sh->proc);
	sh->proc = NULL;
	sh->status = status;
	sh->ended_ms = realtime_ms();
	loop_timer_disarm(&sh->close_timer);
	answer_waiting_on(sh);
	if (sh->closing) {
		if (sh->closer)
			reply_facts(sh->closer, sh->close_stream, sh);
		free_shell(sh);
	}
}

/* Power-off: the process is gone; nobody will ask about the shell again. */
static void on_abandoned(void *ctx)
{
	struct shell *sh = ctx;
	sh->proc = NULL;
	free_shell(sh);
}

static const struct proc_client shell_client = {on_exited, on_abandoned};

void shells_init(void)
{
	for (int i = 0; i < PYRO_MAX_SHELLS; i++)
		shells[i].master = -1;
}

static int reply_error(struct channel *ch, uint32_t stream, int err, const char *message)
{
	send_error(ch, stream, err, "shell", message);
	return -1;
}

/* The shell named `id`, or an ERROR sent and NULL. `running`: it must not have stopped. */
static struct shell *lookup(struct channel *ch, uint32_t stream, const char *id, int running)
{
	struct shell *sh = find(id);
	if (!sh)
		reply_error(ch, stream, ENOENT, "no such shell");
	else if (running && !sh->proc)
		reply_error(ch, stream, EPIPE, "the shell has stopped");
	else
		return sh;
	return NULL;
}

/* A new terminal of cols x rows: the master (non-blocking) in *master, the slave returned; -1 with errno. */
static int open_terminal(int cols, int rows, int *master)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -1;
	struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	const char *name;
	int s = -1;
	if (grantpt(m) == 0 && unlockpt(m) == 0 && (name = ptsname(m)) != NULL &&
	    ioctl(m, TIOCSWINSZ, &size) == 0)
		s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		int e = errno;
		close(m);
		errno = e;
		return -1;
	}
	fcntl(m, F_SETFL, O_NONBLOCK);
	*master = m;
	return s;
}

void shell_open(struct channel *ch, uint32_t stream, const struct shell_open_request *req)
{
	if (find(req->id)) {
		reply_error(ch, stream, EEXIST, "a shell with this id is open");
		return;
	}
	struct shell *sh = NULL;
	for (int i = 0; i < PYRO_MAX_SHELLS && !sh; i++)
		if (!shells[i].used)
			sh = &shells[i];
	if (!sh) {
		reply_error(ch, stream, EMFILE, "too many shells open (at most 16): close one first");
		return;
	}
	static char *bash[] = {"/bin/bash", "-i", NULL}, *sh_i[] = {"/bin/sh", "-i", NULL};
	char **argv = req->argv[0] ? req->argv : access(bash[0], X_OK) == 0 ? bash : sh_i;
	char message[512];
	const char *stage = "spawn";
	int master = -1;
	int slave = open_terminal(req->cols, req->rows, &master);
	if (slave < 0 || ring_init(&sh->output, PYRO_SHELL_RING_BYTES) < 0 || !(sh->cwd = strdup(req->cwd)))
		goto fail;
	struct spawn_request spawn = {argv, req->envp, req->cwd, {slave, slave, slave}, 1};
	sh->proc = proc_spawn(&spawn, NULL, &shell_client, sh, &stage);
	if (!sh->proc)
		goto fail;
	close(slave);
	sh->used = 1;
	snprintf(sh->id, sizeof sh->id, "%s", req->id);
	sh->cols = req->cols;
	sh->rows = req->rows;
	sh->master = master;
	sh->started_ms = realtime_ms();
	sh->last_output_ms = monotonic_ms();
	if (loop_add(master, POLLIN, on_master, sh) < 0)
		log_errno("watch shell terminal");
	reply_facts(ch, stream, sh);
	return;

fail: {
	int err = errno;
	if (slave >= 0)
		close(slave);
	if (master >= 0)
		close(master);
	ring_free(&sh->output);
	free(sh->cwd);
	*sh = (struct shell){0};
	sh->master = -1;
	snprintf(message, sizeof message, "%s: %s", strerror(err), strcmp(stage, "chdir") == 0 ? req->cwd : argv[0]);
	send_error(ch, stream, err, stage, message);
}
}

void shell_read(struct channel *ch, uint32_t stream, const char *id, uint64_t cursor, size_t max_bytes,
		int64_t wait_idle_ms)
{
	struct shell *sh = lookup(ch, stream, id, 0);
	if (!sh)
		return;
	if (cursor > sh->output.end) {
		reply_error(ch, stream, ERANGE, "the cursor is past the end of the shell's output");
		return;
	}
	if (max_bytes > PYRO_SHELL_READ_MAX_BYTES)
		max_bytes = PYRO_SHELL_READ_MAX_BYTES;
	/* A stopped shell writes nothing more: no reason to wait. */
	if (wait_idle_ms <= 0 || !sh->proc) {
		answer_read(ch, stream, sh, cursor, max_bytes);
		return;
	}
	struct waiting_read *w = NULL;
	for (int i = 0; i < MAX_WAITING_READS && !w; i++)
		if (!waiting[i].ch)
			w = &waiting[i];
	if (!w) {
		reply_error(ch, stream, EBUSY, "too many shell reads are waiting");
		return;
	}
	*w = (struct waiting_read){.ch = ch, .stream = stream, .sh = sh, .cursor = cursor, .max_bytes = max_bytes,
				   .wait_ms = wait_idle_ms, .requested_ms = monotonic_ms()};
	on_wait_timer(w);
}

void shell_write(struct channel *ch, uint32_t stream, const char *id, const uint8_t *input, size_t len)
{
	struct shell *sh = lookup(ch, stream, id, 1);
	if (!sh)
		return;
	if (sh->master < 0)
		reply_error(ch, stream, EPIPE, "the shell's terminal is closed");
	else if (sh->input.len + len > INPUT_PENDING_MAX || buf_append(&sh->input, input, len) < 0)
		reply_error(ch, stream, EAGAIN, "the shell is not reading its input; try again later");
	else {
		/* The reply goes out before the terminal has the input: on a guest of
		 * one vCPU, the shell woken by it would otherwise run first. */
		begin_reply(sh);
		buf_field_i64(&reply, PYRO_F_INPUT_BYTES, (int64_t)len);
		send_reply(ch, stream);
		channel_flush(ch);
		flush_input(sh);
	}
}

/* HUP, TERM and KILL go to the terminal's foreground job and the shell; INT
 * only to the foreground job, as Ctrl-C would (the shell itself ignores it). */
static void deliver(struct shell *sh, int signo)
{
	pid_t foreground = sh->master >= 0 ? tcgetpgrp(sh->master) : -1;
	if (foreground > 0)
		kill(-foreground, signo);
	if (signo != SIGINT || foreground <= 0)
		proc_signal(sh->proc, signo);
}

void shell_signal(struct channel *ch, uint32_t stream, const char *id, int signo)
{
	struct shell *sh = lookup(ch, stream, id, 1);
	if (!sh)
		return;
	deliver(sh, signo);
	reply_facts(ch, stream, sh);
}

static void on_close_grace(void *ctx)
{
	struct shell *sh = ctx;
	if (sh->proc)
		proc_kill(sh->proc); /* its exit finishes the close */
}

void shell_close(struct channel *ch, uint32_t stream, const char *id)
{
	struct shell *sh = lookup(ch, stream, id, 0);
	if (!sh)
		return;
	if (sh->closing) {
		reply_error(ch, stream, EALREADY, "the shell is being closed");
		return;
	}
	if (!sh->proc) {
		reply_facts(ch, stream, sh);
		free_shell(sh);
		return;
	}
	sh->closing = 1;
	sh->closer = ch;
	sh->close_stream = stream;
	deliver(sh, SIGHUP);
	loop_timer_arm(&sh->close_timer, monotonic_ms() + CLOSE_GRACE_MS, on_close_grace, sh);
}

void shell_resize(struct channel *ch, uint32_t stream, const char *id, int cols, int rows)
{
	struct shell *sh = lookup(ch, stream, id, 1);
	if (!sh)
		return;
	struct winsize size = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
	/* The kernel sends the foreground job SIGWINCH. */
	if (sh->master >= 0 && ioctl(sh->master, TIOCSWINSZ, &size) < 0) {
		reply_error(ch, stream, errno, strerror(errno));
		return;
	}
	sh->cols = cols;
	sh->rows = rows;
	reply_facts(ch, stream, sh);
}

void shells_channel_ended(struct channel *ch)
{
	for (int i = 0; i < MAX_WAITING_READS; i++)
		if (waiting[i].ch == ch)
			drop_waiting(&waiting[i]);
	for (int i = 0; i < PYRO_MAX_SHELLS; i++)
		if (shells[i].used && shells[i].closer == ch)
			shells[i].closer = NULL;
}
