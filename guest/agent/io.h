/* io.c: whole writes for the agent's tools. */
#ifndef PYRO_IO_H
#define PYRO_IO_H

#include <stddef.h>

/* Write all `n` bytes (retrying short writes and EINTR); 0, or -1 with errno. */
int write_full(int fd, const void *p, size_t n);

#endif
