/* SPDX-License-Identifier: MIT */
/*
 * tracefs.h - make sure tracefs is mounted.
 *
 * libbpf attaches syscall tracepoints by reading their ids from tracefs, which
 * a fresh machine does not mount.  hf_tracefs_ensure() mounts it at
 * /sys/kernel/tracing when neither that nor /sys/kernel/debug/tracing has it.
 */
#ifndef HF_TRACEFS_H
#define HF_TRACEFS_H

/* Returns 0 when tracefs is usable, or a negative errno from mount(2). */
int hf_tracefs_ensure(void);

#endif /* HF_TRACEFS_H */
