/*
 * Attach: everything that makes a booted VM this VM. Until now the guest holds
 * nothing private, so a paused VM in the pre-attach state can serve as a
 * template ("boot" stage, for VMs restarting on a disk that holds files);
 * attach then gives each clone its own scratch disk, wall clock, random pool
 * and hostname. Fresh VMs restore a template saved after attach instead and
 * get only personalise() (REFRESH): clock, random pool and hostname.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "loop.h"
#include "protocol.h"

/* From <linux/fs.h> and <linux/random.h>, which musl-gcc does not see. */
#define BLKFLSBUF _IO(0x12, 97)
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#define RNDRESEEDCRNG _IO('R', 0x07)
#define FIFREEZE _IOWR('X', 119, int)

#define SCRATCH_MOUNT "/mnt/scratch"
#define NEW_ROOT "/mnt/newroot"

int attached;

/* The scratch filesystem, held open from attach (its mount point is out of
 * reach once the root is switched) so that power_off can freeze it. */
static int scratch_fd = -1;

void freeze_scratch(void)
{
	/* Freezing writes the journal out and marks the filesystem clean: the
	 * disk QEMU leaves behind reads whole offline (workspace_disk_*) with no
	 * journal to replay first. */
	if (scratch_fd >= 0 && ioctl(scratch_fd, FIFREEZE, 0) < 0)
		log_errno("freeze scratch");
}

#define FITHAW _IOWR('X', 120, int)

/* The one freeze a host holds (FREEZE), thawed by THAW, its channel's end or the timer. */
static struct channel *freezer;
static struct loop_timer freeze_timer;

static void thaw_now(void *ctx)
{
	(void)ctx;
	loop_timer_disarm(&freeze_timer);
	if (freezer && ioctl(scratch_fd, FITHAW, 0) < 0 && errno != EINVAL)
		log_errno("thaw scratch");
	freezer = NULL;
}

int freeze_for(struct channel *ch, int64_t timeout_ms)
{
	if (scratch_fd < 0)
		return -ENODEV;
	if (freezer)
		return -EBUSY;
	if (timeout_ms <= 0 || timeout_ms > PYRO_MAX_FREEZE_MS)
		timeout_ms = PYRO_MAX_FREEZE_MS;
	sync();
	if (ioctl(scratch_fd, FIFREEZE, 0) < 0)
		return -errno;
	freezer = ch;
	loop_timer_arm(&freeze_timer, monotonic_ms() + timeout_ms, thaw_now, NULL);
	return 0;
}

void thaw_scratch(void)
{
	thaw_now(NULL);
}

void freeze_channel_ended(struct channel *ch)
{
	if (freezer == ch)
		thaw_now(NULL);
}

static int set_clock(int64_t realtime_ns)
{
	struct timespec ts = {(time_t)(realtime_ns / 1000000000), (long)(realtime_ns % 1000000000)};
	return clock_settime(CLOCK_REALTIME, &ts);
}

/* Mix host entropy into the pool, credit it, and reseed the CRNG now so that
 * clones of one template diverge before anything reads randomness. */
static int seed_entropy(const uint8_t *bytes, uint32_t len)
{
	if (len == 0)
		return 0;
	if (len > 512)
		len = 512;
	struct {
		int entropy_count;
		int buf_size;
		uint8_t buf[512];
	} info;
	info.entropy_count = (int)len * 8;
	info.buf_size = (int)len;
	memcpy(info.buf, bytes, len);
	int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = ioctl(fd, RNDADDENTROPY, &info);
	if (rc == 0)
		rc = ioctl(fd, RNDRESEEDCRNG);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* The kernel may have cached blocks of this device before attach (partition
 * scan at probe, or a template's placeholder disk): drop them. */
static int flush_block_cache(const char *dev)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = ioctl(fd, BLKFLSBUF, 0);
	close(fd);
	return rc;
}

static int move_mount(const char *from, const char *to)
{
	mkdir(to, 0755);
	return mount(from, to, NULL, MS_MOVE, NULL);
}

static int mount_in_new_root(void)
{
	if (move_mount("/dev", NEW_ROOT "/dev") < 0 || move_mount("/proc", NEW_ROOT "/proc") < 0 ||
	    move_mount("/sys", NEW_ROOT "/sys") < 0)
		return -1;
	mkdir(NEW_ROOT "/dev/pts", 0755);
	mount("devpts", NEW_ROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
	      "newinstance,ptmxmode=0666,mode=0620");
	mkdir(NEW_ROOT "/dev/shm", 01777);
	mount("tmpfs", NEW_ROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	/* cgroup2 lets the agent kill every process of an exec, even ones that left
	 * its process group; without it the agent falls back to the group. */
	/* favordynmods (6.0+) makes moving each exec into its cgroup cheap: ~10 ms
	 * less per exec under TCG, measured. */
	if (mount("cgroup2", NEW_ROOT "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "favordynmods") < 0)
		mount("cgroup2", NEW_ROOT "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	return 0;
}

static int switch_root(void)
{
	if (chdir(NEW_ROOT) < 0)
		return -1;
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		return -1;
	if (chroot(".") < 0)
		return -1;
	return chdir("/");
}

static void ensure_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		log_errno(path);
	else
		chmod(path, mode);
}

int personalise(const struct attach_request *req, const char **stage)
{
	if (req->realtime_ns > 0 && set_clock(req->realtime_ns) < 0)
		return *stage = "clock", log_errno("set clock");
	if (seed_entropy(req->entropy, req->entropy_len) < 0)
		return *stage = "entropy", log_errno("seed entropy");
	if (req->hostname && sethostname(req->hostname, strlen(req->hostname)) < 0)
		return *stage = "hostname", log_errno("sethostname");
	return 0;
}

int attach(const struct attach_request *req, const char **stage)
{
	char dev[64];
	if (personalise(req, stage) < 0)
		return -1;

	*stage = "scratch";
	if (find_block_device(req->scratch_serial, dev, sizeof dev) < 0)
		return -1;
	if (flush_block_cache(dev) < 0)
		log_errno("flush scratch cache");
	mkdir(SCRATCH_MOUNT, 0755);
	/*
	 * No background pass over the disk (ext4lazyinit): it would read every
	 * group's block bitmap and zero every inode table, in each VM restored
	 * from a template, for minutes, while the VM is otherwise idle. The
	 * scratch disk is made with lazy_itable_init (src/environment/ext4.ts);
	 * its unused inode tables are never read.
	 */
	if (mount(dev, SCRATCH_MOUNT, "ext4", MS_NOATIME, "noinit_itable,no_prefetch_block_bitmaps") < 0)
		return log_errno("mount scratch");
	scratch_fd = open(SCRATCH_MOUNT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ensure_dir(SCRATCH_MOUNT "/upper", 0755);
	ensure_dir(SCRATCH_MOUNT "/work", 0755);

	*stage = "overlay";
	mkdir(NEW_ROOT, 0755);
	if (mount("overlay", NEW_ROOT, "overlay", 0,
		  "lowerdir=/mnt/root,upperdir=" SCRATCH_MOUNT "/upper,workdir=" SCRATCH_MOUNT "/work") < 0)
		return log_errno("mount overlay");

	*stage = "switch-root";
	if (mount_in_new_root() < 0)
		return log_errno("move mounts");
	if (switch_root() < 0)
		return log_errno("switch root");
	ensure_dir("/tmp", 01777);
	ensure_dir("/workspace", 0755);
	net_write_resolv_conf();
	attached = 1;
	return 0;
}
