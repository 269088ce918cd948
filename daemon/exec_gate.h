/* SPDX-License-Identifier: MIT */
/*
 * exec_gate.h - -e without a race: a process that execs a watched executable
 * is stopped in the kernel before its first instruction (bpf/exec_gate.bpf.c)
 * and resumed once its probes are attached.
 *
 * Never leaving a process stopped: the daemon resumes each one as soon as it
 * has attached (hf_exec_gate_release), and every one still held when it
 * closes the gate.  A keeper process forked at open resumes whatever the
 * daemon has not resumed within the timeout (a lost exec event, a hung
 * daemon) and, when the daemon dies without closing the gate (SIGKILL, a
 * crash), everything the gate holds.  Should both die at once, the next
 * daemon watching the file resumes what they left stopped.  A process
 * someone else sent SIGSTOP while it was held stays stopped: that stop is
 * theirs.
 */
#ifndef HF_EXEC_GATE_H
#define HF_EXEC_GATE_H

#include <stdint.h>
#include <sys/types.h>

/*
 * How long a process may stay held before the keeper resumes it anyway.  The
 * daemon's loop can be busy for seconds (detaching the uprobes of a process
 * that exited costs ~80 ms per probe); holding a process a little longer is
 * better than letting it run before its probes are in.
 */
#define HF_EXEC_GATE_TIMEOUT_MS 5000

struct hf_exec_gate;

/*
 * Loads and attaches the gate and forks its keeper.  Call it while the
 * daemon has one thread: the keeper is a fork.
 */
int hf_exec_gate_open(unsigned int timeout_ms, struct hf_exec_gate **out);

/*
 * Gates every later exec of the file at path (any path to that file), after
 * resuming the processes running it that an earlier gate left stopped.
 */
int hf_exec_gate_watch(struct hf_exec_gate *g, const char *path);

/*
 * Resumes pid if the gate holds it.  Returns 1 when it was held (then
 * *held_ns, if not NULL, is how long), 0 when it was not (never gated, or
 * already resumed by the keeper), or a negative errno.
 */
int hf_exec_gate_release(struct hf_exec_gate *g, pid_t pid, uint64_t *held_ns);

/* Detaches, resumes every process still held, stops the keeper; NULL-safe. */
void hf_exec_gate_close(struct hf_exec_gate *g);

#endif /* HF_EXEC_GATE_H */
