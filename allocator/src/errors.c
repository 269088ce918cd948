// SPDX-License-Identifier: MIT
/*
 * errors.c - how libptm dies when it finds its heap corrupted.
 *
 * Exactly like glibc: the message and a newline on stderr, then abort().
 * Whoever knows glibc's "free(): invalid pointer" knows ours.  The message
 * goes out with one write(2) and no stdio, because stdio may allocate and
 * the heap is by definition not to be trusted any more.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void ptm_i_printerr(const char *msg)
{
	char buf[256];
	size_t n = strlen(msg);

	if (n > sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	memcpy(buf, msg, n);
	buf[n++] = '\n';
	while (write(STDERR_FILENO, buf, n) < 0 && errno == EINTR)
		;
	abort();
}
