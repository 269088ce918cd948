// SPDX-License-Identifier: MIT
/*
 * web_workload.c - a process for the HTTP tests to trace.
 *
 *   web_workload steady      allocates and frees about 2,000 blocks a second,
 *                            forever, so its counters keep moving
 *   web_workload counted F   the same once SIGUSR1 arrives, keeping the number
 *                            of malloc calls made so far in file F (a native
 *                            uint64, shared memory), so a benchmark can compare
 *                            heapfragd's count with the workload's own
 *   web_workload plateau N   waits for SIGUSR1, then makes N allocations of
 *                            100..163 bytes, keeps them, writes "done\n" and
 *                            idles, so its account holds still
 *   web_workload cheese N    waits for SIGUSR1, then makes N allocations of
 *                            1000 bytes, frees nine in ten of them in a
 *                            shuffled order (holes all over the heap: on
 *                            libptm, pages given back), calls malloc_trim(0),
 *                            writes "done\n" and idles
 */
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RING 4096

static volatile sig_atomic_t go;

static void on_usr1(int sig)
{
	go = 1;
}

/* Where "counted" publishes its malloc calls; a local word otherwise. */
static uint64_t own_count;
static volatile uint64_t *published = &own_count;

static void steady(void)
{
	static void *volatile ring[RING];
	struct timespec pause = {.tv_nsec = 1000 * 1000};
	uint32_t seed = 12345;

	for (size_t i = 0;; i++) {
		size_t slot = i % RING;

		free(ring[slot]);
		seed = seed * 1103515245u + 12345u;
		ring[slot] = malloc(16 + (seed >> 16) % 2048);
		*published += 1;
		if (ring[slot])
			memset(ring[slot], 1, 16);
		/* Two allocations per millisecond: steady, and cheap for the machine. */
		if (i % 2)
			nanosleep(&pause, NULL);
	}
}

static void plateau(long n)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	void *volatile *keep;

	sigaction(SIGUSR1, &sa, NULL);
	keep = calloc((size_t)n, sizeof(*keep));
	if (!keep)
		exit(1);
	/* Ready: the parent attaches heapfragd, then sends SIGUSR1. */
	if (write(STDOUT_FILENO, "ready\n", 6) != 6)
		exit(1);
	while (!go)
		pause();
	for (long i = 0; i < n; i++)
		keep[i] = malloc(100 + (size_t)(i % 64));
	if (write(STDOUT_FILENO, "done\n", 5) != 5)
		exit(1);
	for (;;)
		pause();
}

static void cheese(long n)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	void *volatile *keep;
	uint32_t seed = 777, *order;

	sigaction(SIGUSR1, &sa, NULL);
	keep = calloc((size_t)n, sizeof(*keep));
	order = calloc((size_t)n, sizeof(*order));
	if (!keep || !order)
		exit(1);
	for (long i = 0; i < n; i++)
		order[i] = (uint32_t)i;
	/* Fisher-Yates with a fixed seed: the same holes on every run. */
	for (long i = n - 1; i > 0; i--) {
		uint32_t j, t;

		seed = seed * 1103515245u + 12345u;
		j = (seed >> 8) % (uint32_t)(i + 1);
		t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	if (write(STDOUT_FILENO, "ready\n", 6) != 6)
		exit(1);
	while (!go)
		pause();
	for (long i = 0; i < n; i++) {
		keep[i] = malloc(1000);
		if (keep[i])
			memset(keep[i], 1, 1000);
	}
	for (long i = 0; i < n - n / 10; i++) {
		free(keep[order[i]]);
		keep[order[i]] = NULL;
	}
	malloc_trim(0);
	if (write(STDOUT_FILENO, "done\n", 5) != 5)
		exit(1);
	for (;;)
		pause();
}

static void counted(const char *path)
{
	struct sigaction sa = {.sa_handler = on_usr1};
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	void *map;

	if (fd < 0 || ftruncate(fd, sizeof(uint64_t)))
		exit(1);
	map = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		exit(1);
	published = map;
	sigaction(SIGUSR1, &sa, NULL);
	while (!go)
		pause();
	steady();
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "steady") == 0)
		steady();
	if (argc == 3 && strcmp(argv[1], "counted") == 0)
		counted(argv[2]);
	if (argc == 3 && strcmp(argv[1], "plateau") == 0)
		plateau(strtol(argv[2], NULL, 10));
	if (argc == 3 && strcmp(argv[1], "cheese") == 0)
		cheese(strtol(argv[2], NULL, 10));
	return 2;
}
