/* SPDX-License-Identifier: MIT */
/*
 * registry.h - the traced processes: what to trace, their latest snapshots,
 * and struct hf_service over them.
 *
 * One thread (the daemon's main loop) runs hf_registry_run(); the service
 * calls may come from any thread (HTTP).  Snapshots are copied in and out
 * under one mutex; the slow /proc reads happen outside it.
 */
#ifndef HF_REGISTRY_H
#define HF_REGISTRY_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "options.h"
#include "service.h"

struct hf_registry;

/* Loads the BPF side (map sizes and tunables from opts). */
int hf_registry_new(const struct hf_options *opts, struct hf_registry **out);
void hf_registry_free(struct hf_registry *r);

/*
 * Starts tracing a running process.  -ESRCH: no such process; -EEXIST:
 * already traced; otherwise why[] says in one sentence why not.
 */
int hf_registry_attach(struct hf_registry *r, pid_t pid, enum hf_mode mode, char *why,
		       size_t why_len);

/* Traces every process running the executable at path, now and on exec. */
int hf_registry_watch_exe(struct hf_registry *r, const char *path, char *why, size_t why_len);

/*
 * Starts argv[0] traced from its first instruction; *child is its PID.
 * The caller reaps it.
 */
int hf_registry_spawn(struct hf_registry *r, char **argv, pid_t *child, char *why, size_t why_len);

/* Every process: discovers them in /proc and as they appear. */
int hf_registry_trace_all(struct hf_registry *r, char *why, size_t why_len);

/*
 * The main loop: lifecycle events, a snapshot of everything every interval,
 * expiry.  Returns when *stop becomes non-zero, or when the spawned command
 * ended and exit_with_command is set (then *status is its exit status).
 */
int hf_registry_run(struct hf_registry *r, volatile sig_atomic_t *stop, int *status);

/* The calls HTTP makes, bound to r. */
void hf_registry_service(struct hf_registry *r, struct hf_service *svc);

#endif /* HF_REGISTRY_H */
