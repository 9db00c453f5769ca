/*
 * The event loop: a registry of fds and callbacks, a list of timers, hooks
 * run every turn, and a signalfd for SIGCHLD and SIGIO. One turn: prepare
 * hooks, poll(), fd callbacks (the signalfd's first), due timers, settle hooks.
 *
 * Callbacks may add and remove fds while a turn runs: removed entries are only
 * marked, and the table is compacted at the start of the next turn, so the
 * events poll() reported are never handed to a newer fd of the same number.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent.h"
#include "loop.h"

#define MAX_HOOKS 8
#define MAX_SIGNAL_HANDLERS 4

struct watch {
	int fd;
	short events;
	int removed;
	loop_fd_fn fn;
	void *ctx;
};

struct hooks {
	void (*settle)(void *ctx);
	int (*prepare)(void *ctx);
	void *ctx;
};

struct signal_handler {
	int signo;
	void (*fn)(void *ctx);
	void *ctx;
};

static struct watch *watches;
static size_t watch_count, watch_cap;
static struct pollfd *pfds;
static size_t *pfd_watch; /* pfds[i] is watches[pfd_watch[i]] */
static size_t pfd_cap;
static struct loop_timer *timers;
static struct hooks hooks[MAX_HOOKS];
static size_t hook_count;
static struct signal_handler signal_handlers[MAX_SIGNAL_HANDLERS];
static size_t signal_handler_count;

static struct watch *find_watch(int fd)
{
	for (size_t i = 0; i < watch_count; i++)
		if (watches[i].fd == fd && !watches[i].removed)
			return &watches[i];
	return NULL;
}

int loop_add(int fd, short events, loop_fd_fn fn, void *ctx)
{
	if (find_watch(fd)) {
		errno = EEXIST;
		return -1;
	}
	if (watch_count == watch_cap) {
		size_t cap = watch_cap ? 2 * watch_cap : 16;
		struct watch *w = realloc(watches, cap * sizeof *w);
		if (!w)
			return -1;
		watches = w;
		watch_cap = cap;
	}
	watches[watch_count++] = (struct watch){fd, events, 0, fn, ctx};
	return 0;
}

void loop_set_events(int fd, short events)
{
	struct watch *w = find_watch(fd);
	if (w)
		w->events = events;
}

void loop_remove(int fd)
{
	struct watch *w = find_watch(fd);
	if (w)
		w->removed = 1;
}

int loop_probe(int fd)
{
	struct pollfd p = {fd, POLLIN, 0};
	if (poll(&p, 1, 0) < 0)
		return -1;
	return p.revents;
}

void loop_timer_arm(struct loop_timer *t, int64_t at_ms, void (*fn)(void *ctx), void *ctx)
{
	loop_timer_disarm(t);
	t->at_ms = at_ms;
	t->fn = fn;
	t->ctx = ctx;
	t->armed = 1;
	t->next = timers;
	timers = t;
}

void loop_timer_disarm(struct loop_timer *t)
{
	if (!t->armed)
		return;
	for (struct loop_timer **p = &timers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	t->armed = 0;
	t->next = NULL;
}

void loop_add_hooks(void (*settle)(void *ctx), int (*prepare)(void *ctx), void *ctx)
{
	if (hook_count == MAX_HOOKS)
		power_off("too many loop hooks");
	hooks[hook_count++] = (struct hooks){settle, prepare, ctx};
}

void loop_on_signal(int signo, void (*fn)(void *ctx), void *ctx)
{
	if (signal_handler_count == MAX_SIGNAL_HANDLERS)
		power_off("too many signal handlers");
	signal_handlers[signal_handler_count++] = (struct signal_handler){signo, fn, ctx};
}

static void on_signalfd(void *ctx, int fd, short revents)
{
	(void)ctx;
	(void)revents;
	/* Signals of one kind coalesce; a handler runs once however many came. */
	int seen[MAX_SIGNAL_HANDLERS] = {0};
	struct signalfd_siginfo info;
	while (read(fd, &info, sizeof info) == sizeof info)
		for (size_t i = 0; i < signal_handler_count; i++)
			if (signal_handlers[i].signo == (int)info.ssi_signo)
				seen[i] = 1;
	for (size_t i = 0; i < signal_handler_count; i++)
		if (seen[i])
			signal_handlers[i].fn(signal_handlers[i].ctx);
}

void loop_init(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGIO);
	int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0 || loop_add(fd, POLLIN, on_signalfd, NULL) < 0)
		power_off("signalfd failed");
}

static void compact(void)
{
	size_t n = 0;
	for (size_t i = 0; i < watch_count; i++)
		if (!watches[i].removed)
			watches[n++] = watches[i];
	watch_count = n;
}

/* Fill pfds from the watches that want something; returns how many. */
static size_t gather(void)
{
	if (pfd_cap < watch_count) {
		struct pollfd *p = realloc(pfds, watch_count * sizeof *p);
		size_t *m = p ? realloc(pfd_watch, watch_count * sizeof *m) : NULL;
		if (p)
			pfds = p;
		if (!m)
			power_off("out of memory for poll");
		pfd_watch = m;
		pfd_cap = watch_count;
	}
	size_t n = 0;
	for (size_t i = 0; i < watch_count; i++)
		if (watches[i].events) {
			pfds[n] = (struct pollfd){watches[i].fd, watches[i].events, 0};
			pfd_watch[n++] = i;
		}
	return n;
}

static int earlier(int a, int64_t b)
{
	if (b > 0x7fffffff)
		b = 0x7fffffff;
	return a < 0 || b < a ? (int)b : a;
}

static void fire_due_timers(void)
{
	int64_t now = monotonic_ms();
	/* A timer's callback may disarm others: look again from the top after each. */
	for (;;) {
		struct loop_timer *due = NULL;
		for (struct loop_timer *t = timers; t; t = t->next)
			if (t->at_ms <= now) {
				due = t;
				break;
			}
		if (!due)
			return;
		loop_timer_disarm(due);
		due->fn(due->ctx);
	}
}

void loop_run(void)
{
	for (;;) {
		int timeout = -1;
		for (size_t i = 0; i < hook_count; i++)
			if (hooks[i].prepare) {
				int want = hooks[i].prepare(hooks[i].ctx);
				if (want >= 0)
					timeout = earlier(timeout, want);
			}
		int64_t now = monotonic_ms();
		for (struct loop_timer *t = timers; t; t = t->next)
			timeout = earlier(timeout, t->at_ms > now ? t->at_ms - now : 0);

		compact();
		size_t n = gather();
		int ready = poll(pfds, (nfds_t)n, timeout);
		if (ready < 0) {
			if (errno != EINTR)
				log_errno("poll");
			continue;
		}
		/* watches may grow (and move) inside a callback: index it afresh each time. */
		for (size_t i = 0; i < n && ready > 0; i++) {
			if (!pfds[i].revents)
				continue;
			ready--;
			struct watch w = watches[pfd_watch[i]];
			if (!w.removed)
				w.fn(w.ctx, w.fd, pfds[i].revents);
		}
		fire_due_timers();
		for (size_t i = 0; i < hook_count; i++)
			if (hooks[i].settle)
				hooks[i].settle(hooks[i].ctx);
	}
}
