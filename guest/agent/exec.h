/*
 * exec.c: exec sessions, one process per EXEC stream of a channel: its stdin
 * from DATA frames, its stdout and stderr to DATA frames, its timeout, and an
 * EXIT when it is done. Processes come from proc.c, owned by the channel.
 */
#ifndef PYRO_EXEC_H
#define PYRO_EXEC_H

#include <stddef.h>
#include <stdint.h>

struct channel;

#define MAX_SESSIONS 64

struct exec_request {
	char **argv; /* NULL-terminated */
	char **envp; /* NULL-terminated */
	const char *cwd;
	int64_t timeout_ms;
	int with_stdin;
};

/* Registers the loop hook; call after loop_init. */
void sessions_init(void);
/* Starts a session for `stream` of `ch`; on failure returns -1 with errno and *stage set. */
int session_start(struct channel *ch, uint32_t stream, const struct exec_request *req, const char **stage);
int session_exists(struct channel *ch, uint32_t stream);
void session_stdin(struct channel *ch, uint32_t stream, const uint8_t *data, size_t len);
void session_stdin_eof(struct channel *ch, uint32_t stream);
void session_signal(struct channel *ch, uint32_t stream, int signo);
/* The largest stdin backlog of `ch`'s sessions (see channel_handler). */
size_t sessions_stdin_backlog(struct channel *ch);

#endif
