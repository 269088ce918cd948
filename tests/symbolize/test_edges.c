// SPDX-License-Identifier: MIT
/*
 * The edges, in this process and in children: address 0 and an unmapped
 * address are in no mapping (object "", no names); an anonymous mapping is
 * "" with the offset into it; the stack is "[stack]"; a function of this
 * test program looked up exactly is named; a process that has exited, reaped
 * or still a zombie, is -ESRCH; bad arguments are -EINVAL and n == 0 is
 * fine.
 */
#include <sys/mman.h>

#include "sym_util.h"

int main(void)
{
	struct hf_symbolizer *s = hf_symbolizer_new();
	volatile int on_stack = 0;
	uint64_t addrs[5];
	struct hf_frame f[5];
	char *anon;
	pid_t pid;

	CHECK(s != NULL);
	anon = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(anon != MAP_FAILED);
	/*
	 * Guard pages on both sides, so that the kernel cannot merge the middle
	 * page into a read-write neighbour (under ASan one lies just below).
	 */
	CHECK(mprotect(anon, 4096, PROT_NONE) == 0);
	CHECK(mprotect(anon + 2 * 4096, 4096, PROT_NONE) == 0);
	addrs[0] = 0;
	addrs[1] = 8; /* the zero page is never mapped */
	addrs[2] = (uint64_t)(uintptr_t)anon + 4096 + 100;
	addrs[3] = (uint64_t)(uintptr_t)&on_stack;
	addrs[4] = (uint64_t)(uintptr_t)&main;

	CHECK(hf_symbolize(s, getpid(), addrs, 5, HF_SYM_EXACT, f) == 0);
	for (int i = 0; i < 5; i++) {
		sym_print("edge", &f[i]);
		CHECK_EQ_U64(f[i].address, addrs[i]);
		CHECK(f[i].object != NULL);
	}
	for (int i = 0; i < 2; i++) {
		CHECK_STR_EQ(f[i].object, "");
		CHECK_EQ_U64(f[i].offset, 0);
		CHECK(!f[i].function && !f[i].file && f[i].line == 0);
	}
	CHECK_STR_EQ(f[2].object, "");
	CHECK_EQ_U64(f[2].offset, 100);
	CHECK(!f[2].function);
	CHECK_STR_EQ(f[3].object, "[stack]");
	CHECK(!f[3].function);
	CHECK_STR_EQ(f[4].function, "main");

	/* Return addresses: 0 has no call before it; 1 looks up 0. */
	addrs[0] = 0;
	addrs[1] = 1;
	CHECK(hf_symbolize(s, getpid(), addrs, 2, 0, f) == 0);
	CHECK(!strcmp(f[0].object, "") && !strcmp(f[1].object, ""));

	/* Gone: reaped, then a zombie. */
	pid = fork();
	if (pid == 0)
		_exit(0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	CHECK_EQ_U64(hf_symbolize(s, pid, addrs, 1, 0, f), (uint64_t)-ESRCH);
	pid = fork();
	if (pid == 0)
		_exit(0);
	usleep(100000);
	CHECK_EQ_U64(hf_symbolize(s, pid, addrs, 1, 0, f), (uint64_t)-ESRCH);
	CHECK(waitpid(pid, NULL, 0) == pid);

	CHECK_EQ_U64(hf_symbolize(NULL, getpid(), addrs, 1, 0, f), (uint64_t)-EINVAL);
	CHECK_EQ_U64(hf_symbolize(s, 0, addrs, 1, 0, f), (uint64_t)-EINVAL);
	CHECK_EQ_U64(hf_symbolize(s, getpid(), NULL, 1, 0, f), (uint64_t)-EINVAL);
	CHECK_EQ_U64(hf_symbolize(s, getpid(), addrs, 1, 0x80, f), (uint64_t)-EINVAL);
	CHECK(hf_symbolize(s, getpid(), NULL, 0, 0, NULL) == 0);

	munmap(anon, 3 * 4096);
	hf_symbolizer_free(s);
	hf_symbolizer_free(NULL);
	return hf_test_done();
}
