/*
 * `/proc/1/exe secrets DIR`: write a workspace's secrets where its commands
 * can read them, never onto a disk. The host runs it after every boot of a
 * workspace VM (a tmpfs does not survive one).
 *
 * stdin: NAME NUL VALUE NUL, repeated (values hold no NUL; the host checks).
 * DIR gets a tmpfs of its own (mode 0700) unless it already is one; each
 * secret becomes DIR/NAME, mode 0600, written through no link. NAME is
 * letters, digits and _ only.
 *
 * Exit 0 once all are written; 1 with `secrets: why` on stderr otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "io.h"
#include "secrets.h"

#define TMPFS_MAGIC_NUMBER 0x01021994
/* 32 secrets of at most 64 KiB each, with their names: the host's bounds, and some room. */
#define MAX_INPUT (4u * 1024u * 1024u)

static int fail(const char *what)
{
	fprintf(stderr, "secrets: %s: %s\n", what, strerror(errno));
	return 1;
}

static int valid_name(const char *name)
{
	if (!*name || strlen(name) > 64)
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

int secrets_main(int argc, char **argv)
{
	if (argc != 3 || argv[2][0] != '/') {
		fprintf(stderr, "secrets: usage: secrets DIR (secrets on stdin)\n");
		return 2;
	}
	const char *dir = argv[2];
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fail("mkdir");
	struct statfs fs;
	if (statfs(dir, &fs) < 0)
		return fail("statfs");
	if (fs.f_type != TMPFS_MAGIC_NUMBER &&
	    mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=8m") < 0)
		return fail("mount");

	char *input = malloc(MAX_INPUT + 1);
	if (!input)
		return fail("malloc");
	size_t length = 0;
	for (;;) {
		ssize_t n = read(0, input + length, MAX_INPUT + 1 - length);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail("read");
		if (n == 0)
			break;
		length += (size_t)n;
		if (length > MAX_INPUT) {
			fprintf(stderr, "secrets: more than %u bytes on stdin\n", MAX_INPUT);
			return 1;
		}
	}
	int dirfd = open(dir, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return fail("open");
	size_t at = 0;
	while (at < length) {
		const char *name = input + at;
		const char *name_end = memchr(name, 0, length - at);
		if (!name_end)
			break;
		const char *value = name_end + 1;
		const char *value_end = memchr(value, 0, length - (size_t)(value - input));
		if (!value_end || !valid_name(name)) {
			fprintf(stderr, "secrets: malformed input\n");
			return 1;
		}
		/* Replace whatever is there (never write through a link), then write the value. */
		if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
			return fail("unlink");
		int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return fail("create");
		if (write_full(fd, value, (size_t)(value_end - value)) < 0 || close(fd) < 0)
			return fail("write");
		at = (size_t)(value_end - input) + 1;
	}
	if (at != length) {
		fprintf(stderr, "secrets: malformed input\n");
		return 1;
	}
	return 0;
}
