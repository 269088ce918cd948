// SPDX-License-Identifier: MIT
/*
 * A statically linked glibc program for the probe-site test: malloc lives in
 * the executable itself.  It allocates, says "ready" and waits to be killed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
	void *volatile blocks[64];
	int i;

	for (i = 0; i < 64; i++)
		blocks[i] = malloc(100 + (size_t)i);
	for (i = 0; i < 64; i += 2)
		free(blocks[i]);
	printf("ready\n");
	fflush(stdout);
	pause();
	return 0;
}
