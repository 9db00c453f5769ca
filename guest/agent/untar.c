/*
 * `pyro-agent untar DEST`: unpack the host's import stream (stdin) into DEST,
 * never through a link that is already on the way.
 *
 * The guest is untrusted, and a workspace may already hold symlinks its
 * commands made (`linkdir -> /tmp/target`). tar follows those when it meets
 * `linkdir/f`; this does not. Every directory, DEST's own components
 * included, is opened one component at a time relative to the last with
 * O_NOFOLLOW | O_DIRECTORY, so a symlink anywhere on an entry's way fails
 * the import with an error that names the entry, whatever a concurrent
 * process does to the tree. At the entry itself an existing file or link is
 * replaced, never written through (O_EXCL after unlinking it).
 *
 * The host runs it as an ordinary command, `/proc/1/exe untar DEST`: the
 * agent's own binary, present in every VM whatever the environment holds (no
 * tar needed). The stream is what src/workspace/import/tarWriter.ts writes:
 * ustar headers, pax `x` records (path, linkpath, size, mtime), numbers in
 * octal or base-256, regular files, directories, symlinks and hard links.
 * Directory modification times are not restored.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "untar.h"

#define BLOCK 512
#define MAX_PATH_BYTES 4096
#define MAX_PAX_BYTES (64 * 1024)
#define COPY_BYTES (64 * 1024)

struct entry {
	char path[MAX_PATH_BYTES + 1];
	char link[MAX_PATH_BYTES + 1];
	char type;
	unsigned mode;
	uint64_t size;
	int64_t mtime;
};

static const char *current = ""; /* the entry being unpacked, for errors */

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	char msg[MAX_PATH_BYTES + 256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (current[0])
		fprintf(stderr, "pyro-untar: %s: %s\n", current, msg);
	else
		fprintf(stderr, "pyro-untar: %s\n", msg);
	exit(1);
}

/* Exactly n bytes from stdin; 0 at a clean end of input before any byte. */
static int read_full(void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(0, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("reading the stream: %s", strerror(errno));
		if (r == 0) {
			if (got == 0)
				return 0;
			fail("the stream ended early");
		}
		got += (size_t)r;
	}
	return 1;
}

static void skip(uint64_t n)
{
	char buf[COPY_BYTES];
	while (n > 0) {
		size_t step = n < sizeof buf ? (size_t)n : sizeof buf;
		if (!read_full(buf, step))
			fail("the stream ended early");
		n -= step;
	}
}

static uint64_t padding(uint64_t size) { return (BLOCK - size % BLOCK) % BLOCK; }

/* An octal field (NUL or space terminated), or base-256 with the high bit set. */
static uint64_t number(const unsigned char *field, size_t width)
{
	uint64_t v = 0;
	if (field[0] & 0x80) {
		for (size_t i = 1; i < width; i++) {
			if (v >> 56)
				fail("a number field is too large");
			v = (v << 8) | field[i];
		}
		return v;
	}
	size_t i = 0;
	while (i < width && field[i] == ' ')
		i++;
	for (; i < width && field[i] >= '0' && field[i] <= '7'; i++) {
		if (v >> 60)
			fail("a number field is too large");
		v = v * 8 + (uint64_t)(field[i] - '0');
	}
	return v;
}

static void copy_field(char *out, const unsigned char *field, size_t width)
{
	size_t n = 0;
	while (n < width && field[n])
		n++;
	memcpy(out, field, n);
	out[n] = 0;
}

/* pax records "<len> <key>=<value>\n": path, linkpath, size and mtime override the next header. */
static void read_pax(uint64_t size, struct entry *over, int *has_path, int *has_link, int *has_size, int *has_mtime)
{
	if (size > MAX_PAX_BYTES)
		fail("a pax header of %llu bytes is larger than %d", (unsigned long long)size, MAX_PAX_BYTES);
	static char buf[MAX_PAX_BYTES + 1];
	if (!read_full(buf, (size_t)size))
		fail("the stream ended early");
	skip(padding(size));
	buf[size] = 0;
	size_t at = 0;
	while (at < size) {
		char *end;
		if (buf[at] < '0' || buf[at] > '9')
			fail("a malformed pax record");
		unsigned long len = strtoul(buf + at, &end, 10);
		if (*end != ' ' || len == 0 || len > size - at || buf[at + len - 1] != '\n')
			fail("a malformed pax record");
		char *key = end + 1;
		char *eq = memchr(key, '=', (size_t)(buf + at + len - 1 - key));
		if (!eq)
			fail("a malformed pax record");
		*eq = 0;
		char *value = eq + 1;
		size_t value_len = (size_t)(buf + at + len - 1 - value);
		if (!strcmp(key, "path") || !strcmp(key, "linkpath")) {
			if (value_len > MAX_PATH_BYTES)
				fail("a pax %s longer than %d bytes", key, MAX_PATH_BYTES);
			char *out = key[0] == 'p' ? over->path : over->link;
			memcpy(out, value, value_len);
			out[value_len] = 0;
			*(key[0] == 'p' ? has_path : has_link) = 1;
		} else if (!strcmp(key, "size")) {
			over->size = strtoull(value, NULL, 10);
			*has_size = 1;
		} else if (!strcmp(key, "mtime")) {
			over->mtime = strtoll(value, NULL, 10);
			*has_mtime = 1;
		}
		at += len;
	}
}

static int all_zero(const unsigned char *b)
{
	for (int i = 0; i < BLOCK; i++)
		if (b[i])
			return 0;
	return 1;
}

/* The next entry; 0 at the end of the archive. */
static int next_entry(struct entry *e)
{
	struct entry over;
	int has_path = 0, has_link = 0, has_size = 0, has_mtime = 0;
	for (;;) {
		unsigned char h[BLOCK];
		if (!read_full(h, BLOCK) || all_zero(h))
			return 0;
		if (memcmp(h + 257, "ustar", 5) != 0)
			fail("not a ustar header");
		uint64_t size = number(h + 124, 12);
		char type = (char)h[156];
		if (type == 'x') {
			read_pax(size, &over, &has_path, &has_link, &has_size, &has_mtime);
			continue;
		}
		char name[101], prefix[156];
		copy_field(name, h, 100);
		copy_field(prefix, h + 345, 155);
		if (has_path)
			strcpy(e->path, over.path);
		else if (prefix[0])
			snprintf(e->path, sizeof e->path, "%s/%s", prefix, name);
		else
			strcpy(e->path, name);
		if (has_link)
			strcpy(e->link, over.link);
		else
			copy_field(e->link, h + 157, 100);
		e->type = type == 0 ? '0' : type;
		e->mode = (unsigned)number(h + 100, 8) & 07777;
		e->size = has_size ? over.size : size;
		e->mtime = has_mtime ? over.mtime : (int64_t)number(h + 136, 12);
		return 1;
	}
}

/* Open directory `name` under `dir` without following a link; create it first if `create`. */
static int open_dir(int dir, const char *name, int create)
{
	if (!strcmp(name, "..") || !strcmp(name, "."))
		fail("the name \"%s\" is not allowed in a path", name);
	for (int tries = 0; tries < 2; tries++) {
		int fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno == ELOOP || errno == ENOTDIR) {
			struct stat st;
			if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				fail("\"%s\" on its way is a symbolic link; refusing to write through it", name);
			fail("\"%s\" on its way is not a directory", name);
		}
		if (errno != ENOENT || !create || tries > 0)
			fail("cannot open directory \"%s\": %s", name, strerror(errno));
		if (mkdirat(dir, name, 0755) < 0 && errno != EEXIST)
			fail("cannot make directory \"%s\": %s", name, strerror(errno));
	}
	fail("cannot open directory \"%s\"", name);
}

/*
 * Walk `path` (relative; '/'-separated) from `dir`, one component at a time.
 * With `leaf`, stop before the last component and return it there. Returns the
 * directory fd reached (a new fd; `dir` is not closed).
 */
static int walk(int dir, const char *path, int create, const char **leaf)
{
	static char copy[MAX_PATH_BYTES + 1];
	snprintf(copy, sizeof copy, "%s", path);
	int fd = dup(dir);
	if (fd < 0)
		fail("dup: %s", strerror(errno));
	char *rest = copy;
	for (;;) {
		while (*rest == '/')
			rest++;
		char *slash = strchr(rest, '/');
		if (!slash) {
			if (leaf) {
				*leaf = path + (rest - copy);
				return fd;
			}
			if (*rest) {
				int next = open_dir(fd, rest, create);
				close(fd);
				fd = next;
			}
			return fd;
		}
		*slash = 0;
		if (*rest) {
			int next = open_dir(fd, rest, create);
			close(fd);
			fd = next;
		}
		rest = slash + 1;
	}
}

/* Remove what is at `name` unless it is a directory (a file or link is replaced, never written through). */
static void clear(int dir, const char *name)
{
	struct stat st;
	if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return;
		fail("cannot inspect: %s", strerror(errno));
	}
	if (S_ISDIR(st.st_mode))
		fail("a directory is in the way");
	if (unlinkat(dir, name, 0) < 0)
		fail("cannot replace the existing file: %s", strerror(errno));
}

static void put_file(int dir, const char *name, const struct entry *e)
{
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		clear(dir, name);
		fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		fail("cannot create: %s", strerror(errno));
	static char buf[COPY_BYTES];
	uint64_t left = e->size;
	while (left > 0) {
		size_t step = left < sizeof buf ? (size_t)left : sizeof buf;
		if (!read_full(buf, step))
			fail("the stream ended early");
		for (size_t done = 0; done < step;) {
			ssize_t w = write(fd, buf + done, step - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				fail("write: %s", strerror(errno));
			done += (size_t)w;
		}
		left -= step;
	}
	skip(padding(e->size));
	if (fchmod(fd, e->mode) < 0)
		fail("chmod: %s", strerror(errno));
	struct timespec times[2] = {{e->mtime, 0}, {e->mtime, 0}};
	futimens(fd, times);
	if (close(fd) < 0)
		fail("close: %s", strerror(errno));
}

static void put_dir(int dir, const char *name, const struct entry *e)
{
	if (mkdirat(dir, name, 0700) < 0) {
		if (errno != EEXIST)
			fail("cannot make the directory: %s", strerror(errno));
		struct stat st;
		if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
			clear(dir, name);
			if (mkdirat(dir, name, 0700) < 0)
				fail("cannot make the directory: %s", strerror(errno));
		}
	}
	int fd = open_dir(dir, name, 0);
	if (fchmod(fd, e->mode) < 0)
		fail("chmod: %s", strerror(errno));
	close(fd);
}

static void put_symlink(int dir, const char *name, const struct entry *e)
{
	if (symlinkat(e->link, dir, name) == 0)
		return;
	if (errno != EEXIST)
		fail("cannot make the link: %s", strerror(errno));
	clear(dir, name);
	if (symlinkat(e->link, dir, name) < 0)
		fail("cannot make the link: %s", strerror(errno));
}

static void put_hardlink(int root, int dir, const char *name, const struct entry *e)
{
	const char *target_leaf;
	int target_dir = walk(root, e->link, 0, &target_leaf);
	/* Flags 0: a link at the target is linked itself, never followed. */
	if (linkat(target_dir, target_leaf, dir, name, 0) < 0) {
		if (errno != EEXIST)
			fail("cannot link to \"%s\": %s", e->link, strerror(errno));
		clear(dir, name);
		if (linkat(target_dir, target_leaf, dir, name, 0) < 0)
			fail("cannot link to \"%s\": %s", e->link, strerror(errno));
	}
	close(target_dir);
}

/* A name as the archive gives it, without "./" and trailing slashes; "" for DEST itself. */
static void normalise(char *path)
{
	while (path[0] == '.' && path[1] == '/')
		memmove(path, path + 2, strlen(path + 2) + 1);
	size_t n = strlen(path);
	while (n > 0 && path[n - 1] == '/')
		path[--n] = 0;
	if (!strcmp(path, "."))
		path[0] = 0;
}

int untar_main(int argc, char **argv)
{
	if (argc != 3 || argv[2][0] != '/')
		fail("usage: %s untar /ABSOLUTE/DEST < archive", argv[0]);
	umask(0);
	int top = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0)
		fail("open /: %s", strerror(errno));
	current = argv[2];
	int root = walk(top, argv[2] + 1, 1, NULL);
	close(top);
	static struct entry e;
	for (;;) {
		current = "";
		if (!next_entry(&e))
			break;
		normalise(e.path);
		current = e.path;
		if (!e.path[0]) {
			skip(e.size + padding(e.size));
			continue;
		}
		const char *leaf;
		int dir = walk(root, e.path, 1, &leaf);
		switch (e.type) {
		case '0':
		case '7':
			put_file(dir, leaf, &e);
			close(dir);
			continue;
		case '5':
			put_dir(dir, leaf, &e);
			break;
		case '2':
			put_symlink(dir, leaf, &e);
			break;
		case '1':
			put_hardlink(root, dir, leaf, &e);
			break;
		default:
			fail("entries of type '%c' are not imported", e.type);
		}
		close(dir);
		skip(e.size + padding(e.size)); /* data of a non-file entry, if any */
	}
	return 0;
}
