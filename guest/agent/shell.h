/*
 * shell.c: PTY shells. Each is a process on the slave side of a pseudo-terminal
 * whose master the agent's loop reads into a ring of its recent output. A
 * shell belongs to the agent, not to a channel: any host may read, write,
 * signal, resize or close it by its id, and it outlives the host that opened
 * it. It ends by SHELL_CLOSE, by power-off, or by exiting (then it stays,
 * stopped, with its output readable, until closed).
 */
#ifndef PYRO_SHELL_H
#define PYRO_SHELL_H

#include <stddef.h>
#include <stdint.h>

struct channel;

struct shell_open_request {
	const char *id;
	char **argv; /* NULL-terminated; empty: /bin/bash -i, or /bin/sh -i without bash */
	char **envp; /* NULL-terminated */
	const char *cwd;
	int cols, rows;
};

/* Registers the loop hooks; call after loop_init. */
void shells_init(void);
/* Each sends its reply (OK with the shell's facts, or ERROR) on `stream` of `ch`. */
void shell_open(struct channel *ch, uint32_t stream, const struct shell_open_request *req);
void shell_read(struct channel *ch, uint32_t stream, const char *id, uint64_t cursor, size_t max_bytes,
		int64_t wait_idle_ms);
void shell_write(struct channel *ch, uint32_t stream, const char *id, const uint8_t *input, size_t len);
void shell_signal(struct channel *ch, uint32_t stream, const char *id, int signo);
void shell_close(struct channel *ch, uint32_t stream, const char *id);
void shell_resize(struct channel *ch, uint32_t stream, const char *id, int cols, int rows);
/* `ch`'s host went away: its waiting reads and closes go unanswered (the shells stay). */
void shells_channel_ended(struct channel *ch);

#endif
