/*
 * pyro-agent: PID 1 of every pyro VM, started from the initramfs.
 *
 * Boot: mount /dev, /proc, /sys; load the virtio modules; bring up lo (and
 * eth0 when the kernel command line says pyro.net=1); mount the
 * environment's root image read-only; open the channel ports; run the loop
 * (loop.c), serving each port as its own host connection (channel.c,
 * dispatch.c). The host's
 * ATTACH (dispatch.c -> attach.c) then mounts the scratch disk, builds the overlay
 * root and switches into it. PID 1 must never exit: a fatal error powers the
 * VM off, which the host sees as the VMM exiting.
 *
 * The same binary is also a command the host runs in the guest, as
 * /proc/1/exe: `untar DEST` (untar.c), `fs ...` (fs.c), `service ...`
 * (service.c), `secrets DIR` (secrets.c) and `connect PORT` (connect.c), so
 * imports, file operations, services, secrets and published ports need
 * nothing from the environment.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent.h"
#include "channel.h"
#include "dispatch.h"
#include "exec.h"
#include "loop.h"
#include "proc.h"
#include "fs.h"
#include "service.h"
#include "shell.h"
#include "untar.h"
#include "secrets.h"
#include "connect.h"

static void block_signals(void)
{
	sigset_t all;
	sigfillset(&all);
	/* Synchronous faults must still be delivered. */
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

int main(int argc, char **argv)
{
	/* Run again as a command (`/proc/1/exe untar DEST`): a tool, not PID 1. Anything
	 * else run that way is refused: the boot path below powers the VM off on failure. */
	if (getpid() != 1) {
		if (argc >= 2 && strcmp(argv[1], "untar") == 0)
			return untar_main(argc, argv);
		if (argc >= 2 && strcmp(argv[1], "fs") == 0)
			return fs_main(argc, argv);
		if (argc >= 2 && strcmp(argv[1], "service") == 0)
			return service_main(argc, argv);
		if (argc >= 2 && strcmp(argv[1], "secrets") == 0)
			return secrets_main(argc, argv);
		if (argc >= 2 && strcmp(argv[1], "connect") == 0)
			return connect_main(argc, argv);
		fprintf(stderr, "pyro-agent: usage: pyro-agent untar DEST | fs ... | service ... | secrets DIR | connect PORT (it is PID 1 otherwise)\n");
		return 2;
	}
	block_signals();
	if (boot_early_mounts() < 0)
		power_off("early mounts failed");
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	net_read_cmdline();
	boot_load_modules(network_enabled);
	net_setup();
	if (boot_mount_root() < 0)
		power_off("no root disk");
	struct channel_port ports[MAX_CHANNEL_PORTS];
	size_t port_count = open_channel_ports(ports, MAX_CHANNEL_PORTS);
	if (port_count == 0)
		power_off("no channel port");
	/* bench/boot: boot fully, then power off instead of serving (raw-QEMU baseline). */
	if (boot_cmdline_has("pyro.poweroff_when_ready"))
		power_off("ready (pyro.poweroff_when_ready)");
	loop_init();
	proc_init();
	sessions_init();
	shells_init();
	for (size_t i = 0; i < port_count; i++)
		if (!channel_open(ports[i].fd, ports[i].name, &dispatch_handler))
			power_off("cannot serve a channel port");
	loop_run();
}
