/*
 * Exec sessions: one child process per EXEC stream, in its own session and
 * process group and, when cgroup2 is mounted, its own cgroup, so that a
 * timeout or a lost host kills everything the command started.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#define STDIN_PENDING_MAX (8u * 1024u * 1024u)
#define CGROUP_ROOT "/sys/fs/cgroup"
#define MAX_LINGERING_CGROUPS 256

extern char **environ;

struct session {
	uint32_t stream; /* 0: free slot */
	int abandoned;   /* the host that asked is gone: finish without reporting */
	pid_t pid;       /* 0 once reaped */
	int status;
	int fds[3];      /* stdin write end, stdout and stderr read ends; -1 when closed */
	struct buf stdin_pending;
	int stdin_eof;   /* close stdin once pending bytes are written */
	int64_t deadline_ms;
	int timed_out;
	char cgroup[64]; /* "" without cgroup2 */
};

static struct session sessions[MAX_SESSIONS];
static char lingering[MAX_LINGERING_CGROUPS][64];
static unsigned cgroup_counter;

void sessions_init(void)
{
	for (int i = 0; i < MAX_SESSIONS; i++) {
		sessions[i].stream = 0;
		sessions[i].fds[0] = sessions[i].fds[1] = sessions[i].fds[2] = -1;
	}
}

static struct session *find(uint32_t stream)
{
	if (stream == 0)
		return NULL;
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].stream == stream && !sessions[i].abandoned)
			return &sessions[i];
	return NULL;
}

int session_exists(uint32_t stream) { return find(stream) != NULL; }

int sessions_active(void)
{
	int n = 0;
	for (int i = 0; i < MAX_SESSIONS; i++)
		n += sessions[i].stream != 0 && !sessions[i].abandoned;
	return n;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -1 : 0;
}

static void make_cgroup(struct session *s)
{
	s->cgroup[0] = 0;
	char path[64];
	snprintf(path, sizeof path, CGROUP_ROOT "/pyro-exec-%u", ++cgroup_counter);
	if (mkdir(path, 0755) == 0)
		snprintf(s->cgroup, sizeof s->cgroup, "%s", path);
}

static void remove_cgroup(const char *path)
{
	if (rmdir(path) == 0 || errno == ENOENT)
		return;
	/* Still has processes (a background job that outlived its command). */
	for (int i = 0; i < MAX_LINGERING_CGROUPS; i++)
		if (!lingering[i][0]) {
			snprintf(lingering[i], sizeof lingering[i], "%s", path);
			return;
		}
}

static void retry_lingering_cgroups(void)
{
	for (int i = 0; i < MAX_LINGERING_CGROUPS; i++)
		if (lingering[i][0] && (rmdir(lingering[i]) == 0 || errno == ENOENT))
			lingering[i][0] = 0;
}

static void kill_all(struct session *s)
{
	if (s->cgroup[0]) {
		char path[96];
		snprintf(path, sizeof path, "%s/cgroup.kill", s->cgroup);
		write_file(path, "1");
	}
	if (s->pid > 0)
		kill(-s->pid, SIGKILL);
}

static void free_session(struct session *s)
{
	for (int i = 0; i < 3; i++)
		close_fd(&s->fds[i]);
	buf_free(&s->stdin_pending);
	if (s->cgroup[0])
		remove_cgroup(s->cgroup);
	s->cgroup[0] = 0;
	s->stream = 0;
	s->abandoned = 0;
	s->pid = 0;
}

/* Runs in a vfork child, on the agent's memory: system calls, stack buffers and
 * musl functions that use nothing else (snprintf, execvp). No heap; the only
 * globals touched are errno (the agent reads it only after a failed vfork) and
 * environ, which spawn_child set to the request's for this. The agent handles
 * no signals, so none can run its code here. */
__attribute__((noreturn)) static void child(const struct exec_request *req, int in, int out, int err,
					    int report, const char *cgroup)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (cgroup[0]) {
		char path[96];
		snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
		write_file(path, "0");
	}
	dup2(in, 0);
	dup2(out, 1);
	dup2(err, 2);
	const char *stage = "chdir";
	if (chdir(req->cwd) == 0) {
		stage = "exec";
		execvp(req->argv[0], req->argv); /* environ is the request's (spawn_child) */
	}
	/* Tell the agent why, through the close-on-exec report pipe. */
	int e = errno;
	char msg[8];
	memcpy(msg, &e, 4);
	memcpy(msg + 4, stage[0] == 'c' ? "cdir" : "exec", 4);
	ssize_t ignored = write(report, msg, sizeof msg);
	(void)ignored;
	_exit(e == ENOENT ? 127 : 126);
}

/* vfork: the child borrows the agent's memory until it execs, so no page tables are
 * copied and nothing faults copy-on-write; under TCG that is code the first exec of
 * a restored VM need not translate. Kept apart so no caller's locals live across it.
 * environ is the request's while the child runs (execvp searches its PATH), and the
 * agent's own again once the child has exec'd or exited. */
static pid_t spawn_child(const struct exec_request *req, int in, int out, int err, int report, const char *cgroup)
{
	char **agent_environ = environ;
	environ = req->envp;
	pid_t pid = vfork();
	if (pid == 0)
		child(req, in, out, err, report, cgroup);
	environ = agent_environ;
	return pid;
}

int session_start(uint32_t stream, const struct exec_request *req, const char **stage)
{
	struct session *s = NULL;
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].stream == 0) {
			s = &sessions[i];
			break;
		}
	*stage = "spawn";
	if (!s) {
		errno = EMFILE;
		return -1;
	}
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
	if (req->with_stdin ? pipe2(in, O_CLOEXEC) < 0
			    : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		goto fail;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0)
		goto fail;
	make_cgroup(s);
	pid_t pid = spawn_child(req, in[0], out[1], err[1], report[1], s->cgroup);
	if (pid < 0)
		goto fail;

	/* Registered before anything else can reap it (the spawn-guard rule). */
	s->stream = stream;
	s->abandoned = 0;
	s->pid = pid;
	s->status = 0;
	s->timed_out = 0;
	s->stdin_eof = 0;
	s->deadline_ms = req->timeout_ms > 0 ? monotonic_ms() + req->timeout_ms : 0;
	s->fds[0] = in[1];
	s->fds[1] = out[0];
	s->fds[2] = err[0];
	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(report[1]);
	for (int i = 0; i < 3; i++)
		if (s->fds[i] >= 0)
			fcntl(s->fds[i], F_SETFL, O_NONBLOCK);

	/* Blocks only until the child execs or fails: a successful exec closes it. */
	char msg[8];
	ssize_t n;
	while ((n = read(report[0], msg, sizeof msg)) < 0 && errno == EINTR) {
	}
	close(report[0]);
	if (n == (ssize_t)sizeof msg) {
		int e;
		memcpy(&e, msg, 4);
		*stage = memcmp(msg + 4, "cdir", 4) == 0 ? "chdir" : "exec";
		/* The child exits at once; reap it here so no EXIT follows the ERROR. */
		waitpid(pid, NULL, 0);
		s->pid = 0;
		free_session(s);
		errno = e;
		return -1;
	}
	return 0;

fail: {
	int e = errno;
	int *fds[] = {in, out, err, report};
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 2; j++)
			if (fds[i][j] >= 0)
				close(fds[i][j]);
	if (s->cgroup[0]) {
		rmdir(s->cgroup);
		s->cgroup[0] = 0;
	}
	errno = e;
	return -1;
}
}

static void flush_stdin(struct session *s)
{
	while (s->fds[0] >= 0 && s->stdin_pending.len > 0) {
		ssize_t n = write(s->fds[0], s->stdin_pending.data, s->stdin_pending.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) /* EPIPE: the command stopped reading */
				close_fd(&s->fds[0]);
			return;
		}
		memmove(s->stdin_pending.data, s->stdin_pending.data + n, s->stdin_pending.len - (size_t)n);
		s->stdin_pending.len -= (size_t)n;
	}
	if (s->stdin_eof && s->stdin_pending.len == 0)
		close_fd(&s->fds[0]);
}

void session_stdin(uint32_t stream, const uint8_t *data, size_t len)
{
	struct session *s = find(stream);
	if (!s || s->fds[0] < 0 || s->stdin_eof)
		return;
	if (s->stdin_pending.len + len > STDIN_PENDING_MAX || buf_append(&s->stdin_pending, data, len) < 0) {
		log_line("stream %u: stdin backlog over %u bytes; closing stdin", stream, STDIN_PENDING_MAX);
		buf_free(&s->stdin_pending);
		close_fd(&s->fds[0]);
		return;
	}
	flush_stdin(s);
}

void session_stdin_eof(uint32_t stream)
{
	struct session *s = find(stream);
	if (!s)
		return;
	s->stdin_eof = 1;
	flush_stdin(s);
}

void session_signal(uint32_t stream, int signo)
{
	struct session *s = find(stream);
	if (!s || s->pid <= 0)
		return;
	/* SIGKILL is a cancel: take everything the command started, including
	 * processes that left its group with setsid, as timeouts do. */
	if (signo == SIGKILL)
		kill_all(s);
	else
		kill(-s->pid, signo);
}

void sessions_abandon(void)
{
	for (int i = 0; i < MAX_SESSIONS; i++) {
		struct session *s = &sessions[i];
		if (s->stream == 0 || s->abandoned)
			continue;
		kill_all(s);
		s->abandoned = 1;
		close_fd(&s->fds[0]);
		close_fd(&s->fds[1]);
		close_fd(&s->fds[2]);
		if (s->pid == 0)
			free_session(s);
	}
}

size_t sessions_stdin_backlog(void)
{
	size_t most = 0;
	for (int i = 0; i < MAX_SESSIONS; i++)
		if (sessions[i].stream != 0 && sessions[i].stdin_pending.len > most)
			most = sessions[i].stdin_pending.len;
	return most;
}

size_t sessions_pollfds(struct pollfd *pfds, size_t start, size_t max, int read_output)
{
	size_t n = start;
	for (int i = 0; i < MAX_SESSIONS && n + 3 <= max; i++) {
		struct session *s = &sessions[i];
		if (s->stream == 0 || s->abandoned)
			continue;
		if (s->fds[0] >= 0 && s->stdin_pending.len > 0)
			pfds[n++] = (struct pollfd){s->fds[0], POLLOUT, 0};
		for (int fd = 1; fd <= 2; fd++)
			if (s->fds[fd] >= 0 && read_output)
				pfds[n++] = (struct pollfd){s->fds[fd], POLLIN, 0};
	}
	return n;
}

static struct session *owner_of(int fd, int *which)
{
	for (int i = 0; i < MAX_SESSIONS; i++)
		for (int j = 0; j < 3; j++)
			if (sessions[i].stream && sessions[i].fds[j] == fd) {
				*which = j;
				return &sessions[i];
			}
	return NULL;
}

/* Read what the command wrote. `drain`: until empty, ignoring the high-water mark. */
static void pump_output(struct session *s, int which, int drain)
{
	for (int rounds = 0; s->fds[which] >= 0 && (drain || rounds < 4); rounds++) {
		long n = send_data_from_fd(s->stream, (uint8_t)which, s->fds[which], 64 * 1024);
		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			close_fd(&s->fds[which]);
		return;
	}
}

static void finish_if_done(struct session *s)
{
	if (s->pid != 0 || s->fds[1] >= 0 || s->fds[2] >= 0)
		return;
	int code = 0, signo = 0;
	if (WIFEXITED(s->status))
		code = WEXITSTATUS(s->status);
	else if (WIFSIGNALED(s->status)) {
		signo = WTERMSIG(s->status);
		code = 128 + signo;
	}
	if (!s->abandoned)
		send_exit(s->stream, code, signo, s->timed_out);
	free_session(s);
}

void sessions_handle_poll(struct pollfd *pfds, size_t start, size_t count)
{
	for (size_t i = start; i < start + count; i++) {
		if (!pfds[i].revents)
			continue;
		int which;
		struct session *s = owner_of(pfds[i].fd, &which);
		if (!s)
			continue;
		if (which == 0)
			flush_stdin(s);
		else
			pump_output(s, which, 0);
		finish_if_done(s);
	}
}

void sessions_reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < MAX_SESSIONS; i++) {
			struct session *s = &sessions[i];
			if (s->stream == 0 || s->pid != pid)
				continue;
			s->pid = 0;
			s->status = status;
			/* Everything the command itself wrote is already in the pipes; a
			 * background job still holding them must not delay the result. */
			pump_output(s, 1, 1);
			pump_output(s, 2, 1);
			close_fd(&s->fds[0]);
			close_fd(&s->fds[1]);
			close_fd(&s->fds[2]);
			finish_if_done(s);
		}
	}
	retry_lingering_cgroups();
}

int sessions_check_deadlines(void)
{
	int64_t now = monotonic_ms(), next = -1;
	for (int i = 0; i < MAX_SESSIONS; i++) {
		struct session *s = &sessions[i];
		if (s->stream == 0 || s->deadline_ms == 0 || s->pid == 0)
			continue;
		if (s->deadline_ms <= now) {
			s->timed_out = 1;
			s->deadline_ms = 0;
			kill_all(s);
			continue;
		}
		int64_t left = s->deadline_ms - now;
		if (next < 0 || left < next)
			next = left;
	}
	return next > 0x7fffffff ? 0x7fffffff : (int)next;
}
