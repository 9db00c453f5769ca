/* Phases that run once at boot, before the agent serves the host. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define MODULES_DIR "/lib/modules/pyro"
#define MODULES_ORDER MODULES_DIR "/order"
/* Loaded only when the VM has a NIC (pyro.net=1): virtio_net and its deps. */
#define MODULES_ORDER_NETWORK MODULES_DIR "/order-network"
#define ROOT_MOUNT "/mnt/root"
/* From <linux/fs.h>, which musl-gcc does not see: a block device's read-ahead, in sectors. */
#define BLKRASET _IO(0x12, 98)
/*
 * The root disk's read-ahead: 2 MiB, not the kernel's 128 KiB. A command's
 * first exec pages its binary in by faults; each miss is a virtio request,
 * and under TCG a request costs far more than the bytes it carries. Read 2 MiB
 * at a time, busybox's first `sh -c true` takes ~60 ms instead of ~85 (measured
 * with the agent timing it in the guest). Reads stop at a file's end, so small
 * files cost no more.
 */
#define ROOT_READ_AHEAD_SECTORS (2 * 1024 * 1024 / 512)
/* Devices appear as their drivers probe; give them this long. */
#define DEVICE_WAIT_MS 5000
#define DEVICE_POLL_MS 5

struct boot_marks boot_marks;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int mount_if_needed(const char *source, const char *target, const char *type,
			   unsigned long flags, const char *data)
{
	mkdir(target, 0755);
	if (mount(source, target, type, flags, data) < 0 && errno != EBUSY) {
		char what[128];
		snprintf(what, sizeof what, "mount %s on %s", type, target);
		return log_errno(what);
	}
	return 0;
}

int boot_early_mounts(void)
{
	if (mount_if_needed("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0)
		return -1;
	int console = open("/dev/console", O_RDWR | O_NOCTTY);
	if (console >= 0) {
		dup2(console, 0);
		dup2(console, 1);
		dup2(console, 2);
		if (console > 2)
			close(console);
	}
	if (mount_if_needed("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	if (mount_if_needed("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return -1;
	return 0;
}

static int load_module(const char *name)
{
	char path[256];
	snprintf(path, sizeof path, MODULES_DIR "/%s.ko", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* A kernel with the driver built in ships no module for it. */
		if (errno == ENOENT)
			return 0;
		return log_errno(path);
	}
	int rc = (int)syscall(SYS_finit_module, fd, "", 0);
	int saved = errno;
	close(fd);
	if (rc < 0 && saved != EEXIST) {
		errno = saved;
		return log_errno(path);
	}
	return 0;
}

static void load_modules_in(const char *order_file)
{
	FILE *order = fopen(order_file, "re");
	if (!order)
		return;
	char name[128];
	while (fgets(name, sizeof name, order)) {
		name[strcspn(name, "\r\n")] = 0;
		if (name[0])
			load_module(name);
	}
	fclose(order);
}

void boot_load_modules(int network)
{
	load_modules_in(MODULES_ORDER);
	if (network)
		load_modules_in(MODULES_ORDER_NETWORK);
	boot_marks.modules_ns = boottime_ns();
}

static const char *cmdline(void)
{
	static char text[4096];
	static int loaded;
	if (!loaded) {
		FILE *f = fopen("/proc/cmdline", "re");
		if (f) {
			size_t n = fread(text, 1, sizeof text - 1, f);
			text[n] = 0;
			fclose(f);
		}
		loaded = 1;
	}
	return text;
}

/* Where `token` starts a word of the command line, or NULL; `whole`: it must end one too. */
static const char *cmdline_word(const char *token, int whole)
{
	const char *line = cmdline();
	size_t len = strlen(token);
	if (len == 0)
		return NULL;
	for (const char *p = line; (p = strstr(p, token)) != NULL; p += len) {
		int starts = p == line || p[-1] == ' ';
		int ends = p[len] == 0 || p[len] == ' ' || p[len] == '\n';
		if (starts && (ends || !whole))
			return p;
	}
	return NULL;
}

int boot_cmdline_has(const char *token) { return cmdline_word(token, 1) != NULL; }

long boot_cmdline_number(const char *prefix, long fallback)
{
	const char *p = cmdline_word(prefix, 0);
	if (!p)
		return fallback;
	char *end;
	long n = strtol(p + strlen(prefix), &end, 10);
	return end == p + strlen(prefix) ? fallback : n;
}

static int read_small_file(const char *path, char *out, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, out, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = 0;
	out[strcspn(out, "\r\n")] = 0;
	return 0;
}

/* Scan `class_dir` for an entry whose `attr` file reads `want`; copy "/dev/<entry>". */
static int scan_for(const char *class_dir, const char *attr, const char *want, char *path,
		    size_t size)
{
	DIR *dir = opendir(class_dir);
	if (!dir)
		return -1;
	struct dirent *entry;
	int found = -1;
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.')
			continue;
		char file[512], value[128];
		snprintf(file, sizeof file, "%s/%s/%s", class_dir, entry->d_name, attr);
		if (read_small_file(file, value, sizeof value) == 0 && strcmp(value, want) == 0) {
			snprintf(path, size, "/dev/%s", entry->d_name);
			found = 0;
			break;
		}
	}
	closedir(dir);
	if (found == 0 && access(path, F_OK) < 0)
		found = -1; /* sysfs knows it; devtmpfs has not made the node yet */
	return found;
}

static int wait_for(const char *class_dir, const char *attr, const char *want, char *path,
		    size_t size)
{
	for (int waited = 0; waited <= DEVICE_WAIT_MS; waited += DEVICE_POLL_MS) {
		if (scan_for(class_dir, attr, want, path, size) == 0)
			return 0;
		sleep_ms(DEVICE_POLL_MS);
	}
	log_line("no device in %s with %s=%s", class_dir, attr, want);
	errno = ENODEV;
	return -1;
}

int find_block_device(const char *serial, char *path, size_t size)
{
	return wait_for("/sys/block", "serial", serial, path, size);
}

int boot_mount_root(void)
{
	char dev[64];
	if (find_block_device(PYRO_ROOT_SERIAL, dev, sizeof dev) < 0)
		return -1;
	/* Only speed is lost without it: a failure is logged, and the boot goes on. */
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, BLKRASET, (unsigned long)ROOT_READ_AHEAD_SECTORS) < 0)
		log_errno("root disk read-ahead");
	if (fd >= 0)
		close(fd);
	mkdir("/mnt", 0755);
	mkdir(ROOT_MOUNT, 0755);
	if (mount(dev, ROOT_MOUNT, "ext4", MS_RDONLY, NULL) < 0)
		return log_errno("mount root");
	boot_marks.root_ns = boottime_ns();
	return 0;
}

static int open_port(const char *path)
{
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return log_errno(path);
	/* SIGIO tells us when the host connects or disconnects (virtio_console
	 * signals port open/close to fasync owners). */
	if (fcntl(fd, F_SETOWN, getpid()) < 0 ||
	    fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK | O_ASYNC) < 0)
		log_errno("fcntl O_ASYNC on channel");
	return fd;
}

size_t open_channel_ports(struct channel_port *ports, size_t max)
{
	/* Ports appear (and get their names) one by one as the device probes:
	 * wait for each one the host announced, then take every one there is. */
	long announced = boot_cmdline_number(PYRO_CMDLINE_CHANNELS, 1);
	for (long i = 0; i < announced && i < (long)max; i++) {
		char name[64], path[64];
		snprintf(name, sizeof name, PYRO_PORT_PREFIX "%ld", i);
		if (wait_for("/sys/class/virtio-ports", "name", name, path, sizeof path) < 0 && i == 0)
			return 0;
	}
	DIR *dir = opendir("/sys/class/virtio-ports");
	if (!dir)
		return 0;
	size_t n = 0;
	struct dirent *entry;
	while ((entry = readdir(dir)) && n < max) {
		if (entry->d_name[0] == '.')
			continue;
		char file[512], name[64], path[300];
		snprintf(file, sizeof file, "/sys/class/virtio-ports/%s/name", entry->d_name);
		if (read_small_file(file, name, sizeof name) < 0 ||
		    strncmp(name, PYRO_PORT_PREFIX, strlen(PYRO_PORT_PREFIX)) != 0)
			continue;
		snprintf(path, sizeof path, "/dev/%s", entry->d_name);
		int fd = open_port(path);
		if (fd < 0)
			continue;
		ports[n].fd = fd;
		snprintf(ports[n].name, sizeof ports[n].name, "%s", name);
		n++;
	}
	closedir(dir);
	return n;
}
