// SPDX-License-Identifier: MIT
/*
 * symtest_prog - the live target of the symbolizer tests.  It prints the
 * return addresses of known call sites (in itself, in libsymtest, in libc),
 * the address of malloc, and where it mapped each file named on its command
 * line (PROT_READ | PROT_EXEC, as a loader would map code), then waits for
 * its stdin to close.  Built with -g as a PIE, and again stripped.
 *
 * Output, one per line: "NAME 0xADDRESS" for the sites, "map PATH 0xADDRESS
 * SIZE" for the files, then "ready".
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "symtest.h"

#define NOINLINE __attribute__((noinline, noclone))

static void *volatile sink;
static void *volatile end_ra;
static void *volatile libc_ra;
static jmp_buf escape_env;

NOINLINE static void *callee(void)
{
	return __builtin_return_address(0);
}

NOINLINE static void *exe_site(void)
{
	void *ra = callee();

	sink = ra;
	return ra;
}

NOINLINE __attribute__((noreturn)) static void escape(void)
{
	end_ra = __builtin_return_address(0);
	longjmp(escape_env, 1);
}

/* Its last instruction is the call to escape: the return address lies past its end. */
NOINLINE static void ends_in_call(void)
{
	escape();
}

/* Called by glibc's qsort: the return address lies in libc's internal msort. */
static int compare(const void *a, const void *b)
{
	libc_ra = __builtin_return_address(0);
	return *(const int *)a - *(const int *)b;
}

static int map_file(const char *path)
{
	struct stat st;
	void *p;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0)
		return -1;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	printf("map %s %p %lld\n", path, p, (long long)st.st_size);
	return 0;
}

int main(int argc, char **argv)
{
	int values[8] = {5, 3, 7, 1, 6, 2, 4, 0};
	void *(*volatile alloc)(size_t) = malloc;
	char c;

	printf("exe_site %p\n", exe_site());
	if (!setjmp(escape_env))
		ends_in_call();
	printf("end_site %p\n", end_ra);
	printf("lib_site %p\n", symtest_lib_site());
	printf("lib_inner_site %p\n", symtest_lib_inner_site());
	qsort(values, 8, sizeof(values[0]), compare);
	printf("libc_site %p\n", libc_ra);
	printf("malloc %#lx\n", (unsigned long)(uintptr_t)alloc);
	for (int i = 1; i < argc; i++) {
		if (map_file(argv[i]) != 0) {
			printf("failed %s\n", argv[i]);
			return 1;
		}
	}
	printf("ready\n");
	fflush(stdout);
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	return 0;
}
