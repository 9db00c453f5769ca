/*
 * loop.c: the agent's one event loop. Modules register file descriptors with a
 * callback, arm timers and hook into each turn; only the loop calls poll().
 * Single-threaded, so no locks.
 */
#ifndef PYRO_LOOP_H
#define PYRO_LOOP_H

#include <stdint.h>

/* Called with the events poll() reported for `fd`. */
typedef void (*loop_fd_fn)(void *ctx, int fd, short revents);

/*
 * Watch `fd` for `events` (POLLIN, POLLOUT, ...). Events 0 leave the fd out of
 * poll() altogether, not even reporting a hang-up: that is how a module stops
 * reading something for a while. To hear only of a hang-up, ask for POLLHUP.
 * Returns -1 with errno on failure.
 */
int loop_add(int fd, short events, loop_fd_fn fn, void *ctx);
void loop_set_events(int fd, short events);
/* Stop watching `fd` (before closing it); no callback for it runs after this. */
void loop_remove(int fd);
/* What poll() says about `fd` right now, without waiting; -1 if it cannot say. */
int loop_probe(int fd);

/* A one-shot timer, embedded in its owner's struct (no allocation). */
struct loop_timer {
	int64_t at_ms; /* CLOCK_MONOTONIC, as monotonic_ms() */
	void (*fn)(void *ctx);
	void *ctx;
	struct loop_timer *next;
	int armed;
};
void loop_timer_arm(struct loop_timer *t, int64_t at_ms, void (*fn)(void *ctx), void *ctx);
void loop_timer_disarm(struct loop_timer *t);

/*
 * Hooks run once per turn, in the order added: `settle` after every callback of
 * the turn (to flush what they queued), `prepare` just before poll() (to set
 * interest that depends on other modules' state, and return the ms until it
 * needs another turn, or -1). Either may be NULL.
 */
void loop_add_hooks(void (*settle)(void *ctx), int (*prepare)(void *ctx), void *ctx);

/* SIGCHLD and SIGIO arrive through a signalfd (main.c blocks every signal). */
void loop_on_signal(int signo, void (*fn)(void *ctx), void *ctx);

/* Set up the signalfd; call before anything registers. */
void loop_init(void);
__attribute__((noreturn)) void loop_run(void);

#endif
