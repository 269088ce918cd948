// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * exec_gate.bpf.c - stops a process that execs a watched executable before
 * its first user instruction, so that heapfragd can attach its probes first.
 *
 * sched_process_exec runs in the exec'ing task, after the new image is in
 * place and before the return to user space.  A SIGSTOP sent from there is
 * acted on during that return: the dynamic linker has not run, nothing has
 * been allocated.  The gated map records the process; heapfragd attaches its
 * uprobes and then removes the entry and sends SIGCONT (daemon/exec_gate.c).
 *
 * The executable is matched by the inode of mm->exe_file (what
 * /proc/PID/exe shows), so symlinks, relative paths and bind mounts of the
 * watched file all match, and a different file at the same path does not.
 *
 * Not gated: a process being ptraced (a SIGSTOP would go to its debugger as
 * a signal-delivery stop), one with a group stop already pending (that stop
 * is someone else's), and a PID namespace's init (it ignores SIGSTOP).
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "exec_gate.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HFG_MAX_WATCHED);
	__type(key, struct hfg_file);
	__type(value, u32);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HFG_MAX_GATED);
	__type(key, u32);
	__type(value, struct hfg_gated);
} gated SEC(".maps");

#define SIGSTOP             19
#define JOBCTL_STOP_PENDING (1UL << 17)
#define SIGNAL_UNKILLABLE   0x00000040

/* The identity of a file the daemon holds open, asked for through iter/task_file. */
unsigned int learn_tgid;
int learn_fd;
struct hfg_file learned;
unsigned int learned_ok;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(hfg_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct hfg_gated g = {};
	struct hfg_file key = {};
	struct inode *inode;
	struct file *exe;
	u32 tgid = p->tgid;

	/* Watched?  One hash lookup for every exec on the machine. */
	exe = p->mm->exe_file;
	if (!exe)
		return 0;
	inode = exe->f_inode;
	key.dev = inode->i_sb->s_dev;
	key.ino = inode->i_ino;
	if (!bpf_map_lookup_elem(&watched, &key))
		return 0;
	/* Not ours to stop. */
	if (p->ptrace || (p->jobctl & JOBCTL_STOP_PENDING) ||
	    (p->signal->flags & SIGNAL_UNKILLABLE))
		return 0;
	/* Recorded first: whoever resumes it finds it here. */
	g.start_boottime = p->group_leader->start_boottime;
	g.gated_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&gated, &tgid, &g, BPF_ANY) != 0)
		return 0;
	/* The current task is the exec'ing one: the stop hits the new image. */
	if (bpf_send_signal(SIGSTOP) != 0)
		bpf_map_delete_elem(&gated, &tgid);
	return 0;
}

/*
 * A SIGSTOP from anyone else while the gate holds the process: that stop is
 * theirs, and our SIGCONT would undo it (SIGCONT discards pending stops), so
 * the daemon leaves the process stopped.  Our own SIGSTOP is sent from the
 * process itself.
 */
SEC("tp_btf/signal_generate")
int BPF_PROG(hfg_signal, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	u32 tgid = task->tgid;
	struct hfg_gated *g;

	if (sig != SIGSTOP || result != 0)
		return 0;
	if ((u32)(bpf_get_current_pid_tgid() >> 32) == tgid)
		return 0;
	g = bpf_map_lookup_elem(&gated, &tgid);
	/* Only this program writes flags, and only this bit: a plain store will do. */
	if (g)
		g->flags |= HFG_FOREIGN_STOP;
	return 0;
}

/* A gated process killed while stopped: its PID may be recycled, forget it. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(hfg_exit, struct task_struct *p, bool group_dead)
{
	u32 tgid = p->tgid;

	if (group_dead)
		bpf_map_delete_elem(&gated, &tgid);
	return 0;
}

/* The kernel's identity of the file at learn_fd in process learn_tgid. */
SEC("iter/task_file")
int hfg_learn(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct inode *inode;

	if (!task || !file || task->tgid != learn_tgid || ctx->fd != (u32)learn_fd)
		return 0;
	inode = file->f_inode;
	learned.dev = inode->i_sb->s_dev;
	learned.ino = inode->i_ino;
	learned_ok = 1;
	return 0;
}
