/*
 * `/proc/1/exe connect PORT`: one connection of a published port. The host's
 * port forwarder runs it over an ordinary EXEC per TCP connection it accepts
 * on the host's 127.0.0.1; this joins the exec's stdin and stdout to a TCP
 * connection to the guest's own 127.0.0.1:PORT (where the service listens),
 * both ways, until both directions have ended.
 *
 * stdin's end becomes a half-close (shutdown SHUT_WR) of the connection; the
 * connection's end (the service closed it) ends the command. Exit 0 then, 1 with
 * `connect: why` on stderr when the port cannot be reached or I/O fails.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "connect.h"

#define BUFFER_BYTES (64 * 1024)

int connect_main(int argc, char **argv)
{
	char *end = NULL;
	long port = argc == 3 ? strtol(argv[2], &end, 10) : 0;
	if (argc != 3 || !end || *end || port < 1 || port > 65535) {
		fprintf(stderr, "connect: usage: connect PORT (1-65535)\n");
		return 2;
	}
	int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		fprintf(stderr, "connect: socket: %s\n", strerror(errno));
		return 1;
	}
	struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port) };
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(sock, (struct sockaddr *)&address, sizeof address) < 0) {
		fprintf(stderr, "connect: 127.0.0.1:%ld: %s\n", port, strerror(errno));
		return 1;
	}
	int one = 1;
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	static char buffer[BUFFER_BYTES];
	/* Until the service ends the connection (which ends the command); stdin may end first. */
	int stdin_open = 1;
	for (;;) {
		struct pollfd fds[2] = { { .fd = stdin_open ? 0 : -1, .events = POLLIN }, { .fd = sock, .events = POLLIN } };
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "connect: poll: %s\n", strerror(errno));
			return 1;
		}
		if (stdin_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(0, buffer, sizeof buffer);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				stdin_open = 0;
				shutdown(sock, SHUT_WR);
			} else if (write_full(sock, buffer, (size_t)n) < 0) {
				/* The service closed its side: nothing more can go to it. */
				stdin_open = 0;
			}
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(sock, buffer, sizeof buffer);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				/* The service ended the connection: exiting is how the host learns it (no EOF
				 * travels G->H); a client's further bytes would have nowhere to go. */
				break;
			} else if (write_full(1, buffer, (size_t)n) < 0) {
				return 1;
			}
		}
	}
	return 0;
}
