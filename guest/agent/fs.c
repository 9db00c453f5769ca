/*
 * `pyro-agent fs ...`: file operations on the live workspace, for the host to
 * run as a command (`/proc/1/exe fs ...`, never as PID 1) and parse.
 *
 *   fs [--root DIR] list PATH [--recursive] [--max-entries N]   (N defaults to 10000)
 *   fs [--root DIR] read PATH MAX_BYTES [--no-follow]
 *   fs [--root DIR] write PATH [--max-bytes N]                  (content on stdin)
 *   fs [--root DIR] tar PATH
 *   fs [--root DIR] delete PATH
 *
 * Confinement. ROOT is /workspace unless --root says otherwise (tests). PATH is
 * ROOT itself or ROOT/REL, where REL has no empty, "." or ".." component (the
 * host normalises it; anything else is refused, not repaired). REL is resolved
 * beneath an fd of ROOT with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS):
 * no "..", absolute symlink or chain of links takes it outside ROOT (EXDEV,
 * "outside ROOT"), and links that stay inside are followed on the way. The last
 * component is followed only by `read`; `list` and `tar` report a link there as
 * a link, and `write` replaces it. Walks never follow links and never descend
 * into a linked directory.
 *
 * Output (stdout). A FIELD is bytes without NUL, ended by one NUL: names and
 * link targets may hold any other byte, newlines included. Numbers are decimal
 * ASCII fields (mode: octal ASCII of the permission bits, st_mode & 07777).
 *
 *   list   an entry record for PATH itself, then one per entry beneath it, then
 *          an end record:
 *            "entry" PATH TYPE SIZE MODE MTIME TARGET   (7 fields)
 *            "end" STATUS COUNT                         (3 fields)
 *          PATH is the PATH argument, then "/NAME" per level below it. TYPE is
 *          file, directory, symlink or other (FIFO, socket, device), from lstat.
 *          SIZE is st_size (a link: its target's length), MTIME whole seconds
 *          since the epoch (may be negative), TARGET the link's target ("" for
 *          others). Entries come in directory order (unsorted), depth first, a
 *          directory before what it holds; entries of PATH only, unless
 *          --recursive. COUNT is how many entries beneath PATH were listed (PATH
 *          itself is not counted); STATUS is "complete", or "truncated" when
 *          there were more than --max-entries. A directory PATH is listed; any
 *          other PATH gives its own record only.
 *   read   SIZE (one field: the file's st_size when opened), then min(SIZE,
 *          MAX_BYTES) bytes of content up to the end of stdout (fewer if the
 *          file shrank meanwhile): fewer bytes than SIZE means truncated.
 *          Refuses anything but a regular file (after following in-root links;
 *          with --no-follow a link at PATH itself is refused: "is a symbolic link").
 *   write  BYTES (one field): what was written. stdin goes to a new file in
 *          PATH's directory (".pyro-fs-PID-N.tmp"), is fsynced and renamed over
 *          PATH, so readers see the old file or the new one, never a mix; a link
 *          at PATH is replaced, not written through. Missing parents are made
 *          (0755, as mkdir -p, each resolved beneath ROOT). An existing file's
 *          permission bits and owner are kept; a new file gets 0644. A killed
 *          write can leave its temporary file behind.
 *   delete "1" (one field) once PATH, a file, link or other non-directory, is
 *          unlinked (a link itself, never what it names; its directory is
 *          resolved beneath ROOT like any PATH). A directory is refused ("is a
 *          directory"); nothing else is removed.
 *   tar    a POSIX tar stream: ustar headers, with a pax `x` record before an
 *          entry for what ustar cannot hold (a name or link target over 100
 *          bytes, a size or mtime of 8^11 or more or a negative mtime, a uid or
 *          gid of 8^7 or more; those numbers also go base-256 in the header).
 *          Names are relative to PATH's parent: the last component of PATH,
 *          then "/NAME" per level (`tar /workspace/src` gives `src/`,
 *          `src/a.txt`, ...; `tar /workspace` gives `workspace/...`).
 *          Directories end in "/". Types: regular file '0' (hard links are
 *          stored as files), directory '5', symlink '2' (as the link, never
 *          followed), FIFO '6', character device '3', block device '4' (no
 *          content; the host decides what to refuse). Sockets have no tar type
 *          and are left out with a warning. Numeric owners only, no uname.
 *          Ends with two zero blocks (no padding to a 10 KiB record). A file
 *          that shrinks while being read is padded with zeros (one removed
 *          or replaced by a link before it is read is all zeros), one that
 *          grows is cut at its size when its header was written; all warn.
 *
 * Errors: one line on stderr, `fs: OP: PATH: WHY` (bytes below 0x20, 0x7f and
 * '\' in PATH escaped as \xHH), and an exit status saying what kind:
 *   1 any other failure (WHY is strerror's text)
 *   2 usage: bad arguments or a PATH not in normal form (`fs: usage: ...`)
 *   3 "no such file or directory"
 *   4 "outside ROOT": PATH is not under ROOT, or resolving it would leave ROOT
 *   5 "not a regular file", "not a directory" or "is a directory"
 *   6 write: "more than N bytes on stdin"
 * Output already written before a failure is incomplete and must be dropped.
 * Warnings (tar only) are `fs: tar: PATH: WHY` lines on stderr with status 0.
 * Paths are at most 4096 bytes ("name too long", 1 otherwise).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs.h"

#ifndef SYS_openat2
#define SYS_openat2 437 /* the same on every architecture (Linux 5.6) */
#endif
#ifndef RESOLVE_NO_MAGICLINKS
#define RESOLVE_NO_MAGICLINKS 0x02
#endif
#ifndef RESOLVE_BENEATH
#define RESOLVE_BENEATH 0x08
#endif

/* struct open_how of <linux/openat2.h>, which musl's headers lack. */
struct fs_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

enum {
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_NOT_FOUND = 3,
	EXIT_OUTSIDE = 4,
	EXIT_WRONG_TYPE = 5,
	EXIT_TOO_LARGE = 6,
};

#define MAX_PATH_BYTES 4096
#define COPY_BYTES (64 * 1024)
#define BLOCK 512
#define DEFAULT_MAX_ENTRIES 10000

static const char *op = "";
static const char *root_path = "/workspace";
static int root_fd = -1;
/* A write's temporary file, removed if the write fails. */
static int tmp_dir = -1;
static char tmp_name[64];

static void print_escaped(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f || c == '\\')
			fprintf(stderr, "\\x%02x", c);
		else
			fputc(c, stderr);
	}
}

static void report(const char *path, const char *why)
{
	fprintf(stderr, "fs: %s: ", op);
	print_escaped(path);
	fprintf(stderr, ": %s\n", why);
}

__attribute__((noreturn)) static void fail(int code, const char *path, const char *why)
{
	if (tmp_dir >= 0)
		unlinkat(tmp_dir, tmp_name, 0);
	report(path, why);
	exit(code);
}

__attribute__((noreturn)) static void fail_errno(const char *path, int err)
{
	char outside[MAX_PATH_BYTES + 16];
	switch (err) {
	case ENOENT:
		fail(EXIT_NOT_FOUND, path, "no such file or directory");
	case EXDEV:
		snprintf(outside, sizeof outside, "outside %s", root_path);
		fail(EXIT_OUTSIDE, path, outside);
	case ENOTDIR:
		fail(EXIT_WRONG_TYPE, path, "not a directory");
	case EISDIR:
		fail(EXIT_WRONG_TYPE, path, "is a directory");
	case ENAMETOOLONG:
		fail(EXIT_FAILED, path, "name too long");
	case ENOSYS:
		fail(EXIT_FAILED, path, "openat2 is not supported by this kernel (Linux 5.6 or later is needed)");
	default:
		fail(EXIT_FAILED, path, strerror(err));
	}
}

__attribute__((noreturn)) static void usage(void)
{
	fprintf(stderr, "fs: usage: fs [--root DIR] list PATH [--recursive] [--max-entries N] | read PATH MAX_BYTES"
			" [--no-follow] | write PATH [--max-bytes N] | tar PATH | delete PATH\n");
	exit(EXIT_USAGE);
}

/* A decimal count, digits only. */
static uint64_t count_arg(const char *s)
{
	uint64_t v = 0;
	if (!*s)
		usage();
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			usage();
		v = v * 10 + (uint64_t)(*s - '0');
	}
	return v;
}

/* ---- stdout ---- */

static unsigned char out_buf[COPY_BYTES];
static size_t out_len;

static void write_all(int fd, const void *p, size_t n, const char *what)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			fail_errno(what, errno);
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

static void out_flush(void)
{
	write_all(1, out_buf, out_len, "stdout");
	out_len = 0;
}

static void out(const void *p, size_t n)
{
	if (out_len + n > sizeof out_buf)
		out_flush();
	if (n >= sizeof out_buf) {
		write_all(1, p, n, "stdout");
		return;
	}
	memcpy(out_buf + out_len, p, n);
	out_len += n;
}

static void out_field(const char *s) { out(s, strlen(s) + 1); }

static void out_number(int64_t v)
{
	char s[24];
	snprintf(s, sizeof s, "%lld", (long long)v);
	out_field(s);
}

/* Up to `max` bytes of `fd` to stdout, fewer at its end; returns how many. */
static uint64_t copy_out(int fd, uint64_t max, const char *path)
{
	static char buf[COPY_BYTES];
	uint64_t done = 0;
	while (done < max) {
		ssize_t n = read(fd, buf, max - done < sizeof buf ? (size_t)(max - done) : sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail_errno(path, errno);
		if (n == 0)
			break;
		out(buf, (size_t)n);
		done += (uint64_t)n;
	}
	return done;
}

/* ---- paths beneath the root ---- */

/* PATH relative to the root ("" for the root itself); exits unless PATH is in normal form under it. */
static const char *relative(const char *path)
{
	size_t n = strlen(root_path);
	if (strncmp(path, root_path, n) != 0 || (path[n] && path[n] != '/'))
		fail_errno(path, EXDEV);
	const char *rel = path[n] ? path + n + 1 : path + n;
	for (const char *c = rel; path[n];) {
		const char *end = strchrnul(c, '/');
		size_t len = (size_t)(end - c);
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
			fprintf(stderr, "fs: %s: ", op);
			print_escaped(path);
			fprintf(stderr, ": not a normalised path (an empty, \".\" or \"..\" component)\n");
			exit(EXIT_USAGE);
		}
		if (!*end)
			break;
		c = end + 1;
	}
	if (strlen(path) > MAX_PATH_BYTES)
		fail_errno(path, ENAMETOOLONG);
	return rel;
}

/* openat2 of REL ("" for the root) beneath the root; -1 with errno on failure. */
static int open_beneath(const char *rel, uint64_t flags)
{
	struct fs_open_how how = {
		.flags = flags | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	for (int tries = 0;; tries++) {
		long fd = syscall(SYS_openat2, root_fd, *rel ? rel : ".", &how, sizeof how);
		/* EAGAIN: a concurrent rename kept the kernel from checking a "..": try again. */
		if (fd < 0 && (errno == EINTR || (errno == EAGAIN && tries < 16)))
			continue;
		return (int)fd;
	}
}

/*
 * The directory holding REL's last component (links on the way followed
 * beneath the root), and that component: the root's own is "." in the root.
 */
static int locate(const char *rel, const char *path, const char **leaf)
{
	static char parent[MAX_PATH_BYTES + 1];
	const char *slash = strrchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : 0;
	memcpy(parent, rel, n);
	parent[n] = 0;
	*leaf = !*rel ? "." : slash ? slash + 1 : rel;
	int dir = open_beneath(parent, O_RDONLY | O_DIRECTORY);
	if (dir < 0)
		fail_errno(path, errno);
	return dir;
}

struct pathbuf {
	char s[MAX_PATH_BYTES + 2]; /* room for a directory's trailing '/' in tar */
	size_t len;
};

static size_t path_push(struct pathbuf *p, const char *name)
{
	size_t mark = p->len, n = strlen(name);
	if (p->len + 1 + n > MAX_PATH_BYTES) {
		p->s[p->len] = 0;
		fail_errno(p->s, ENAMETOOLONG);
	}
	p->s[p->len++] = '/';
	memcpy(p->s + p->len, name, n + 1);
	p->len += n;
	return mark;
}

static void path_pop(struct pathbuf *p, size_t mark)
{
	p->len = mark;
	p->s[mark] = 0;
}

/* A link's target, NUL-terminated, in a static buffer. */
static const char *link_target(int dir, const char *name, const char *path)
{
	static char target[MAX_PATH_BYTES + 1];
	ssize_t n = readlinkat(dir, name, target, sizeof target);
	if (n < 0)
		fail_errno(path, errno);
	if ((size_t)n >= sizeof target)
		fail_errno(path, ENAMETOOLONG);
	target[n] = 0;
	return target;
}

/* Called for each entry (stat'ed without following); returns 0 to stop the walk. */
typedef int (*visit_fn)(int dir, const char *name, const struct stat *st, struct pathbuf *p);

/*
 * Visit every entry of directory `fd` (which it closes), depth first, a
 * directory before what it holds, descending only when `recursive`. A linked
 * directory is a link: never descended. Entries that vanish meanwhile are
 * skipped. Returns 0 if a visit stopped the walk.
 */
static int walk(int fd, struct pathbuf *p, int recursive, visit_fn visit)
{
	DIR *d = fdopendir(fd);
	if (!d)
		fail_errno(p->s, errno);
	int go = 1;
	while (go) {
		errno = 0;
		struct dirent *e = readdir(d);
		if (!e) {
			if (errno)
				fail_errno(p->s, errno);
			break;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			fail_errno(p->s, errno);
		}
		size_t mark = path_push(p, e->d_name);
		go = visit(dirfd(d), e->d_name, &st, p);
		if (go && recursive && S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				go = walk(sub, p, recursive, visit);
			else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) /* not replaced meanwhile */
				fail_errno(p->s, errno);
		}
		path_pop(p, mark);
	}
	closedir(d);
	return go;
}

/* A directory handed to walk(): `leaf` in `dir`, not through a link. */
static int open_subdir(int dir, const char *leaf, const char *path)
{
	int fd = openat(dir, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fail_errno(path, errno);
	return fd;
}

/* Deep trees hold one directory fd per level. */
static void raise_fd_limit(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* ---- list ---- */

static uint64_t list_max, list_count;
static int list_truncated;

static const char *type_name(mode_t mode)
{
	return S_ISREG(mode) ? "file" : S_ISDIR(mode) ? "directory" : S_ISLNK(mode) ? "symlink" : "other";
}

static void list_record(int dir, const char *name, const struct stat *st, const char *path)
{
	char mode[8];
	snprintf(mode, sizeof mode, "%o", (unsigned)(st->st_mode & 07777));
	out_field("entry");
	out_field(path);
	out_field(type_name(st->st_mode));
	out_number((int64_t)st->st_size);
	out_field(mode);
	out_number((int64_t)st->st_mtim.tv_sec);
	out_field(S_ISLNK(st->st_mode) ? link_target(dir, name, path) : "");
}

static int list_visit(int dir, const char *name, const struct stat *st, struct pathbuf *p)
{
	if (list_count == list_max) {
		list_truncated = 1;
		return 0;
	}
	list_count++;
	list_record(dir, name, st, p->s);
	return 1;
}

static void run_list(const char *path, int recursive)
{
	const char *leaf;
	int dir = locate(relative(path), path, &leaf);
	struct stat st;
	if (fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_errno(path, errno);
	list_record(dir, leaf, &st, path);
	if (S_ISDIR(st.st_mode)) {
		static struct pathbuf p;
		p.len = strlen(path);
		memcpy(p.s, path, p.len + 1);
		raise_fd_limit();
		walk(open_subdir(dir, leaf, path), &p, recursive, list_visit);
	}
	close(dir);
	out_field("end");
	out_field(list_truncated ? "truncated" : "complete");
	out_number((int64_t)list_count);
	out_flush();
}

/* ---- read ---- */

static void run_read(const char *path, uint64_t max, int follow)
{
	const char *rel = relative(path);
	/* O_PATH first: opening a FIFO or device to find out what it is could block or act.
	 * Without `follow`, a link at PATH itself is reported, not read through. */
	int probe = open_beneath(rel, O_PATH | (follow ? 0 : O_NOFOLLOW));
	struct stat st, opened;
	if (probe < 0 || fstat(probe, &st) < 0)
		fail_errno(path, errno);
	close(probe);
	if (S_ISLNK(st.st_mode))
		fail(EXIT_WRONG_TYPE, path, "is a symbolic link");
	if (!S_ISREG(st.st_mode))
		fail(EXIT_WRONG_TYPE, path, "not a regular file");
	int fd = open_beneath(rel, O_RDONLY | O_NOCTTY | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
	if (fd < 0 || fstat(fd, &opened) < 0)
		fail_errno(path, errno);
	if (opened.st_dev != st.st_dev || opened.st_ino != st.st_ino || !S_ISREG(opened.st_mode))
		fail(EXIT_FAILED, path, "changed while being opened");
	out_number((int64_t)opened.st_size);
	copy_out(fd, (uint64_t)opened.st_size < max ? (uint64_t)opened.st_size : max, path);
	close(fd);
	out_flush();
}

/* ---- write ---- */

/* PARENT (relative, "" for the root) as a directory fd, made as mkdir -p where missing, each level resolved beneath the root. */
static int make_parents(const char *parent, const char *path)
{
	static char prefix[MAX_PATH_BYTES + 1];
	snprintf(prefix, sizeof prefix, "%s", parent);
	int dir = open_beneath("", O_RDONLY | O_DIRECTORY);
	if (dir < 0)
		fail_errno(path, errno);
	for (char *c = prefix; *c;) {
		char *end = strchrnul(c, '/');
		char saved = *end;
		*end = 0;
		int next = open_beneath(prefix, O_RDONLY | O_DIRECTORY);
		if (next < 0 && errno == ENOENT) {
			if (mkdirat(dir, c, 0755) < 0 && errno != EEXIST)
				fail_errno(path, errno);
			next = open_beneath(prefix, O_RDONLY | O_DIRECTORY);
		}
		if (next < 0)
			fail_errno(path, errno);
		close(dir);
		dir = next;
		*end = saved;
		c = saved ? end + 1 : end;
	}
	return dir;
}

static void run_write(const char *path, uint64_t max)
{
	const char *rel = relative(path);
	if (!*rel)
		fail_errno(path, EISDIR);
	static char parent[MAX_PATH_BYTES + 1];
	const char *slash = strrchr(rel, '/');
	const char *leaf = slash ? slash + 1 : rel;
	snprintf(parent, sizeof parent, "%.*s", slash ? (int)(slash - rel) : 0, rel);
	int dir = make_parents(parent, path);

	struct stat old;
	int had_file = 0;
	if (fstatat(dir, leaf, &old, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(old.st_mode))
			fail_errno(path, EISDIR);
		had_file = S_ISREG(old.st_mode);
	} else if (errno != ENOENT) {
		fail_errno(path, errno);
	}

	int fd = -1;
	for (unsigned n = 0; fd < 0; n++) {
		snprintf(tmp_name, sizeof tmp_name, ".pyro-fs-%d-%u.tmp", (int)getpid(), n);
		fd = openat(dir, tmp_name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && (errno != EEXIST || n >= 100))
			fail_errno(path, errno);
	}
	tmp_dir = dir;

	static char buf[COPY_BYTES];
	uint64_t total = 0;
	for (;;) {
		ssize_t r = read(0, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail_errno("stdin", errno);
		if (r == 0)
			break;
		if ((uint64_t)r > max - total) {
			char why[64];
			snprintf(why, sizeof why, "more than %llu bytes on stdin", (unsigned long long)max);
			fail(EXIT_TOO_LARGE, path, why);
		}
		write_all(fd, buf, (size_t)r, path);
		total += (uint64_t)r;
	}
	if (fchmod(fd, had_file ? old.st_mode & 07777 : 0644) < 0)
		fail_errno(path, errno);
	if (had_file && fchown(fd, old.st_uid, old.st_gid) < 0 && errno != EPERM)
		fail_errno(path, errno);
	if (fsync(fd) < 0 || close(fd) < 0)
		fail_errno(path, errno);
	if (renameat(dir, tmp_name, dir, leaf) < 0)
		fail_errno(path, errno);
	tmp_dir = -1;
	fsync(dir); /* the rename itself, durably; the file is in place either way */
	close(dir);
	out_number((int64_t)total);
	out_flush();
}

/* Remove PATH, a file or link (never what a link names, never a directory). */
static void run_delete(const char *path)
{
	const char *rel = relative(path);
	if (!*rel)
		fail_errno(path, EISDIR);
	const char *leaf;
	int dir = locate(rel, path, &leaf);
	struct stat st;
	if (fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_errno(path, errno);
	if (S_ISDIR(st.st_mode))
		fail_errno(path, EISDIR);
	if (unlinkat(dir, leaf, 0) < 0)
		fail_errno(path, errno);
	fsync(dir);
	close(dir);
	out_number(1);
	out_flush();
}

/* ---- tar ---- */

static size_t tar_base; /* where names start in the walk's path: PATH's last component */

/* An octal field, NUL-terminated; base-256 (GNU, high bit set) when octal does not fit. */
static void tar_number(unsigned char *field, size_t width, uint64_t v)
{
	if (v < (1ULL << (3 * (width - 1)))) {
		char text[16];
		snprintf(text, sizeof text, "%0*llo", (int)(width - 1), (unsigned long long)v);
		memcpy(field, text, width); /* the digits and their NUL */
		return;
	}
	for (size_t i = width - 1; i > 0; i--, v >>= 8)
		field[i] = (unsigned char)(v & 0xff);
	field[0] = 0x80;
}

/* Appends "LEN KEY=VALUE\n" (LEN counts itself) to `pax` at `*at`. */
static void pax_record(char *pax, size_t *at, const char *key, const char *value)
{
	size_t body = strlen(key) + strlen(value) + 3, len = body + 1;
	while (snprintf(NULL, 0, "%zu", len) + body != len)
		len++;
	*at += (size_t)sprintf(pax + *at, "%zu %s=%s\n", len, key, value);
}

static void header_checksum(unsigned char *h)
{
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum); /* six digits, NUL; the space stays */
}

static void ustar_header(unsigned char *h, const char *name, char type, unsigned mode, uint64_t size, uint64_t mtime)
{
	memset(h, 0, BLOCK);
	memcpy(h, name, strnlen(name, 100));
	tar_number(h + 100, 8, mode);
	tar_number(h + 124, 12, size);
	tar_number(h + 136, 12, mtime);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
}

static void tar_header(const char *name, const struct stat *st, char type, const char *link)
{
	static char pax[2 * MAX_PATH_BYTES + 512];
	size_t at = 0;
	char num[24];
	uint64_t size = type == '0' ? (uint64_t)st->st_size : 0;
	int64_t mtime = st->st_mtim.tv_sec;
	const uint64_t octal_11 = 1ULL << 33, octal_7 = 1ULL << 21;
	if (strlen(name) > 100)
		pax_record(pax, &at, "path", name);
	if (strlen(link) > 100)
		pax_record(pax, &at, "linkpath", link);
	if (size >= octal_11) {
		snprintf(num, sizeof num, "%llu", (unsigned long long)size);
		pax_record(pax, &at, "size", num);
	}
	if (mtime < 0 || (uint64_t)mtime >= octal_11) {
		snprintf(num, sizeof num, "%lld", (long long)mtime);
		pax_record(pax, &at, "mtime", num);
	}
	if (st->st_uid >= octal_7) {
		snprintf(num, sizeof num, "%u", (unsigned)st->st_uid);
		pax_record(pax, &at, "uid", num);
	}
	if (st->st_gid >= octal_7) {
		snprintf(num, sizeof num, "%u", (unsigned)st->st_gid);
		pax_record(pax, &at, "gid", num);
	}
	uint64_t field_mtime = mtime < 0 ? 0 : (uint64_t)mtime;
	unsigned char h[BLOCK];
	if (at > 0) {
		ustar_header(h, "././@PaxHeader", 'x', 0644, at, field_mtime);
		header_checksum(h);
		out(h, BLOCK);
		out(pax, at);
		static const char zeros[BLOCK];
		out(zeros, (BLOCK - at % BLOCK) % BLOCK);
	}
	ustar_header(h, name, type, st->st_mode & 07777, size, field_mtime);
	tar_number(h + 108, 8, st->st_uid);
	tar_number(h + 116, 8, st->st_gid);
	memcpy(h + 157, link, strnlen(link, 100));
	if (type == '3' || type == '4') {
		tar_number(h + 329, 8, major(st->st_rdev));
		tar_number(h + 337, 8, minor(st->st_rdev));
	}
	header_checksum(h);
	out(h, BLOCK);
}

static void warn(const char *path, const char *why) { report(path, why); }

/* Exactly `size` bytes of the file (zeros past its end if it shrank), then the padding. */
static void tar_content(int dir, const char *name, uint64_t size, const char *path)
{
	static const char zeros[BLOCK];
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	/* Gone, or now a link, since its header went out: the stream must still hold `size` bytes. */
	if (fd < 0 && errno != ENOENT && errno != ELOOP)
		fail_errno(path, errno);
	uint64_t left = fd < 0 ? size : size - copy_out(fd, size, path);
	if (left > 0)
		warn(path, fd < 0 ? "file removed or replaced before it was read; stored as zeros"
				  : "file shrank while being read; padded with zeros");
	for (; left > 0; left -= left < BLOCK ? left : BLOCK)
		out(zeros, left < BLOCK ? (size_t)left : BLOCK);
	char probe;
	if (fd >= 0 && read(fd, &probe, 1) > 0)
		warn(path, "file grew while being read; cut at its size when it was stored");
	if (fd >= 0)
		close(fd);
	out(zeros, (BLOCK - size % BLOCK) % BLOCK);
}

static int tar_visit(int dir, const char *name, const struct stat *st, struct pathbuf *p)
{
	const char *tar_name = p->s + tar_base;
	mode_t m = st->st_mode;
	if (S_ISREG(m)) {
		tar_header(tar_name, st, '0', "");
		tar_content(dir, name, (uint64_t)st->st_size, p->s);
	} else if (S_ISDIR(m)) {
		p->s[p->len] = '/';
		p->s[p->len + 1] = 0;
		tar_header(tar_name, st, '5', "");
		p->s[p->len] = 0;
	} else if (S_ISLNK(m)) {
		tar_header(tar_name, st, '2', link_target(dir, name, p->s));
	} else if (S_ISFIFO(m) || S_ISCHR(m) || S_ISBLK(m)) {
		tar_header(tar_name, st, S_ISFIFO(m) ? '6' : S_ISCHR(m) ? '3' : '4', "");
	} else {
		warn(p->s, "socket left out (tar has no type for it)");
	}
	return 1;
}

static void run_tar(const char *path)
{
	const char *leaf;
	int dir = locate(relative(path), path, &leaf);
	static struct pathbuf p;
	p.len = strlen(path);
	memcpy(p.s, path, p.len + 1);
	tar_base = (size_t)(strrchr(path, '/') - path) + 1;
	struct stat st;
	if (fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_errno(path, errno);
	tar_visit(dir, leaf, &st, &p);
	if (S_ISDIR(st.st_mode)) {
		raise_fd_limit();
		walk(open_subdir(dir, leaf, path), &p, 1, tar_visit);
	}
	close(dir);
	static const char end[2 * BLOCK];
	out(end, sizeof end);
	out_flush();
}

int fs_main(int argc, char **argv)
{
	int i = 2; /* argv[1] is "fs" */
	if (i + 1 < argc && !strcmp(argv[i], "--root"))
		root_path = argv[i + 1], i += 2;
	size_t root_len = strlen(root_path);
	if (root_path[0] != '/' || root_len < 2 || root_path[root_len - 1] == '/' || i + 1 >= argc)
		usage();
	op = argv[i];
	const char *path = argv[i + 1];
	char **rest = argv + i + 2;
	int nrest = argc - i - 2;

	root_fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		fail_errno(root_path, errno);

	if (!strcmp(op, "list")) {
		int recursive = 0;
		list_max = DEFAULT_MAX_ENTRIES;
		for (int k = 0; k < nrest; k++) {
			if (!strcmp(rest[k], "--recursive"))
				recursive = 1;
			else if (!strcmp(rest[k], "--max-entries") && k + 1 < nrest)
				list_max = count_arg(rest[++k]);
			else
				usage();
		}
		run_list(path, recursive);
	} else if (!strcmp(op, "read") && (nrest == 1 || (nrest == 2 && !strcmp(rest[1], "--no-follow")))) {
		run_read(path, count_arg(rest[0]), nrest == 1);
	} else if (!strcmp(op, "write") && (nrest == 0 || (nrest == 2 && !strcmp(rest[0], "--max-bytes")))) {
		run_write(path, nrest ? count_arg(rest[1]) : UINT64_MAX);
	} else if (!strcmp(op, "tar") && nrest == 0) {
		run_tar(path);
	} else if (!strcmp(op, "delete") && nrest == 0) {
		run_delete(path);
	} else {
		usage();
	}
	return 0;
}
