/*
 * proc.c: the processes the agent starts, whatever starts them (exec and
 * shells; services later). Each runs in its own session and process group
 * and, with cgroup2, its own cgroup, so that everything it starts can be
 * killed at once; the agent reaps every child (it is PID 1).
 *
 * Each process has an owner: the channel whose host asked for it, which ends
 * it when that host goes away, or none (detached: meant to outlive its
 * client, as shells do and services will).
 */
#ifndef PYRO_PROC_H
#define PYRO_PROC_H

struct channel;
struct proc;

/* What a process's client hears; both run from the loop, never from a signal. */
struct proc_client {
	/* The process exited (status as from waitpid). Call proc_release when done with it. */
	void (*exited)(void *ctx, int status);
	/* Its owner's host went away and it was killed: forget it, never touch it again. */
	void (*abandoned)(void *ctx);
};

struct spawn_request {
	char **argv; /* NULL-terminated; argv[0] is searched in envp's PATH */
	char **envp; /* NULL-terminated */
	const char *cwd;
	int stdio[3]; /* the child's fds 0, 1 and 2 */
	int controlling_tty; /* stdin is a terminal slave: make it the new session's controlling terminal */
};

/* Registers the SIGCHLD handler; call after loop_init. */
void proc_init(void);
/*
 * Start a process; `owner` NULL makes it detached. Returns NULL with errno and
 * *stage ("spawn", "chdir" or "exec") set if it could not be started; a child
 * that failed to exec is reaped here, so its client hears nothing of it.
 */
struct proc *proc_spawn(const struct spawn_request *req, struct channel *owner,
			const struct proc_client *client, void *ctx, const char **stage);
/* A signal to its process group, while it runs. */
void proc_signal(struct proc *p, int signo);
/* SIGKILL to everything it started: its cgroup (even processes that left its
 * group with setsid) and its group. */
void proc_kill(struct proc *p);
/* The client is done with an exited process: its slot and cgroup go. */
void proc_release(struct proc *p);
/* A waitpid status as the host reports it: the exit code (128 + signal if
 * killed) and the terminating signal (0 if none). */
void proc_exit_status(int status, int *code, int *signo);
/* Kill every process `owner` owns and tell their clients; returns how many. */
int proc_abandon(struct channel *owner);
/* Kill every process, detached ones too (power-off). */
void proc_abandon_all(void);

#endif
