// SPDX-License-Identifier: MIT
/*
 * bpf_smoke: loads a uprobe and a syscall tracepoint, attaches them to a
 * child process, and checks that both counted exactly what the child did.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "check.h"
#include "log.h"
#include "smoke.h"
#include "smoke.skel.h"
#include "tracefs.h"

#define FUNC_CALLS    1000
#define GETPPID_CALLS 250

/* The probed function; noinline and used so that every call really happens. */
__attribute__((noinline, used)) int hf_smoke_target(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

static void child_main(int go_fd)
{
	char go;
	int acc = 0;

	if (read(go_fd, &go, 1) != 1)
		_exit(3);
	for (int i = 0; i < FUNC_CALLS; i++)
		acc = hf_smoke_target(acc);
	for (int i = 0; i < GETPPID_CALLS; i++)
		syscall(SYS_getppid);
	_exit(acc == FUNC_CALLS ? 0 : 4);
}

static uint64_t counter(struct smoke_bpf *skel, uint32_t which)
{
	uint64_t val = 0;

	bpf_map_lookup_elem(bpf_map__fd(skel->maps.counters), &which, &val);
	return val;
}

int main(void)
{
	LIBBPF_OPTS(bpf_uprobe_opts, uopts, .func_name = "hf_smoke_target");
	struct smoke_bpf *skel = NULL;
	struct bpf_link *ulink = NULL;
	int pipefd[2], status = 0, err;
	pid_t child;

	hf_log_route_libbpf();
	if (pipe(pipefd))
		return 1;
	child = fork();
	if (child == 0) {
		close(pipefd[1]);
		child_main(pipefd[0]);
	}
	close(pipefd[0]);

	if (hf_tracefs_ensure() != 0) {
		kill(child, SIGKILL);
		HF_SKIP("tracefs cannot be mounted (needs root)");
	}
	skel = smoke_bpf__open();
	if (!skel) {
		kill(child, SIGKILL);
		HF_SKIP("cannot open the BPF object: %s", strerror(errno));
	}
	skel->rodata->target_tgid = (uint32_t)child;
	err = smoke_bpf__load(skel);
	if (err) {
		kill(child, SIGKILL);
		smoke_bpf__destroy(skel);
		HF_SKIP("cannot load BPF (needs CAP_BPF and CAP_PERFMON): %s", strerror(-err));
	}

	/* The uprobe is attached with the child's pid: only its mm gets the breakpoint. */
	ulink = bpf_program__attach_uprobe_opts(skel->progs.smoke_uprobe, child, "/proc/self/exe",
						0, &uopts);
	CHECK_MSG(ulink != NULL, "attach uprobe: %s", strerror(errno));
	err = smoke_bpf__attach(skel);
	CHECK_MSG(err == 0, "attach tracepoint: %s", strerror(-err));

	if (write(pipefd[1], "g", 1) != 1)
		CHECK(!"cannot release the child");
	waitpid(child, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	CHECK_EQ_U64(counter(skel, SMOKE_UPROBE_HITS), FUNC_CALLS);
	CHECK_EQ_U64(counter(skel, SMOKE_GETPPID_CALLS), GETPPID_CALLS);
	/* Our own calls must not count: the filter is the child's tgid. */
	hf_smoke_target(0);
	syscall(SYS_getppid);
	CHECK_EQ_U64(counter(skel, SMOKE_UPROBE_HITS), FUNC_CALLS);
	CHECK_EQ_U64(counter(skel, SMOKE_GETPPID_CALLS), GETPPID_CALLS);
	printf("uprobe hits %d, getppid tracepoint hits %d: counted exactly\n", FUNC_CALLS,
	       GETPPID_CALLS);

	bpf_link__destroy(ulink);
	smoke_bpf__destroy(skel);
	close(pipefd[1]);
	return hf_test_done();
}
