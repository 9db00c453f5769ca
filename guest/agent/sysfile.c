/* Short writes to the kernel's control files, shared by the agent (proc.c) and its service tool (service.c). */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "sysfile.h"

int write_sysfile(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -1 : 0;
}
