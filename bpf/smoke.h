/* SPDX-License-Identifier: MIT */
/*
 * smoke.h - shared between smoke.bpf.c and its test: the counters a
 * minimal uprobe + syscall-tracepoint program keeps for one process.
 */
#ifndef HF_BPF_SMOKE_H
#define HF_BPF_SMOKE_H

enum smoke_counter {
	SMOKE_UPROBE_HITS = 0,
	SMOKE_GETPPID_CALLS = 1,
	SMOKE_NR_COUNTERS = 2,
};

#endif /* HF_BPF_SMOKE_H */
