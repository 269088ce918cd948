// SPDX-License-Identifier: MIT
/*
 * caps.c - which capabilities heapfragd needs, and why each, found by
 * starting it as an unprivileged user with one capability fewer at a time
 * (tests/privilege/test_least_privilege.c does so on every run):
 *
 *   CAP_BPF           load the BPF programs and create their maps.
 *   CAP_PERFMON       attach them to tracepoints and to uprobe events made
 *                     in tracefs, and read user memory from BPF.
 *   CAP_SYS_PTRACE    read another user's /proc/PID/{exe,maps,mem,root},
 *                     copy its heap (process_vm_readv), hold it still for a
 *                     census (PTRACE_SEIZE), and open per-process perf
 *                     events on it.
 *   CAP_SYS_ADMIN     exact mode: perf's uprobe PMU, through which libbpf
 *                     attaches the malloc_trim, arena-lock, libptm USDT and
 *                     -a probes, has required it again since the 2025 fix
 *                     that reverted its opening to CAP_PERFMON (6.18 here).
 *   CAP_DAC_OVERRIDE  a non-root user in exact mode: tracefs is root's
 *                     (0700), and inherited uprobes are written into its
 *                     uprobe_events.  In passive mode CAP_DAC_READ_SEARCH
 *                     is enough: only tracepoint ids are read there.
 *   CAP_KILL          with -e: a process held at exec belongs to another
 *                     user and session, and only CAP_KILL may send it the
 *                     SIGCONT that resumes it.
 *
 * Not needed: CAP_SYS_RESOURCE (BPF memory is charged to the memory
 * cgroup, not RLIMIT_MEMLOCK, since Linux 5.11) and CAP_NET_BIND_SERVICE
 * (the default port is 9310).
 */
#include "caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <stddef.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

enum need_when {
	ALWAYS,
	EXACT,
	NON_ROOT_EXACT,
	NON_ROOT_PASSIVE,
	WATCH_EXEC,
};

static const struct {
	enum need_when when;
	bool admin_will_do; /* CAP_SYS_ADMIN grants it too (bpf_capable, perfmon_capable) */
	struct hf_cap_need need;
	int alternative; /* another capability that will do, or -1 */
} table[] = {
	{ALWAYS, true, {CAP_BPF, "CAP_BPF", "load its BPF programs"}, -1},
	{ALWAYS,
	 true,
	 {CAP_PERFMON, "CAP_PERFMON", "attach BPF programs to tracepoints and uprobes"},
	 -1},
	{ALWAYS,
	 false,
	 {CAP_SYS_PTRACE, "CAP_SYS_PTRACE",
	  "read other processes' memory and /proc/PID/exe, maps and root"},
	 -1},
	{EXACT,
	 false,
	 {CAP_SYS_ADMIN, "CAP_SYS_ADMIN",
	  "open uprobe perf events in exact mode, as this kernel asks (use -m passive to do "
	  "without)"},
	 -1},
	{NON_ROOT_EXACT,
	 false,
	 {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE",
	  "write uprobe events into tracefs, which only root may write"},
	 -1},
	{NON_ROOT_PASSIVE,
	 false,
	 {CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH",
	  "read tracepoint ids in tracefs, which only root may read"},
	 CAP_DAC_OVERRIDE},
	{WATCH_EXEC,
	 false,
	 {CAP_KILL, "CAP_KILL", "resume the processes of -e it holds at exec (SIGCONT)"},
	 -1},
};

static bool has(uint64_t set, int cap)
{
	return cap >= 0 && cap < 64 && (set >> cap) & 1;
}

static bool applies(enum need_when when, const struct hf_caps_use *use)
{
	switch (when) {
	case ALWAYS:
		return true;
	case EXACT:
		return use->exact;
	case NON_ROOT_EXACT:
		return !use->root && use->exact;
	case NON_ROOT_PASSIVE:
		return !use->root && !use->exact;
	case WATCH_EXEC:
		return use->watch_exec;
	}
	return true;
}

const struct hf_cap_need *hf_caps_missing(uint64_t effective, const struct hf_caps_use *use)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (!applies(table[i].when, use) || has(effective, table[i].need.cap) ||
		    has(effective, table[i].alternative) ||
		    (table[i].admin_will_do && has(effective, CAP_SYS_ADMIN)))
			continue;
		return &table[i].need;
	}
	return NULL;
}

int hf_caps_by_name(const char *name)
{
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcasecmp(name, table[i].need.name + 4) == 0)
			return table[i].need.cap;
	return -1;
}

int hf_caps_effective(uint64_t *effective)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {{0}};

	if (syscall(SYS_capget, &hdr, data) != 0)
		return -errno;
	*effective = (uint64_t)data[0].effective | (uint64_t)data[1].effective << 32;
	return 0;
}
