/*
 * Network interfaces, configured once at boot with plain ioctls.
 *
 * Every VM gets loopback (127.0.0.1/8, up). A VM booted with `pyro.net=1` on the
 * kernel command line (the host adds it exactly when it gives QEMU a virtio-net
 * device with user-mode networking) also gets eth0 configured statically for
 * QEMU's user network: 10.0.2.15/24, default route via 10.0.2.2 (which is also
 * the host's loopback). DNS is 10.0.2.3, written to /etc/resolv.conf after
 * attach if the environment has none (net_write_resolv_conf).
 *
 * With `pyro.net=proxy` instead (a VM with allow_hosts), eth0 gets its address
 * but no default route and no resolver: the guest's one way out is the host's
 * allowlist proxy at 10.0.2.100:3128, on eth0's own subnet, and a direct
 * connection anywhere else fails at once with "Network is unreachable"
 * instead of hanging (QEMU would drop it anyway: restrict=on).
 *
 * Nothing here is fatal: a failure is logged and the VM serves without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define IPV4(a, b, c, d) htonl(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

/* QEMU user-mode networking (slirp) defaults. */
#define NET_IFNAME "eth0"
#define NET_ADDRESS IPV4(10, 0, 2, 15)
#define NET_NETMASK IPV4(255, 255, 255, 0)
#define NET_GATEWAY IPV4(10, 0, 2, 2)
#define NET_RESOLV_CONF "nameserver 10.0.2.3\n"

/* The NIC registers while virtio_net loads; give it this long anyway. */
#define NIC_WAIT_MS 5000
#define NIC_POLL_MS 5

int network_enabled;
int network_proxy_only;

void net_read_cmdline(void)
{
	network_proxy_only = boot_cmdline_has(PYRO_CMDLINE_NETWORK_PROXY);
	network_enabled = network_proxy_only || boot_cmdline_has(PYRO_CMDLINE_NETWORK);
}

static void set_sockaddr(struct sockaddr *out, in_addr_t addr)
{
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = addr;
	memcpy(out, &sin, sizeof sin);
}

static void ifreq_init(struct ifreq *ifr, const char *ifname)
{
	memset(ifr, 0, sizeof *ifr);
	strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
}

static int log_if_errno(const char *ifname, const char *what)
{
	char line[64];
	snprintf(line, sizeof line, "%s: %s", ifname, what);
	return log_errno(line);
}

/* Address, netmask, then up. Setting the address replaces the primary one. */
static int configure_interface(int sock, const char *ifname, in_addr_t address, in_addr_t netmask)
{
	struct ifreq ifr;
	ifreq_init(&ifr, ifname);
	set_sockaddr(&ifr.ifr_addr, address);
	if (ioctl(sock, SIOCSIFADDR, &ifr) < 0)
		return log_if_errno(ifname, "SIOCSIFADDR");
	ifreq_init(&ifr, ifname);
	set_sockaddr(&ifr.ifr_netmask, netmask);
	if (ioctl(sock, SIOCSIFNETMASK, &ifr) < 0)
		return log_if_errno(ifname, "SIOCSIFNETMASK");
	ifreq_init(&ifr, ifname);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
		return log_if_errno(ifname, "SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
		return log_if_errno(ifname, "SIOCSIFFLAGS");
	return 0;
}

static int add_default_route(int sock, const char *ifname, in_addr_t gateway)
{
	struct rtentry rt;
	char dev[IFNAMSIZ];
	memset(&rt, 0, sizeof rt);
	strncpy(dev, ifname, sizeof dev - 1);
	dev[sizeof dev - 1] = 0;
	set_sockaddr(&rt.rt_dst, INADDR_ANY);
	set_sockaddr(&rt.rt_genmask, INADDR_ANY);
	set_sockaddr(&rt.rt_gateway, gateway);
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	rt.rt_dev = dev;
	if (ioctl(sock, SIOCADDRT, &rt) < 0 && errno != EEXIST)
		return log_if_errno(ifname, "SIOCADDRT default");
	return 0;
}

static int wait_for_interface(const char *ifname)
{
	for (int waited = 0; waited <= NIC_WAIT_MS; waited += NIC_POLL_MS) {
		if (if_nametoindex(ifname) > 0)
			return 0;
		struct timespec ts = {0, NIC_POLL_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	log_line("no network interface %s after %d ms", ifname, NIC_WAIT_MS);
	return -1;
}

void net_setup(void)
{
	int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		log_errno("socket for interface setup");
		return;
	}
	configure_interface(sock, "lo", IPV4(127, 0, 0, 1), IPV4(255, 0, 0, 0));
	if (network_enabled && wait_for_interface(NET_IFNAME) == 0 &&
	    configure_interface(sock, NET_IFNAME, NET_ADDRESS, NET_NETMASK) == 0 && !network_proxy_only)
		add_default_route(sock, NET_IFNAME, NET_GATEWAY);
	close(sock);
}

void net_write_resolv_conf(void)
{
	struct stat st;
	if (!network_enabled || network_proxy_only || lstat("/etc/resolv.conf", &st) == 0 || errno != ENOENT)
		return;
	int fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		/* No /etc, or a read-only one: the environment's choice. */
		log_errno("create /etc/resolv.conf");
		return;
	}
	size_t len = sizeof NET_RESOLV_CONF - 1;
	if (write(fd, NET_RESOLV_CONF, len) != (ssize_t)len)
		log_errno("write /etc/resolv.conf");
	close(fd);
}
