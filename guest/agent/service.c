/*
 * `pyro-agent service ...`: long-running services in a workspace, for the host
 * to run as a command (`/proc/1/exe service ...`, never as PID 1) and parse.
 *
 *   service [--root DIR] start NAME --cwd DIR [--env K=V]... [--ready-type T --ready-target X
 *                              [--timeout-ms N --interval-ms M]] -- COMMAND
 *   service [--root DIR] wait NAME --type file|tcp|http|command --target X --timeout-ms N --interval-ms M
 *   service [--root DIR] stop NAME [--timeout-ms N]                (N defaults to 5000)
 *   service [--root DIR] status NAME
 *   service [--root DIR] list
 *   service [--root DIR] logs NAME [--tail-lines N]
 *
 * State. ROOT is /run/pyro-services, a tmpfs (mode 0700) this mounts when it
 * is not mounted yet: logs may hold secrets, and the guest's disk is a file on
 * the host. `--root DIR` (tests) uses DIR as it is, with no mount and no
 * cgroups. Each service has ROOT/NAME/ holding `spec` (the command, cwd and
 * readiness, for records), `env`, `state`, `ready`, `stop` (why it is being
 * stopped), `stdout` and `stderr` (the command's output, appended), and
 * `lock`, which its supervisor holds (flock) for as long as it lives: a free
 * lock means no supervisor, whatever `state` says.
 *
 * start. Refuses a NAME whose supervisor lives (exit 7); a stopped one is
 * replaced. Forks a SUPERVISOR that leaves the exec's world: a new session,
 * stdio on /dev/null, and (with cgroup2, default ROOT only) its own cgroup
 * /sys/fs/cgroup/pyro-service-NAME/supervisor, so the agent's kill of the
 * exec's cgroup and process group does not reach it. The supervisor starts
 * `/bin/sh -c COMMAND` in cwd, with exactly the --env environment, in a new
 * process group and the cgroup pyro-service-NAME/command, stdout and stderr
 * appended to the log files; it writes `state` (running) once the shell has
 * exec'd, and then start prints the record and exits 0. When the command
 * exits, whatever else it left in its cgroup (or its group) is killed, and
 * `state` records how it ended; then the supervisor exits (PID 1 reaps it).
 * A command that cannot be started (a missing cwd) leaves nothing: exit 10.
 * With --timeout-ms and --interval-ms, start then waits for the readiness as
 * `wait` does, in the same process (one exec for the host), and ends as wait.
 *
 * wait. Polls the readiness every interval, in this one process: file = the
 * path exists (lstat); tcp = a connect to HOST:PORT succeeds; http = an
 * HTTP/1.0 GET of http://HOST[:PORT]/PATH answers 2xx or 3xx; command =
 * `/bin/sh -c X` exits 0, in the service's cwd and environment. Each attempt
 * is bounded by what is left of the timeout. Ready: `ready` gets the time, the
 * record is printed, exit 0. The service exiting first: record printed, exit
 * 8. Timeout: the service is stopped with stop_reason ready_timeout (state
 * failed), the record printed, exit 9.
 *
 * stop. SIGTERM to the command's process group, then after N ms SIGKILL to
 * its cgroup (cgroup.kill) and group; waits for the supervisor to record the
 * exit and prints the record. stop_reason is "sigterm", or "sigkill" when it
 * came to that. A service already ended is printed as it is.
 *
 * Records (stdout of start, wait, stop, status, list). A FIELD is bytes
 * without NUL ended by one NUL. A record is 15 fields:
 *   "service" NAME STATE COMMAND CWD READY_TYPE READY_TARGET PID PGID
 *   STARTED_AT READY_AT ENDED_AT EXIT_CODE SIGNAL STOP_REASON
 * then, after all records, "end" COUNT (2 fields). STATE is running, stopped
 * or failed; times are milliseconds since the epoch (CLOCK_REALTIME); an empty
 * field is "none" (not ready, not ended, no signal). STOP_REASON is sigterm,
 * sigkill, ready_timeout, exited (it ended by itself: stopped with exit code
 * 0, else failed) or supervisor_lost (its supervisor died: failed). list
 * prints every service, in no order.
 *
 * logs. The stdout log's bytes to stdout and the stderr log's to stderr, whole
 * or their last N lines with --tail-lines N; a failure exits non-zero with
 * the reason as the last line of stderr.
 *
 * Errors: one line on stderr, `service: OP: NAME: WHY`, and an exit status:
 *   1 any other failure   2 usage (or a bad NAME)   3 no such service
 *   7 already running     8 exited before it was ready   9 not ready in time
 *   10 the command could not be started (WHY says which step: chdir or exec)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "service.h"
#include "sysfile.h"

enum {
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_NOT_FOUND = 3,
	EXIT_RUNNING = 7,
	EXIT_ENDED = 8,
	EXIT_NOT_READY = 9,
	EXIT_NOT_STARTED = 10,
};

#define DEFAULT_ROOT "/run/pyro-services"
#define CGROUP_ROOT "/sys/fs/cgroup"
#define MAX_NAME 64
#define MAX_FILE 65536 /* spec, env and state files */
#define MAX_ENV 256
#define DEFAULT_STOP_MS 5000
/* After SIGKILL, how long the supervisor may take to record the exit. */
#define KILL_WAIT_MS 5000
/* A ready_timeout's stop: SIGTERM's grace before SIGKILL. */
#define READY_TIMEOUT_GRACE_MS 2000
/* Status probes and a start race for the lock briefly: a start retries this long. */
#define LOCK_RETRY_MS 200

static const char *root = DEFAULT_ROOT;
static int use_cgroups = 1;
static const char *op = "?";
static const char *name = "";

static void usage(void)
{
	fprintf(stderr, "service: usage: service [--root DIR] start NAME --cwd DIR [--env K=V]... "
			"[--ready-type T --ready-target X] -- COMMAND | wait NAME --type T --target X "
			"--timeout-ms N --interval-ms M | stop NAME [--timeout-ms N] | status NAME | list | "
			"logs NAME [--tail-lines N]\n");
	exit(EXIT_USAGE);
}

__attribute__((noreturn)) static void fail(int status, const char *why)
{
	fprintf(stderr, "service: %s: %s: %s\n", op, name, why);
	exit(status);
}

__attribute__((noreturn)) static void fail_errno(const char *what)
{
	char why[256];
	snprintf(why, sizeof why, "%s: %s", what, strerror(errno));
	fail(errno == ENOENT ? EXIT_NOT_FOUND : EXIT_FAILED, why);
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	if (ms <= 0)
		return;
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
	while (nanosleep(&t, &t) < 0 && errno == EINTR) {
	}
}

static uint64_t number_arg(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v > (1ull << 40))
		usage();
	return v;
}

/* The host's rule (docs/public-contract.md): ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ */
static int valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MAX_NAME)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return 0;
	}
	return 1;
}

static char *path_of(char *buf, size_t size, const char *file)
{
	snprintf(buf, size, "%s/%s/%s", root, name, file);
	return buf;
}

static char *cgroup_of(char *buf, size_t size, const char *leaf, const char *file)
{
	snprintf(buf, size, CGROUP_ROOT "/pyro-service-%s%s%s%s%s", name, leaf ? "/" : "", leaf ? leaf : "",
		 file ? "/" : "", file ? file : "");
	return buf;
}

/* A file of NUL-ended fields, written whole under a temporary name and renamed in. */
static int write_fields(const char *file, const char *const *fields, size_t count)
{
	char path[512], tmp[520];
	path_of(path, sizeof path, file);
	snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int bad = 0;
	for (size_t i = 0; i < count && !bad; i++)
		bad = write_full(fd, fields[i], strlen(fields[i]) + 1) < 0;
	if (close(fd) < 0 || bad || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* A small file's fields, into buf (NUL-ended strings one after another); how many, or -1. */
static int read_fields(const char *file, char *buf, size_t size, const char **fields, int max)
{
	char path[512];
	int fd = open(path_of(path, sizeof path, file), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	ssize_t n;
	while (len < size && (n = read(fd, buf + len, size - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len == 0 || len == size || buf[len - 1] != 0)
		return -1;
	int count = 0;
	for (size_t at = 0; at < len && count < max; at += strlen(buf + at) + 1)
		fields[count++] = buf + at;
	return count;
}

static void number_text(char *buf, size_t size, int64_t v) { snprintf(buf, size, "%lld", (long long)v); }

/* ---- the lock: held by the supervisor while it lives ---- */

/* The lock file's fd, locked exclusively; -1 (errno EWOULDBLOCK) if a supervisor holds it. */
static int take_lock(int nonblock)
{
	char path[512];
	int fd = open(path_of(path, sizeof path, "lock"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | (nonblock ? LOCK_NB : 0)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Whether a supervisor lives (holds the lock); a probe, taking it shared for an instant. */
static int supervisor_alive(void)
{
	char path[512];
	int fd = open(path_of(path, sizeof path, "lock"), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int alive = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	close(fd);
	return alive;
}

/* ---- the record ---- */

enum { ST_STATE, ST_PID, ST_PGID, ST_STARTED, ST_ENDED, ST_EXIT, ST_SIGNAL, ST_REASON, ST_COUNT };
enum { SP_COMMAND, SP_CWD, SP_READY_TYPE, SP_READY_TARGET, SP_COUNT };

struct record {
	char spec_buf[MAX_FILE], state_buf[4096], ready_buf[64];
	const char *spec[SP_COUNT], *state[ST_COUNT], *ready_at;
};

/* The service's record, or 0 if it has none (never started, or mid-start). */
static int load_record(struct record *r)
{
	if (read_fields("spec", r->spec_buf, sizeof r->spec_buf, r->spec, SP_COUNT) != SP_COUNT ||
	    read_fields("state", r->state_buf, sizeof r->state_buf, r->state, ST_COUNT) != ST_COUNT)
		return 0;
	const char *ready[1];
	r->ready_at = read_fields("ready", r->ready_buf, sizeof r->ready_buf, ready, 1) == 1 ? ready[0] : "";
	/* "running" with no supervisor: it died (killed from inside the guest). */
	if (!strcmp(r->state[ST_STATE], "running") && !supervisor_alive()) {
		r->state[ST_STATE] = "failed";
		r->state[ST_REASON] = "supervisor_lost";
	}
	return 1;
}

static void print_record(const struct record *r)
{
	const char *f[] = {"service", name, r->state[ST_STATE], r->spec[SP_COMMAND], r->spec[SP_CWD],
			   r->spec[SP_READY_TYPE], r->spec[SP_READY_TARGET], r->state[ST_PID], r->state[ST_PGID],
			   r->state[ST_STARTED], r->ready_at, r->state[ST_ENDED], r->state[ST_EXIT],
			   r->state[ST_SIGNAL], r->state[ST_REASON]};
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		fwrite(f[i], 1, strlen(f[i]) + 1, stdout);
}

static void print_end(int count)
{
	printf("end%c%d%c", 0, count, 0);
	if (fflush(stdout) != 0)
		exit(EXIT_FAILED);
}

/* Print the service's record alone and exit with `status`. */
__attribute__((noreturn)) static void print_one(int status)
{
	struct record r;
	if (!load_record(&r))
		fail(EXIT_NOT_FOUND, "no such service");
	print_record(&r);
	print_end(1);
	exit(status);
}

/* ---- the state directory ---- */

/* The default root: a tmpfs of its own, mounted by whichever call comes first. */
static void ensure_root(void)
{
	if (strcmp(root, DEFAULT_ROOT) != 0)
		return;
	mkdir("/run", 0755);
	int run = open("/run", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (run < 0 || flock(run, LOCK_EX) < 0)
		fail_errno("/run");
	if (mkdir(DEFAULT_ROOT, 0700) < 0 && errno != EEXIST)
		fail_errno(DEFAULT_ROOT);
	struct stat parent, self;
	if (stat("/run", &parent) < 0 || stat(DEFAULT_ROOT, &self) < 0)
		fail_errno(DEFAULT_ROOT);
	if (self.st_dev == parent.st_dev &&
	    mount("tmpfs", DEFAULT_ROOT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
		fail_errno("mount tmpfs");
	close(run);
}

static void open_service_dir(int create)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", root, name);
	if (create && mkdir(path, 0700) < 0 && errno != EEXIST)
		fail_errno("mkdir");
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		fail(EXIT_NOT_FOUND, "no such service");
}

static void remove_files(void)
{
	static const char *const files[] = {"state", "ready", "stop", "spec", "env", "stdout", "stderr"};
	char path[512];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		unlink(path_of(path, sizeof path, files[i]));
}

/* ---- the supervisor ---- */

struct start_spec {
	const char *command, *cwd;
	char *env[MAX_ENV + 1];
};

/* The child's report to the supervisor when it cannot start: errno, then which step. */
struct start_failure {
	int err;
	char step[8];
};

__attribute__((noreturn)) static void command_child(const struct start_spec *s, int report, int out, int err)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	if (use_cgroups) {
		char path[512];
		write_sysfile(cgroup_of(path, sizeof path, "command", "cgroup.procs"), "0");
	}
	int null = open("/dev/null", O_RDONLY);
	dup2(null, 0);
	dup2(out, 1);
	dup2(err, 2);
	struct start_failure f = {0, "chdir"};
	if (chdir(s->cwd) == 0) {
		strcpy(f.step, "exec");
		char *argv[] = {"sh", "-c", (char *)s->command, NULL};
		execve("/bin/sh", argv, (char **)s->env);
	}
	f.err = errno;
	ssize_t ignored = write(report, &f, sizeof f);
	(void)ignored;
	_exit(127);
}

/* Everything the command left behind: its cgroup, and its process group. */
static void kill_command(pid_t pgid)
{
	if (use_cgroups) {
		char path[512];
		write_sysfile(cgroup_of(path, sizeof path, "command", "cgroup.kill"), "1");
	}
	kill(-pgid, SIGKILL);
}

static void write_state(const char *state, pid_t pid, int64_t started, int64_t ended, int status,
			const char *reason)
{
	char p[24], s[24], e[24], code[24] = "", sig[24] = "";
	number_text(p, sizeof p, pid);
	number_text(s, sizeof s, started);
	if (ended)
		number_text(e, sizeof e, ended);
	else
		e[0] = 0;
	if (ended && WIFEXITED(status))
		number_text(code, sizeof code, WEXITSTATUS(status));
	if (ended && WIFSIGNALED(status)) {
		number_text(code, sizeof code, 128 + WTERMSIG(status));
		number_text(sig, sizeof sig, WTERMSIG(status));
	}
	const char *fields[ST_COUNT] = {state, p, p, s, e, code, sig, reason};
	write_fields("state", fields, ST_COUNT);
}

/* How the command ended: what a stop asked for, else it ended by itself. */
static void record_end(pid_t pid, int64_t started, int status)
{
	char buf[64];
	const char *stop[1];
	const char *reason = read_fields("stop", buf, sizeof buf, stop, 1) == 1 ? stop[0] : "exited";
	const char *state;
	if (!strcmp(reason, "exited"))
		state = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "stopped" : "failed";
	else
		state = !strcmp(reason, "ready_timeout") ? "failed" : "stopped";
	write_state(state, pid, started, now_ms(), status, reason);
}

/* In the supervisor: start the command, tell the parent through `started`, wait for the end. */
__attribute__((noreturn)) static void supervise(const struct start_spec *s, int started)
{
	char path[512];
	setsid();
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(null, 1);
	dup2(null, 2);
	if (use_cgroups) {
		mkdir(cgroup_of(path, sizeof path, NULL, NULL), 0755);
		mkdir(cgroup_of(path, sizeof path, "supervisor", NULL), 0755);
		mkdir(cgroup_of(path, sizeof path, "command", NULL), 0755);
		/* Out of the exec's cgroup first: the agent kills that one when its host goes. */
		if (write_sysfile(cgroup_of(path, sizeof path, "supervisor", "cgroup.procs"), "0") < 0)
			use_cgroups = 0;
	}
	int out = open(path_of(path, sizeof path, "stdout"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int err = open(path_of(path, sizeof path, "stderr"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int report[2];
	struct start_failure f = {0, "spawn"};
	if (out < 0 || err < 0 || pipe2(report, O_CLOEXEC) < 0) {
		f.err = errno;
		write_full(started, &f, sizeof f);
		_exit(1);
	}
	int64_t start_time = now_ms();
	pid_t pid = fork();
	if (pid == 0)
		command_child(s, report[1], out, err);
	close(report[1]);
	close(out);
	close(err);
	if (pid < 0) {
		f.err = errno;
		write_full(started, &f, sizeof f);
		_exit(1);
	}
	ssize_t n;
	while ((n = read(report[0], &f, sizeof f)) < 0 && errno == EINTR) {
	}
	close(report[0]);
	int status;
	if (n == (ssize_t)sizeof f) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
		}
		write_full(started, &f, sizeof f);
		_exit(1);
	}
	write_state("running", pid, start_time, 0, 0, "");
	f.err = 0;
	write_full(started, &f, sizeof f);
	close(started);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 0;
			break;
		}
	}
	/* A service ends with its command: nothing it started outlives it. */
	kill_command(pid);
	record_end(pid, start_time, status);
	/* The cgroups stay, empty, for the next start of this name: making one costs
	 * a round trip's worth of time under TCG. */
	_exit(0);
}

static void run_wait(const char *type, const char *target, int64_t timeout_ms, int64_t interval_ms);

/* `timeout_ms` >= 0: wait for the readiness before answering. */
static void run_start(struct start_spec *s, const char *ready_type, const char *ready_target, int64_t timeout_ms,
		      int64_t interval_ms)
{
	ensure_root();
	open_service_dir(1);
	int lock = -1;
	for (int64_t until = mono_ms() + LOCK_RETRY_MS; lock < 0;) {
		lock = take_lock(1);
		if (lock < 0 && errno != EWOULDBLOCK)
			fail_errno("lock");
		if (lock < 0 && mono_ms() >= until)
			fail(EXIT_RUNNING, "already running (stop it first)");
		if (lock < 0)
			sleep_ms(10);
	}
	remove_files();
	const char *spec[SP_COUNT] = {s->command, s->cwd, ready_type, ready_target};
	size_t envc = 0;
	while (s->env[envc])
		envc++;
	if (write_fields("spec", spec, SP_COUNT) < 0 || write_fields("env", (const char *const *)s->env, envc) < 0)
		fail_errno("write");
	int started[2];
	if (pipe2(started, O_CLOEXEC) < 0)
		fail_errno("pipe");
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fail_errno("fork");
	if (pid == 0) {
		close(started[0]);
		supervise(s, started[1]); /* holds the lock (the same open file) for as long as it lives */
	}
	close(started[1]);
	struct start_failure f;
	ssize_t n;
	while ((n = read(started[0], &f, sizeof f)) < 0 && errno == EINTR) {
	}
	if (n != (ssize_t)sizeof f || f.err != 0) {
		char path[512];
		remove_files();
		unlink(path_of(path, sizeof path, "lock"));
		snprintf(path, sizeof path, "%s/%s", root, name);
		rmdir(path);
		char why[256];
		f.step[sizeof f.step - 1] = 0;
		snprintf(why, sizeof why, "%s: %s: %s", n == (ssize_t)sizeof f ? f.step : "spawn",
			 n == (ssize_t)sizeof f ? strerror(f.err) : "the supervisor died", !strcmp(f.step, "chdir") ? s->cwd : "/bin/sh");
		fail(EXIT_NOT_STARTED, why);
	}
	close(lock);
	if (timeout_ms >= 0)
		run_wait(ready_type, ready_target, timeout_ms, interval_ms);
	print_one(0);
}

/* ---- stop ---- */

/* Wait until the supervisor has gone (recorded the end); whether it did within `ms`. */
static int wait_gone(int64_t ms)
{
	for (int64_t until = mono_ms() + ms;;) {
		if (!supervisor_alive())
			return 1;
		if (mono_ms() >= until)
			return 0;
		sleep_ms(10);
	}
}

/* Ask the supervisor's command to end, for `reason`: SIGTERM, then SIGKILL after `grace_ms`. */
static void stop_service(const char *reason, int64_t grace_ms)
{
	struct record r;
	if (!load_record(&r) || strcmp(r.state[ST_STATE], "running") != 0)
		return;
	pid_t pgid = (pid_t)strtol(r.state[ST_PGID], NULL, 10);
	if (pgid <= 1)
		fail(EXIT_FAILED, "a malformed state record");
	const char *why[1] = {reason};
	if (write_fields("stop", why, 1) < 0)
		fail_errno("write");
	kill(-pgid, SIGTERM);
	if (wait_gone(grace_ms))
		return;
	if (!strcmp(reason, "sigterm")) {
		why[0] = "sigkill";
		write_fields("stop", why, 1);
	}
	kill_command(pgid);
	if (!wait_gone(KILL_WAIT_MS))
		fail(EXIT_FAILED, "its supervisor did not record the end");
}

/* ---- readiness ---- */

/* A connected socket to HOST:PORT (host may be [v6]) within `ms`, or -1. */
static int connect_to(const char *host, const char *port, int64_t ms)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *list;
	if (getaddrinfo(host, port, &hints, &list) != 0)
		return -1;
	int64_t until = mono_ms() + ms;
	int fd = -1;
	for (struct addrinfo *a = list; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		struct pollfd p = {fd, POLLOUT, 0};
		int err = 0;
		socklen_t len = sizeof err;
		int64_t left = until - mono_ms();
		if (errno != EINPROGRESS || left <= 0 || poll(&p, 1, (int)left) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(list);
	return fd;
}

/* "HOST:PORT" or "[V6]:PORT" split in place; 0 if malformed. */
static int split_host_port(char *s, char **host, char **port)
{
	char *colon = strrchr(s, ':');
	if (!colon || !colon[1])
		return 0;
	*colon = 0;
	*port = colon + 1;
	*host = s;
	size_t n = strlen(s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s[n - 1] = 0;
		*host = s + 1;
	}
	return **host != 0;
}

static int probe_tcp(const char *target, int64_t ms)
{
	char buf[512], *host, *port;
	snprintf(buf, sizeof buf, "%s", target);
	if (!split_host_port(buf, &host, &port))
		return 0;
	int fd = connect_to(host, port, ms);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

/* An HTTP/1.0 GET of http://HOST[:PORT]/PATH; ready on a 2xx or 3xx status line. */
static int probe_http(const char *url, int64_t ms)
{
	if (strncmp(url, "http://", 7) != 0)
		return 0;
	char authority[512], hostport[520], *host, *port;
	const char *rest = url + 7, *slash = strchr(rest, '/');
	size_t alen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (alen == 0 || alen >= sizeof authority)
		return 0;
	memcpy(authority, rest, alen);
	authority[alen] = 0;
	const char *path = slash ? slash : "/";
	/* A port is the part after the last colon, unless that colon is inside [v6]. */
	char *last = strrchr(authority, ':');
	if (last && !strchr(last, ']'))
		snprintf(hostport, sizeof hostport, "%s", authority);
	else
		snprintf(hostport, sizeof hostport, "%s:80", authority);
	if (!split_host_port(hostport, &host, &port))
		return 0;
	int64_t until = mono_ms() + ms;
	int fd = connect_to(host, port, ms);
	if (fd < 0)
		return 0;
	char request[4096 + 1024];
	int len = snprintf(request, sizeof request, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: pyro-service-wait\r\n"
				"Connection: close\r\n\r\n", path, authority);
	int ok = 0;
	if (len > 0 && (size_t)len < sizeof request) {
		size_t sent = 0, got = 0;
		char reply[32];
		for (int64_t left; (left = until - mono_ms()) > 0;) {
			struct pollfd p = {fd, sent < (size_t)len ? POLLOUT : POLLIN, 0};
			if (poll(&p, 1, (int)left) != 1)
				break;
			ssize_t n = sent < (size_t)len ? send(fd, request + sent, (size_t)len - sent, MSG_NOSIGNAL)
						      : recv(fd, reply + got, sizeof reply - 1 - got, 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				break;
			if (sent < (size_t)len) {
				sent += (size_t)n;
				continue;
			}
			got += (size_t)n;
			reply[got] = 0;
			/* "HTTP/1.x NNN" is 12 bytes. */
			if (got >= 12 || memchr(reply, '\n', got))
				break;
		}
		/* Read the rest (bounded) before closing: unread bytes would reset the
		 * connection, and the service would log an error for every probe. */
		char drain[4096];
		int64_t drain_until = mono_ms() + 1000 < until ? mono_ms() + 1000 : until;
		size_t drained = 0;
		for (int64_t left; drained < (1u << 20) && (left = drain_until - mono_ms()) > 0;) {
			struct pollfd p = {fd, POLLIN, 0};
			ssize_t n;
			if (poll(&p, 1, (int)left) != 1 || (n = recv(fd, drain, sizeof drain, 0)) <= 0)
				break;
			drained += (size_t)n;
		}
		int code = 0;
		if (got >= 12 && !strncmp(reply, "HTTP/1.", 7) && reply[8] == ' ' && sscanf(reply + 9, "%3d", &code) == 1)
			ok = code >= 200 && code < 400;
	}
	close(fd);
	return ok;
}

/* `/bin/sh -c COMMAND` in the service's cwd and environment exits 0 within `ms`. */
static int probe_command(const char *command, int64_t ms)
{
	static char spec_buf[MAX_FILE], env_buf[MAX_FILE];
	static const char *spec[SP_COUNT], *env[MAX_ENV + 1];
	static int loaded;
	if (!loaded) {
		if (read_fields("spec", spec_buf, sizeof spec_buf, spec, SP_COUNT) != SP_COUNT)
			fail(EXIT_NOT_FOUND, "no such service");
		int n = read_fields("env", env_buf, sizeof env_buf, env, MAX_ENV);
		env[n < 0 ? 0 : n] = NULL;
		loaded = 1;
	}
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL);
		setpgid(0, 0);
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (chdir(spec[SP_CWD]) < 0)
			_exit(126);
		char *argv[] = {"sh", "-c", (char *)command, NULL};
		execve("/bin/sh", argv, (char **)env);
		_exit(127);
	}
	int status = 0;
	for (int64_t until = mono_ms() + ms;;) {
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid)
			break;
		if (got < 0 && errno != EINTR)
			return 0;
		if (mono_ms() >= until) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			return 0;
		}
		sleep_ms(5);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int probe(const char *type, const char *target, int64_t ms)
{
	struct stat st;
	if (!strcmp(type, "file"))
		return lstat(target, &st) == 0;
	if (!strcmp(type, "tcp"))
		return probe_tcp(target, ms);
	if (!strcmp(type, "http"))
		return probe_http(target, ms);
	return probe_command(target, ms);
}

static void run_wait(const char *type, const char *target, int64_t timeout_ms, int64_t interval_ms)
{
	struct record r;
	if (!load_record(&r))
		fail(EXIT_NOT_FOUND, "no such service");
	for (int64_t until = mono_ms() + timeout_ms;;) {
		if (!supervisor_alive())
			print_one(EXIT_ENDED);
		int64_t attempt = mono_ms();
		if (attempt >= until)
			break;
		if (probe(type, target, until - attempt)) {
			char at[24];
			number_text(at, sizeof at, now_ms());
			const char *field[1] = {at};
			if (write_fields("ready", field, 1) < 0)
				fail_errno("write");
			print_one(0);
		}
		int64_t next = attempt + interval_ms;
		sleep_ms((next < until ? next : until) - mono_ms());
	}
	stop_service("ready_timeout", READY_TIMEOUT_GRACE_MS);
	print_one(EXIT_NOT_READY);
}

/* ---- list, logs ---- */

static void run_list(void)
{
	DIR *d = opendir(root);
	int count = 0;
	if (!d && errno != ENOENT)
		fail_errno(root);
	for (struct dirent *e; d && (e = readdir(d));) {
		if (!valid_name(e->d_name))
			continue;
		name = e->d_name;
		struct record r;
		if (load_record(&r)) {
			print_record(&r);
			count++;
		}
	}
	name = "";
	if (d)
		closedir(d);
	print_end(count);
}

/* From where in `fd` (of `size` bytes) its last `lines` lines start (a last line without a newline counts). */
static off_t tail_start(int fd, off_t size, uint64_t lines)
{
	char buf[8192];
	off_t at = size;
	uint64_t seen = 0;
	int skip_last = 1; /* the file's final newline ends the last line, it does not start one */
	while (at > 0) {
		size_t n = at < (off_t)sizeof buf ? (size_t)at : sizeof buf;
		at -= (off_t)n;
		if (pread(fd, buf, n, at) != (ssize_t)n)
			return 0;
		for (size_t i = n; i-- > 0;) {
			if (buf[i] != '\n')
				continue;
			if (skip_last && at + (off_t)i == size - 1)
				continue;
			if (++seen == lines)
				return at + (off_t)i + 1;
		}
		skip_last = 0;
	}
	return 0;
}

static void copy_log(const char *file, int out, int tail, uint64_t lines)
{
	char path[512], buf[65536];
	int fd = open(path_of(path, sizeof path, file), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail_errno(file);
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail_errno(file);
	off_t at = !tail ? 0 : lines == 0 ? st.st_size : tail_start(fd, st.st_size, lines);
	/* Up to the size now: a service still writing does not keep this going. */
	while (at < st.st_size) {
		size_t want = st.st_size - at < (off_t)sizeof buf ? (size_t)(st.st_size - at) : sizeof buf;
		ssize_t n = pread(fd, buf, want, at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (write_full(out, buf, (size_t)n) < 0)
			exit(EXIT_FAILED);
		at += n;
	}
	close(fd);
}

static void run_logs(int tail, uint64_t lines)
{
	struct record r;
	if (!load_record(&r))
		fail(EXIT_NOT_FOUND, "no such service");
	copy_log("stdout", 1, tail, lines);
	copy_log("stderr", 2, tail, lines);
}

/* ---- arguments ---- */

static int known_type(const char *type)
{
	return !strcmp(type, "file") || !strcmp(type, "tcp") || !strcmp(type, "http") || !strcmp(type, "command");
}

int service_main(int argc, char **argv)
{
	int i = 2; /* argv[1] is "service" */
	if (i + 1 < argc && !strcmp(argv[i], "--root")) {
		root = argv[i + 1], i += 2;
		use_cgroups = 0;
	}
	if (i >= argc)
		usage();
	op = argv[i++];
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(op, "list")) {
		if (i != argc)
			usage();
		run_list();
		return 0;
	}
	if (i >= argc)
		usage();
	name = argv[i++];
	if (!valid_name(name))
		fail(EXIT_USAGE, "not a valid service name");
	char **rest = argv + i;
	int nrest = argc - i;

	if (!strcmp(op, "start")) {
		struct start_spec s = {0};
		const char *ready_type = "", *ready_target = "";
		int64_t timeout = -1, interval = -1;
		size_t envc = 0;
		int k = 0;
		for (; k < nrest && strcmp(rest[k], "--"); k++) {
			if (!strcmp(rest[k], "--cwd") && k + 1 < nrest)
				s.cwd = rest[++k];
			else if (!strcmp(rest[k], "--env") && k + 1 < nrest && envc < MAX_ENV && strchr(rest[k + 1], '='))
				s.env[envc++] = rest[++k];
			else if (!strcmp(rest[k], "--ready-type") && k + 1 < nrest)
				ready_type = rest[++k];
			else if (!strcmp(rest[k], "--ready-target") && k + 1 < nrest)
				ready_target = rest[++k];
			else if (!strcmp(rest[k], "--timeout-ms") && k + 1 < nrest)
				timeout = (int64_t)number_arg(rest[++k]);
			else if (!strcmp(rest[k], "--interval-ms") && k + 1 < nrest)
				interval = (int64_t)number_arg(rest[++k]);
			else
				usage();
		}
		if (!s.cwd || k + 2 != nrest || (timeout >= 0) != (interval >= 0) || interval == 0 ||
		    (timeout >= 0 && !known_type(ready_type)) || (ready_type[0] && !known_type(ready_type)))
			usage();
		s.command = rest[k + 1];
		run_start(&s, ready_type, ready_target, timeout, interval);
	} else if (!strcmp(op, "wait")) {
		const char *type = NULL, *target = NULL;
		int64_t timeout = -1, interval = -1;
		for (int k = 0; k < nrest; k++) {
			if (k + 1 >= nrest)
				usage();
			if (!strcmp(rest[k], "--type"))
				type = rest[++k];
			else if (!strcmp(rest[k], "--target"))
				target = rest[++k];
			else if (!strcmp(rest[k], "--timeout-ms"))
				timeout = (int64_t)number_arg(rest[++k]);
			else if (!strcmp(rest[k], "--interval-ms"))
				interval = (int64_t)number_arg(rest[++k]);
			else
				usage();
		}
		if (!type || !target || timeout < 0 || interval < 1 || !known_type(type))
			usage();
		open_service_dir(0);
		run_wait(type, target, timeout, interval);
	} else if (!strcmp(op, "stop")) {
		int64_t timeout = DEFAULT_STOP_MS;
		if (nrest == 2 && !strcmp(rest[0], "--timeout-ms"))
			timeout = (int64_t)number_arg(rest[1]);
		else if (nrest != 0)
			usage();
		open_service_dir(0);
		stop_service("sigterm", timeout);
		print_one(0);
	} else if (!strcmp(op, "status") && nrest == 0) {
		open_service_dir(0);
		print_one(0);
	} else if (!strcmp(op, "logs")) {
		int tail = 0;
		uint64_t lines = 0;
		if (nrest == 2 && !strcmp(rest[0], "--tail-lines"))
			tail = 1, lines = number_arg(rest[1]);
		else if (nrest != 0)
			usage();
		open_service_dir(0);
		run_logs(tail, lines);
	} else {
		usage();
	}
	return 0;
}
