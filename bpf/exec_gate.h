/* SPDX-License-Identifier: MIT */
/*
 * exec_gate.h - shared between exec_gate.bpf.c and daemon/exec_gate.c: the
 * executables -e watches, known by the kernel's own identity of their file,
 * and the processes the gate holds stopped at exec until their probes are in.
 */
#ifndef HF_BPF_EXEC_GATE_H
#define HF_BPF_EXEC_GATE_H

/* Default map sizes. */
#define HFG_MAX_WATCHED 256
#define HFG_MAX_GATED   4096

/*
 * A file as the kernel knows it: its superblock's s_dev (the kernel's
 * encoding, MAJOR << 20 | MINOR, which stat(2)'s st_dev is not on every file
 * system) and its inode number.
 */
struct hfg_file {
	unsigned long long dev;
	unsigned long long ino;
};

/* Someone else sent the process SIGSTOP while the gate held it. */
#define HFG_FOREIGN_STOP 0x1u

/* gated: tgid -> a process the gate stopped and nobody has resumed yet. */
struct hfg_gated {
	unsigned long long start_boottime; /* ns since boot: the process's identity */
	unsigned long long gated_ns;       /* CLOCK_MONOTONIC when it was stopped */
	unsigned int flags;                /* HFG_FOREIGN_STOP */
	unsigned int pad;
};

#endif /* HF_BPF_EXEC_GATE_H */
