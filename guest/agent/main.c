/*
 * pyro-agent: PID 1 of every pyro VM, started from the initramfs.
 *
 * Boot: mount /dev, /proc, /sys; load the virtio modules; mount the
 * environment's root image read-only; open the channel port; serve. The host's
 * ATTACH (serve.c -> attach.c) then mounts the scratch disk, builds the overlay
 * root and switches into it. PID 1 must never exit: a fatal error powers the
 * VM off, which the host sees as the VMM exiting.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent.h"

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

/* `pyro.poweroff_when_ready` on the kernel command line: boot fully, then power
 * off instead of serving. bench/boot times this as the raw-QEMU baseline. */
static int poweroff_when_ready(void)
{
	char cmdline[4096];
	FILE *f = fopen("/proc/cmdline", "re");
	if (!f)
		return 0;
	size_t n = fread(cmdline, 1, sizeof cmdline - 1, f);
	fclose(f);
	cmdline[n] = 0;
	return strstr(cmdline, "pyro.poweroff_when_ready") != NULL;
}

int main(void)
{
	block_signals();
	if (boot_early_mounts() < 0)
		power_off("early mounts failed");
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	boot_load_modules();
	if (boot_mount_root() < 0)
		power_off("no root disk");
	int port = open_channel_port();
	if (port < 0)
		power_off("no channel port");
	if (poweroff_when_ready())
		power_off("ready (pyro.poweroff_when_ready)");
	serve(port);
}
