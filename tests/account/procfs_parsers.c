// SPDX-License-Identifier: MIT
/*
 * The /proc parsers on crafted text (comm with spaces and ')', long lines,
 * missing fields) and on this test's own process and a vanished one.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "procfs.h"

/* A stat line whose numeric field k (4..52) is k * 1000 + 7. */
static void make_stat_line(char *buf, size_t len, const char *comm, int last_field)
{
	size_t off = (size_t)snprintf(buf, len, "4321 (%s) S", comm);

	for (int k = 4; k <= last_field; k++)
		off += (size_t)snprintf(buf + off, len - off, " %d", k * 1000 + 7);
	snprintf(buf + off, len - off, "\n");
}

static void test_stat_comm_with_spaces_and_parens(void)
{
	char line[1024];
	struct hf_proc_stat st;

	make_stat_line(line, sizeof(line), "a) b (c) S 1 2", 52);
	CHECK(hf_proc_parse_stat(line, &st) == 0);
	CHECK(st.pid == 4321);
	CHECK_STR_EQ(st.comm, "a) b (c) S 1 2");
	CHECK(st.state == 'S');
	CHECK(st.ppid == 4007);
	CHECK_EQ_U64(st.start_ticks, 22007);
	CHECK_EQ_U64(st.start_brk, 47007);

	make_stat_line(line, sizeof(line), ")", 52);
	CHECK(hf_proc_parse_stat(line, &st) == 0);
	CHECK_STR_EQ(st.comm, ")");
	CHECK(st.ppid == 4007);

	make_stat_line(line, sizeof(line), "", 52);
	CHECK(hf_proc_parse_stat(line, &st) == 0);
	CHECK_STR_EQ(st.comm, "");
	CHECK_EQ_U64(st.start_ticks, 22007);
}

static void test_stat_long_comm_is_cut_to_comm_len(void)
{
	char line[1024];
	struct hf_proc_stat st;

	make_stat_line(line, sizeof(line), "0123456789abcdefghij", 52);
	CHECK(hf_proc_parse_stat(line, &st) == 0);
	CHECK_STR_EQ(st.comm, "0123456789abcdef");
	CHECK(st.ppid == 4007);
}

static void test_stat_short_or_broken_lines(void)
{
	char line[1024];
	struct hf_proc_stat st;

	/* An old kernel's line ends before start_brk: start time is still there. */
	make_stat_line(line, sizeof(line), "old", 44);
	CHECK(hf_proc_parse_stat(line, &st) == 0);
	CHECK_EQ_U64(st.start_ticks, 22007);
	CHECK_EQ_U64(st.start_brk, 0);

	make_stat_line(line, sizeof(line), "cut", 21);
	CHECK(hf_proc_parse_stat(line, &st) == -EINVAL);
	CHECK(hf_proc_parse_stat("", &st) == -EINVAL);
	CHECK(hf_proc_parse_stat("12 (no close S 1 2 3", &st) == -EINVAL);
	CHECK(hf_proc_parse_stat("12 (x)", &st) == -EINVAL);
	CHECK(hf_proc_parse_stat("12 (x) S 1 2 x 4", &st) == -EINVAL);
}

static void test_stat_of_this_process(void)
{
	struct hf_proc_stat st;
	char name[17] = {0};
	uint64_t btime = 0;
	double start;

	prctl(PR_GET_NAME, name);
	CHECK(hf_proc_read_stat(getpid(), &st) == 0);
	CHECK(st.pid == getpid());
	CHECK_STR_EQ(st.comm, name);
	CHECK(st.ppid == getppid());
	CHECK(st.state == 'R');
	CHECK(hf_proc_boot_time(&btime) == 0);
	start = hf_proc_ticks_to_unix(st.start_ticks, btime);
	/* Started within the last ten minutes, and not in the future. */
	CHECK_MSG(start <= (double)time(NULL) + 1 && start > (double)time(NULL) - 600,
		  "start %.2f now %ld", start, (long)time(NULL));
	/* We may ptrace ourselves, so start_brk is shown: it is where brk began. */
	CHECK(st.start_brk != 0);
	CHECK(st.start_brk <= (uint64_t)(uintptr_t)sbrk(0));
}

static pid_t reaped_child(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

/* A process may name itself "a) b (c\n": the kernel prints it raw into stat. */
static void test_stat_of_a_process_with_a_newline_in_its_comm(void)
{
	char name[17] = {0}, odd[] = "x) S 9 (\ny";
	struct hf_proc_stat st;

	prctl(PR_GET_NAME, name);
	CHECK(prctl(PR_SET_NAME, odd) == 0);
	CHECK(hf_proc_read_stat(getpid(), &st) == 0);
	prctl(PR_SET_NAME, name);
	CHECK(st.pid == getpid());
	CHECK_STR_EQ(st.comm, odd);
	CHECK(st.ppid == getppid());
	CHECK(st.state == 'R');
	CHECK(st.start_ticks != 0 && st.start_brk != 0);
}

static void test_vanished_process_is_esrch(void)
{
	pid_t gone = reaped_child();
	struct hf_proc_stat st;
	uint64_t rss;
	char exe[256];

	CHECK(hf_proc_read_stat(gone, &st) == -ESRCH);
	CHECK(hf_proc_read_rss(gone, &rss) == -ESRCH);
	CHECK(hf_proc_read_exe(gone, exe, sizeof(exe)) == -ESRCH);
}

static int count_cb(const struct hf_mapping *m, void *arg)
{
	(void)m;
	(*(int *)arg)++;
	return 0;
}

static void test_zombie_has_no_rss(void)
{
	pid_t pid = fork();
	uint64_t rss = 0;
	struct hf_proc_stat st;
	int n = 0;

	if (pid == 0)
		_exit(0);
	/* Wait until it is a zombie, without reaping it. */
	for (int i = 0; i < 500; i++) {
		if (hf_proc_read_stat(pid, &st) == 0 && st.state == 'Z')
			break;
		usleep(10000);
	}
	CHECK(st.state == 'Z');
	CHECK(hf_proc_read_rss(pid, &rss) == -ESRCH);
	CHECK(hf_proc_read_smaps(pid, count_cb, &n) == 0);
	CHECK(n == 0);
	waitpid(pid, NULL, 0);
}

static void test_exe_of_this_process(void)
{
	char want[512], got[512];
	ssize_t n = readlink("/proc/self/exe", want, sizeof(want) - 1);

	CHECK(n > 0);
	want[n > 0 ? n : 0] = '\0';
	CHECK(hf_proc_read_exe(getpid(), got, sizeof(got)) == 0);
	CHECK_STR_EQ(got, want);
}

static void test_status_and_btime(void)
{
	const char status[] = "Name:\tx\nVmPeak:\t  9999 kB\nVmRSS:\t    1234 kB\nThreads:\t1\n";
	const char zombie[] = "Name:\tx\nState:\tZ (zombie)\nThreads:\t1\n";
	const char stat[] = "cpu  1 2 3\nintr 5 6\nbtime 1700000000\nprocesses 9\n";
	uint64_t v = 0;
	FILE *f;

	f = fmemopen((void *)status, strlen(status), "r");
	CHECK(hf_proc_parse_status_rss(f, &v) == 0);
	CHECK_EQ_U64(v, 1234 * 1024);
	fclose(f);
	f = fmemopen((void *)zombie, strlen(zombie), "r");
	CHECK(hf_proc_parse_status_rss(f, &v) == -ESRCH);
	fclose(f);
	f = fmemopen((void *)stat, strlen(stat), "r");
	CHECK(hf_proc_parse_btime(f, &v) == 0);
	CHECK_EQ_U64(v, 1700000000);
	fclose(f);
	CHECK(hf_proc_read_rss(getpid(), &v) == 0 && v > 0);
	/* 1.5 s after boot at 100 ticks a second, or whatever this machine uses. */
	CHECK(hf_proc_ticks_to_unix((uint64_t)sysconf(_SC_CLK_TCK) * 3 / 2, 1000) == 1001.5);
}

struct collected {
	struct hf_mapping m[8];
	int n;
};

static int collect(const struct hf_mapping *m, void *arg)
{
	struct collected *c = arg;

	if (c->n < 8)
		c->m[c->n] = *m;
	c->n++;
	return 0;
}

static void test_smaps_text(void)
{
	static char text[16384];
	char longpath[6000];
	struct collected c = {0};
	size_t off;
	FILE *f;

	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	off = (size_t)snprintf(
		text, sizeof(text),
		"55d1c0a00000-55d1c0a21000 rw-p 00000000 00:00 0                  [heap]\n"
		"Size:                132 kB\n"
		"Rss:                  20 kB\n"
		"Anonymous:            20 kB\n"
		"VmFlags: rd wr mr mw me ac\n"
		"7f0000000000-7f0000004000 rw-p 00000000 00:00 0 \n"
		"Size:                 16 kB\n"
		"Rss:                   8 kB\n"
		"7f1000000000-7f1000001000 r--p 00001000 08:01 123456     /tmp/a b (deleted)\n"
		"Rss:                   4 kB\n"
		"7f2000000000-7f2000001000 r--p 00000000 08:01 77 ");
	snprintf(text + off, sizeof(text) - off, "%s\nRss: 0 kB\n", longpath);
	f = fmemopen(text, strlen(text), "r");
	CHECK(hf_proc_parse_smaps(f, collect, &c) == 0);
	fclose(f);
	CHECK(c.n == 4);
	CHECK_EQ_U64(c.m[0].start, 0x55d1c0a00000);
	CHECK_EQ_U64(c.m[0].end, 0x55d1c0a21000);
	CHECK_STR_EQ(c.m[0].perms, "rw-p");
	CHECK_STR_EQ(c.m[0].path, "[heap]");
	CHECK_EQ_U64(c.m[0].rss_bytes, 20 * 1024);
	CHECK_STR_EQ(c.m[1].path, "");
	CHECK_EQ_U64(c.m[1].inode, 0);
	CHECK_EQ_U64(c.m[1].rss_bytes, 8 * 1024);
	CHECK_STR_EQ(c.m[2].path, "/tmp/a b (deleted)");
	CHECK_EQ_U64(c.m[2].offset, 0x1000);
	CHECK_EQ_U64(c.m[2].inode, 123456);
	/* A path longer than HF_PATH_LEN is cut, and the parser keeps its place. */
	CHECK(strlen(c.m[3].path) == HF_PATH_LEN - 1);
	CHECK(c.m[3].path[0] == '/' && c.m[3].path[1] == 'p');
	CHECK_EQ_U64(c.m[3].rss_bytes, 0);
}

static void test_maps_text_has_unknown_rss(void)
{
	const char text[] =
		"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n"
		"7ffd0000-7ffd1000 rw-p 00000000 00:00 0           [stack]\n";
	struct collected c = {0};
	FILE *f = fmemopen((void *)text, strlen(text), "r");

	CHECK(hf_proc_parse_smaps(f, collect, &c) == 0);
	fclose(f);
	CHECK(c.n == 2);
	CHECK_EQ_U64(c.m[0].rss_bytes, HF_UNKNOWN);
	CHECK_STR_EQ(c.m[0].path, "/usr/bin/dbus-daemon");
	CHECK_STR_EQ(c.m[1].path, "[stack]");
}

static int stop_at_second(const struct hf_mapping *m, void *arg)
{
	(void)m;
	return ++*(int *)arg == 2 ? -ECANCELED : 0;
}

static void test_smaps_callback_can_stop_the_walk(void)
{
	int n = 0;

	CHECK(hf_proc_read_smaps(getpid(), stop_at_second, &n) == -ECANCELED);
	CHECK(n == 2);
}

struct find {
	uint64_t addr;
	struct hf_mapping m;
	bool found;
};

static int find_cb(const struct hf_mapping *m, void *arg)
{
	struct find *f = arg;

	if (f->addr >= m->start && f->addr < m->end) {
		f->m = *m;
		f->found = true;
	}
	return 0;
}

static void test_smaps_and_pagemap_of_this_process(void)
{
	long page = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, 16 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	struct find f = {.addr = (uint64_t)(uintptr_t)p};
	uint64_t res = 0;

	CHECK(p != MAP_FAILED);
	/* Touch pages 0, 2, 4, 6 and 8 of 16. */
	for (int i = 0; i < 5; i++)
		p[i * 2 * page] = 1;
	CHECK(hf_proc_read_smaps(getpid(), find_cb, &f) == 0);
	CHECK(f.found);
	CHECK_STR_EQ(f.m.perms, "rw-p");
	CHECK(hf_proc_resident_range(getpid(), (uint64_t)(uintptr_t)p, 16 * (uint64_t)page, &res) ==
	      0);
	CHECK_EQ_U64(res, 5 * (uint64_t)page);
	CHECK(hf_proc_resident_range(getpid(), (uint64_t)(uintptr_t)p + (uint64_t)page,
				     (uint64_t)page, &res) == 0);
	CHECK_EQ_U64(res, 0);
	munmap(p, 16 * (size_t)page);
}

int main(void)
{
	test_stat_comm_with_spaces_and_parens();
	test_stat_long_comm_is_cut_to_comm_len();
	test_stat_short_or_broken_lines();
	test_stat_of_this_process();
	test_stat_of_a_process_with_a_newline_in_its_comm();
	test_vanished_process_is_esrch();
	test_zombie_has_no_rss();
	test_exe_of_this_process();
	test_status_and_btime();
	test_smaps_text();
	test_maps_text_has_unknown_rss();
	test_smaps_callback_can_stop_the_walk();
	test_smaps_and_pagemap_of_this_process();
	return hf_test_done();
}
