#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

void log_line(const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof line, "pyro-agent: ");
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* The console may be absent; nothing useful can be done about a failed log. */
	ssize_t ignored = write(2, line, (size_t)n);
	(void)ignored;
}

int log_errno(const char *what)
{
	int saved = errno;
	log_line("%s failed: %s", what, strerror(saved));
	errno = saved;
	return -1;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t boottime_ns(void) { return clock_ns(CLOCK_BOOTTIME); }

int64_t monotonic_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000; }

void power_off(const char *why)
{
	log_line("powering off: %s", why);
	sync();
	freeze_scratch();
	for (;;) {
		reboot(RB_POWER_OFF);
		sleep(1);
	}
}
