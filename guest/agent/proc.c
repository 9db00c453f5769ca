/*
 * The process table: spawning with vfork and a report pipe, a cgroup per
 * process, killing, reaping (waitpid drained on SIGCHLD) and abandoning.
 *
 * Making and removing a cgroup costs a request's worth of time under TCG, so
 * neither happens while a request waits: each process takes a spare cgroup
 * made beforehand and starts in it (clone3 CLONE_INTO_CGROUP, which is also
 * cheaper than moving it in), and a released one is removed once the loop
 * has flushed the replies of its turn (the prepare hook of the next turn).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "loop.h"
#include "proc.h"
#include "sysfile.h"

#define MAX_PROCS 128
#define CGROUP_ROOT "/sys/fs/cgroup"
#define MAX_LINGERING_CGROUPS 256

extern char **environ;

struct proc {
	pid_t pid; /* 0: free slot */
	int exited;
	struct channel *owner; /* NULL: detached */
	/* NULL once abandoned: the slot is then released when the process is reaped. */
	const struct proc_client *client;
	void *ctx;
	char cgroup[64]; /* "" without cgroup2 */
};

static struct proc procs[MAX_PROCS];
/* Released cgroups not removed yet: just released, or still holding a background job. */
static char lingering[MAX_LINGERING_CGROUPS][64];
/* One may have emptied since the last tidy. */
static int tidy_due;
static unsigned cgroup_counter;

/* The next process's cgroup, made while nothing waited; fd: its directory, or -1. */
static struct {
	char path[64];
	int fd;
} spare = {"", -1};
/* One was released since the last tidy: make the next spare (so never before cgroup2 works). */
static int spare_wanted;

static int new_cgroup(char path[64])
{
	snprintf(path, 64, CGROUP_ROOT "/pyro-exec-%u", ++cgroup_counter);
	if (mkdir(path, 0755) == 0)
		return 0;
	path[0] = 0;
	return -1;
}

/* The process's cgroup: the spare (returned: its directory fd, to start the
 * process in it), or else one made now (returned -1: the child moves itself in). */
static int take_cgroup(struct proc *p)
{
	p->cgroup[0] = 0;
	int fd = -1;
	if (spare.path[0]) {
		memcpy(p->cgroup, spare.path, sizeof p->cgroup);
		fd = spare.fd;
		spare.path[0] = 0;
		spare.fd = -1;
	} else {
		new_cgroup(p->cgroup);
	}
	return fd;
}

static void make_spare(void)
{
	if (new_cgroup(spare.path) < 0)
		return;
	spare.fd = open(spare.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void release_cgroup(const char *path)
{
	for (int i = 0; i < MAX_LINGERING_CGROUPS; i++)
		if (!lingering[i][0]) {
			snprintf(lingering[i], sizeof lingering[i], "%s", path);
			tidy_due = spare_wanted = 1;
			return;
		}
	rmdir(path); /* no room to wait: now */
}

/* Those still holding processes (a background job that outlived its command) stay listed. */
static void retry_lingering_cgroups(void)
{
	for (int i = 0; i < MAX_LINGERING_CGROUPS; i++)
		if (lingering[i][0] && (rmdir(lingering[i]) == 0 || errno == ENOENT))
			lingering[i][0] = 0;
}

/* Between turns, once the last turn's replies are flushed. */
static int tidy_cgroups(void *ctx)
{
	(void)ctx;
	if (tidy_due)
		retry_lingering_cgroups();
	tidy_due = 0;
	if (spare_wanted && !spare.path[0])
		make_spare();
	spare_wanted = 0;
	return -1;
}

void proc_kill(struct proc *p)
{
	if (p->cgroup[0]) {
		char path[96];
		snprintf(path, sizeof path, "%s/cgroup.kill", p->cgroup);
		write_sysfile(path, "1");
	}
	if (!p->exited)
		kill(-p->pid, SIGKILL);
}

void proc_signal(struct proc *p, int signo)
{
	if (!p->exited)
		kill(-p->pid, signo);
}

void proc_release(struct proc *p)
{
	if (p->cgroup[0])
		release_cgroup(p->cgroup);
	*p = (struct proc){0};
}

/* execvp (musl's, entry by entry and error by error), except that a PATH
 * entry without the file is passed over after a lookup, not a failed execve:
 * under TCG each of those sets up and tears down a new address space, and a
 * command in /bin is the sixth entry of the default PATH. */
static void exec_search(const char *file, char *const argv[])
{
	errno = ENOENT;
	if (!*file)
		return;
	if (strchr(file, '/')) {
		execv(file, argv);
		return;
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/bin:/usr/bin";
	size_t k = strnlen(file, NAME_MAX + 1);
	if (k > NAME_MAX) {
		errno = ENAMETOOLONG;
		return;
	}
	size_t l = strnlen(path, PATH_MAX - 1) + 1;
	int seen_eacces = 0;
	for (const char *p = path, *z;; p = z) {
		char b[l + k + 1];
		z = strchr(p, ':');
		if (!z)
			z = p + strlen(p);
		if ((size_t)(z - p) >= l) {
			if (!*z++)
				break;
			continue;
		}
		memcpy(b, p, (size_t)(z - p));
		b[z - p] = '/';
		memcpy(b + (z - p) + (z > p), file, k + 1);
		if (access(b, F_OK) == 0 || (errno != ENOENT && errno != ENOTDIR))
			execv(b, argv);
		switch (errno) {
		case EACCES:
			seen_eacces = 1;
			/* fall through */
		case ENOENT:
		case ENOTDIR:
			break;
		default:
			return;
		}
		if (!*z++)
			break;
	}
	if (seen_eacces)
		errno = EACCES;
}

/* Runs in a vfork child, on the agent's memory: system calls, stack buffers and
 * musl functions that use nothing else (snprintf, getenv, execv). No heap; the
 * only globals touched are errno (the agent reads it only after a failed
 * spawn) and environ, which spawn_child set to the request's for this. The
 * agent handles no signals, so none can run its code here. `in_cgroup`: it
 * started in its cgroup; otherwise it moves itself in. */
__attribute__((noreturn)) static void child(const struct spawn_request *req, int report, const char *cgroup,
					    int in_cgroup)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (cgroup[0] && !in_cgroup) {
		char path[96];
		snprintf(path, sizeof path, "%s/cgroup.procs", cgroup);
		write_sysfile(path, "0");
	}
	dup2(req->stdio[0], 0);
	dup2(req->stdio[1], 1);
	dup2(req->stdio[2], 2);
	if (req->controlling_tty)
		ioctl(0, TIOCSCTTY, 0);
	const char *stage = "chdir";
	if (chdir(req->cwd) == 0) {
		stage = "exec";
		exec_search(req->argv[0], req->argv); /* environ is the request's (spawn_child) */
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

#if defined(__x86_64__)
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
/* <sched.h> has these only with _GNU_SOURCE; the values are the kernel's ABI. */
#define CLONE_VM_FLAG 0x100ULL
#define CLONE_VFORK_FLAG 0x4000ULL
#define CLONE_INTO_CGROUP_FLAG 0x200000000ULL

struct clone3_args { /* the kernel's struct clone_args, up to `cgroup` (5.7) */
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
		set_tid_size, cgroup;
};

struct child_start {
	const struct spawn_request *req;
	int report;
	const char *cgroup;
};

/* Its own stack, as clone3 wants one: a single child at a time runs on it,
 * until it execs or exits (CLONE_VFORK holds the agent until then). */
static uint8_t child_stack[64 * 1024] __attribute__((aligned(16)));

static void child_in_cgroup(void *ctx)
{
	const struct child_start *start = ctx;
	child(start->req, start->report, start->cgroup, 1);
}

/* clone3 with the child calling fn(ctx) on child_stack, never returning;
 * the parent gets the pid or -errno. */
static long clone3_call(struct clone3_args *args, void (*fn)(void *), void *ctx)
{
	long ret;
	register void (*entry)(void *) __asm__("r12") = fn;
	register void *arg __asm__("r13") = ctx;
	__asm__ volatile("syscall\n\t"
			 "testq %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "xorl %%ebp, %%ebp\n\t"
			 "movq %%r13, %%rdi\n\t"
			 "callq *%%r12\n\t"
			 "ud2\n"
			 "1:"
			 : "=a"(ret)
			 : "0"((long)SYS_clone3), "D"(args), "S"(sizeof *args), "r"(entry), "r"(arg)
			 : "rcx", "r11", "memory");
	return ret;
}

/* Start the child in the cgroup open at `cgroup_fd`, vfork-style; -1 if clone3 cannot. */
static pid_t spawn_in_cgroup(const struct spawn_request *req, int report, const char *cgroup, int cgroup_fd)
{
	struct child_start start = {req, report, cgroup};
	struct clone3_args args = {
		.flags = CLONE_VM_FLAG | CLONE_VFORK_FLAG | CLONE_INTO_CGROUP_FLAG,
		.exit_signal = SIGCHLD,
		.stack = (uintptr_t)child_stack,
		.stack_size = sizeof child_stack,
		.cgroup = (uint64_t)cgroup_fd,
	};
	long pid = clone3_call(&args, child_in_cgroup, &start);
	return pid < 0 ? -1 : (pid_t)pid;
}
#else
static pid_t spawn_in_cgroup(const struct spawn_request *req, int report, const char *cgroup, int cgroup_fd)
{
	(void)req, (void)report, (void)cgroup, (void)cgroup_fd;
	return -1;
}
#endif

/* vfork: the child borrows the agent's memory until it execs, so no page tables are
 * copied and nothing faults copy-on-write; under TCG that is code the first exec of
 * a restored VM need not translate. Into the cgroup open at `cgroup_fd` when there is
 * one and clone3 takes it (a move costs more); otherwise vfork, and the child moves.
 * Kept apart so no caller's locals live across it. environ is the request's while
 * the child runs (exec_search reads its PATH), and the agent's own again once the
 * child has exec'd or exited. */
static pid_t spawn_child(const struct spawn_request *req, int report, const char *cgroup, int cgroup_fd)
{
	char **agent_environ = environ;
	environ = req->envp;
	pid_t pid = cgroup_fd >= 0 ? spawn_in_cgroup(req, report, cgroup, cgroup_fd) : -1;
	if (pid < 0) {
		pid = vfork();
		if (pid == 0)
			child(req, report, cgroup, 0);
	}
	environ = agent_environ;
	return pid;
}

struct proc *proc_spawn(const struct spawn_request *req, struct channel *owner,
			const struct proc_client *client, void *ctx, const char **stage)
{
	*stage = "spawn";
	struct proc *p = NULL;
	for (int i = 0; i < MAX_PROCS && !p; i++)
		if (procs[i].pid == 0)
			p = &procs[i];
	if (!p) {
		errno = EMFILE;
		return NULL;
	}
	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0)
		return NULL;
	int cgroup_fd = take_cgroup(p);
	pid_t pid = spawn_child(req, report[1], p->cgroup, cgroup_fd);
	int spawn_errno = errno;
	close(report[1]);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	if (pid < 0) {
		close(report[0]);
		if (p->cgroup[0])
			release_cgroup(p->cgroup);
		*p = (struct proc){0};
		errno = spawn_errno;
		return NULL;
	}
	/* Registered before anything else can reap it (the spawn-guard rule). */
	p->pid = pid;
	p->exited = 0;
	p->owner = owner;
	p->client = client;
	p->ctx = ctx;

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
		proc_release(p);
		errno = e;
		return NULL;
	}
	return p;
}

void proc_exit_status(int status, int *code, int *signo)
{
	*code = *signo = 0;
	if (WIFEXITED(status))
		*code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status)) {
		*signo = WTERMSIG(status);
		*code = 128 + *signo;
	}
}

static struct proc *find_pid(pid_t pid)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (procs[i].pid == pid)
			return &procs[i];
	return NULL;
}

/* Drain every exited child (orphans re-parented to PID 1 too). */
static void reap(void *ctx)
{
	(void)ctx;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct proc *p = find_pid(pid);
		if (!p)
			continue;
		p->exited = 1;
		if (p->client)
			p->client->exited(p->ctx, status);
		else
			proc_release(p);
	}
	tidy_due = 1;
}

void proc_init(void)
{
	loop_on_signal(SIGCHLD, reap, NULL);
	loop_add_hooks(NULL, tidy_cgroups, NULL);
}

static void abandon(struct proc *p)
{
	const struct proc_client *client = p->client;
	proc_kill(p);
	p->client = NULL;
	client->abandoned(p->ctx);
	if (p->exited)
		proc_release(p);
}

int proc_abandon(struct channel *owner)
{
	int n = 0;
	if (!owner)
		return 0;
	for (int i = 0; i < MAX_PROCS; i++)
		if (procs[i].pid != 0 && procs[i].client && procs[i].owner == owner) {
			abandon(&procs[i]);
			n++;
		}
	return n;
}

void proc_abandon_all(void)
{
	for (int i = 0; i < MAX_PROCS; i++)
		if (procs[i].pid != 0 && procs[i].client)
			abandon(&procs[i]);
}
