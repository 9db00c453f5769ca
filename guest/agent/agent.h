/* Shared declarations of the guest agent's modules. */
#ifndef PYRO_AGENT_H
#define PYRO_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define AGENT_VERSION "pyro-agent/1"

/* log.c: lines on the console, "pyro-agent: ..." */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log "<what> failed: <strerror(errno)>" and return -1. */
int log_errno(const char *what);
int64_t boottime_ns(void);
int64_t monotonic_ms(void);
/* Flush disks and power off; PID 1 never exits. */
__attribute__((noreturn)) void power_off(const char *why);

/* boot.c: the phases before serving. */
struct boot_marks {
	int64_t modules_ns;
	int64_t root_ns;
};
extern struct boot_marks boot_marks;
int boot_early_mounts(void);
/* Loads lib/modules/pyro/order, and order-network too when `network`. */
void boot_load_modules(int network);
/* Whether the kernel command line holds `token` as a whole word. */
int boot_cmdline_has(const char *token);
/* The number after `prefix` ("name=") on the kernel command line, or `fallback`. */
long boot_cmdline_number(const char *prefix, long fallback);
int boot_mount_root(void);
/* Path of the block device whose virtio serial is `serial`, waiting briefly for it. */
int find_block_device(const char *serial, char *path, size_t size);
/* Kernel command line token giving the number of host channels when above 1. */
#define PYRO_CMDLINE_CHANNELS "pyro.channels="
#define MAX_CHANNEL_PORTS 16
struct channel_port {
	int fd;
	char name[64];
};
/* Open every channel port (PYRO_PORT_PREFIX), waiting for as many as the
 * kernel command line announces; returns how many (0 when none). */
size_t open_channel_ports(struct channel_port *ports, size_t max);

/* net.c: interfaces, configured at boot; never fatal. */
/* Kernel command line token the host adds when the VM has a NIC. */
#define PYRO_CMDLINE_NETWORK "pyro.net=1"
/* Instead, when the NIC leads only to the host's allowlist proxy. */
#define PYRO_CMDLINE_NETWORK_PROXY "pyro.net=proxy"
extern int network_enabled;
/* The NIC leads only to the proxy: eth0 gets no route and no resolver. */
extern int network_proxy_only;
/* Sets network_enabled and network_proxy_only from the kernel command line. */
void net_read_cmdline(void);
/* lo always; eth0 (QEMU user network, static) when network_enabled. */
void net_setup(void);
/* After the switch into the overlay root: /etc/resolv.conf if the VM has
 * network and the environment ships none. */
void net_write_resolv_conf(void);

/* attach.c: scratch disk, overlay root, clock and entropy. */
struct attach_request {
	const char *scratch_serial;
	int64_t realtime_ns; /* 0 = leave the clock */
	const uint8_t *entropy;
	uint32_t entropy_len;
	const char *hostname;
};
/* 0 on success; on failure *stage and errno describe it. */
int attach(const struct attach_request *req, const char **stage);
/* The clock, entropy and hostname part of attach alone, for a VM restored from
 * a template taken after attach (scratch_serial is ignored). */
int personalise(const struct attach_request *req, const char **stage);
extern int attached;
/* Before powering off: the scratch filesystem's journal written out, further writes held. */
void freeze_scratch(void);
struct channel;
/* FREEZE: sync and freeze the scratch filesystem for `ch`, thawed by thaw_scratch(),
 * freeze_channel_ended(ch) or after timeout_ms; 0 or -errno. */
int freeze_for(struct channel *ch, int64_t timeout_ms);
void thaw_scratch(void);
void freeze_channel_ended(struct channel *ch);

#endif
