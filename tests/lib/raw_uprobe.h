/* SPDX-License-Identifier: MIT */
/*
 * raw_uprobe.h - a uprobe or return probe through the perf uprobe PMU with a
 * BPF program attached, for tests and benchmarks that measure what a probe
 * itself costs (no libbpf object, no tracefs).  Header-only: the callers are
 * single test programs.
 */
#ifndef HF_TEST_RAW_UPROBE_H
#define HF_TEST_RAW_UPROBE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>

/* The uprobe PMU's type, or -1 when the kernel has none. */
static inline int raw_uprobe_type(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	int type = -1;

	if (f) {
		if (fscanf(f, "%d", &type) != 1)
			type = -1;
		fclose(f);
	}
	return type;
}

/* A BPF program that does nothing ("r0 = 0; exit"): the probe's cost alone. */
static inline int raw_uprobe_empty_prog(void)
{
	struct bpf_insn insns[] = {
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};

	return bpf_prog_load(BPF_PROG_TYPE_KPROBE, "hf_empty", "GPL", insns, 2, NULL);
}

struct raw_uprobe {
	int event_fd;
	int link_fd;
};

/*
 * A uprobe (retprobe: a return probe) at a file offset of path, in process
 * pid only, running prog_fd.  Returns 0 or a negative errno.
 */
static inline int raw_uprobe_attach(struct raw_uprobe *u, int type, const char *path,
				    uint64_t offset, bool retprobe, pid_t pid, int prog_fd)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = (uint32_t)type;
	/* format/retprobe of the uprobe PMU is "config:0" on Linux. */
	attr.config = retprobe ? 1 : 0;
	attr.config1 = (uint64_t)(uintptr_t)path;
	attr.config2 = offset;
	u->event_fd = (int)syscall(__NR_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (u->event_fd < 0)
		return -errno;
	u->link_fd = bpf_link_create(prog_fd, u->event_fd, BPF_PERF_EVENT, NULL);
	if (u->link_fd < 0) {
		int err = u->link_fd;

		close(u->event_fd);
		u->event_fd = -1;
		return err;
	}
	return 0;
}

static inline void raw_uprobe_detach(struct raw_uprobe *u)
{
	if (u->link_fd >= 0)
		close(u->link_fd);
	if (u->event_fd >= 0)
		close(u->event_fd);
	u->link_fd = u->event_fd = -1;
}

#endif /* HF_TEST_RAW_UPROBE_H */
