/* Whole writes, for the tools the agent's binary also is (service, secrets, connect). */
#include <errno.h>
#include <unistd.h>

#include "io.h"

int write_full(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}
