/* SPDX-License-Identifier: MIT */
/*
 * caps.h - the capabilities heapfragd needs, checked once at start-up.
 *
 * heapfragd may run as a non-root user holding only some capabilities
 * (systemd's AmbientCapabilities=, file capabilities in a container).  If
 * one it needs is missing it would otherwise fail deep inside libbpf or
 * tracefs with a bare EPERM; instead hf_caps_missing() names the first one
 * and why it is needed, from the effective set and what was asked for.
 * The README's security section gives the same table.
 */
#ifndef HF_CAPS_H
#define HF_CAPS_H

#include <stdbool.h>
#include <stdint.h>

/* What decides which capabilities are needed. */
struct hf_caps_use {
	bool root;       /* effective UID 0: tracefs's files are ours */
	bool exact;      /* uprobes may be attached (exact mode is the default) */
	bool watch_exec; /* -e: processes held at exec are resumed with SIGCONT */
};

struct hf_cap_need {
	int cap;          /* CAP_... number */
	const char *name; /* "CAP_BPF" */
	const char *why;  /* the end of "needs CAP_X to ..." */
};

/*
 * The first capability needed for use that effective (bit n = capability
 * n) lacks, or NULL when every one is there.  CAP_SYS_ADMIN stands in for
 * CAP_BPF and CAP_PERFMON, as the kernel lets it.  Pure.
 */
const struct hf_cap_need *hf_caps_missing(uint64_t effective, const struct hf_caps_use *use);

/*
 * The number of a capability heapfragd may need, by its name with or
 * without "CAP_" in any case ("CAP_BPF", "SYS_PTRACE"); -1 for any other.
 */
int hf_caps_by_name(const char *name);

/* This process's effective capability set, from capget(2); 0 or a negative errno. */
int hf_caps_effective(uint64_t *effective);

#endif /* HF_CAPS_H */
