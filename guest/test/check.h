/* The native tests' one assertion: it counts a failure and carries on, so one run reports them all. */
#ifndef PYRO_TEST_CHECK_H
#define PYRO_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                          \
		}                                                                            \
	} while (0)

#endif
