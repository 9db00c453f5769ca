/*
 * The process table: spawning with vfork and a report pipe, a cgroup per
 * process, killing, reaping (waitpid drained on SIGCHLD) and abandoning.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "loop.h"
#include "proc.h"

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
static char lingering[MAX_LINGERING_CGROUPS][64];
static unsigned cgroup_counter;

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -1 : 0;
}

static void make_cgroup(struct proc *p)
{
	p->cgroup[0] = 0;
	char path[64];
	snprintf(path, sizeof path, CGROUP_ROOT "/pyro-exec-%u", ++cgroup_counter);
	if (mkdir(path, 0755) == 0)
		snprintf(p->cgroup, sizeof p->cgroup, "%s", path);
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

void proc_kill(struct proc *p)
{
	if (p->cgroup[0]) {
		char path[96];
		snprintf(path, sizeof path, "%s/cgroup.kill", p->cgroup);
		write_file(path, "1");
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
		remove_cgroup(p->cgroup);
	*p = (struct proc){0};
}

/* Runs in a vfork child, on the agent's memory: system calls, stack buffers and
 * musl functions that use nothing else (snprintf, execvp). No heap; the only
 * globals touched are errno (the agent reads it only after a failed vfork) and
 * environ, which spawn_child set to the request's for this. The agent handles
 * no signals, so none can run its code here. */
__attribute__((noreturn)) static void child(const struct spawn_request *req, int report, const char *cgroup)
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
	dup2(req->stdio[0], 0);
	dup2(req->stdio[1], 1);
	dup2(req->stdio[2], 2);
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
static pid_t spawn_child(const struct spawn_request *req, int report, const char *cgroup)
{
	char **agent_environ = environ;
	environ = req->envp;
	pid_t pid = vfork();
	if (pid == 0)
		child(req, report, cgroup);
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
	make_cgroup(p);
	pid_t pid = spawn_child(req, report[1], p->cgroup);
	int spawn_errno = errno;
	close(report[1]);
	if (pid < 0) {
		close(report[0]);
		if (p->cgroup[0])
			rmdir(p->cgroup);
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
	retry_lingering_cgroups();
}

void proc_init(void) { loop_on_signal(SIGCHLD, reap, NULL); }

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
