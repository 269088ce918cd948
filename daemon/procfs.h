/* SPDX-License-Identifier: MIT */
/*
 * procfs.h - parsers for the parts of /proc/PID that the account reads.
 *
 * Every parser takes a string or a FILE so that tests can feed it crafted
 * input; the hf_proc_read_*() wrappers open the real files.  Lines may be of
 * any length.  A process that is gone, or goes while it is being read, is
 * -ESRCH, never a crash; input the parser does not understand is -EINVAL.
 */
#ifndef HF_PROCFS_H
#define HF_PROCFS_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "snapshot.h"

/* The fields of /proc/PID/stat that heapfrag uses (see proc(5)). */
struct hf_proc_stat {
	pid_t pid;                  /* field 1 */
	char comm[HF_COMM_LEN + 1]; /* field 2, without the parentheses */
	char state;                 /* field 3: R, S, D, Z, X, ... */
	pid_t ppid;                 /* field 4 */
	uint64_t start_ticks;       /* field 22: clock ticks after boot; with pid, the identity */
	uint64_t start_brk;         /* field 47: 0 when the reader may not ptrace the process */
};

/*
 * Parses one /proc/PID/stat line.  comm may hold spaces and ')', so the
 * fields after it are found from the last ')' of the line.
 */
int hf_proc_parse_stat(const char *line, struct hf_proc_stat *out);
int hf_proc_read_stat(pid_t pid, struct hf_proc_stat *out);

/* The "btime" line of /proc/stat: boot time in Unix seconds. */
int hf_proc_parse_btime(FILE *f, uint64_t *btime);
int hf_proc_boot_time(uint64_t *btime);

/* A start time in clock ticks after boot as Unix seconds. */
double hf_proc_ticks_to_unix(uint64_t start_ticks, uint64_t btime);

/* readlink(/proc/PID/exe); "" plus 0 for kernel threads, which have none. */
int hf_proc_read_exe(pid_t pid, char *buf, size_t len);

/* VmRSS of /proc/PID/status in bytes; -ESRCH for a zombie, which has none. */
int hf_proc_parse_status_rss(FILE *f, uint64_t *rss_bytes);
int hf_proc_read_rss(pid_t pid, uint64_t *rss_bytes);

/* One mapping of /proc/PID/smaps (or maps, which has no Rss). */
struct hf_mapping {
	uint64_t start;
	uint64_t end;
	uint64_t offset;
	char perms[5]; /* "rw-p" */
	uint64_t inode;
	uint64_t rss_bytes;     /* HF_UNKNOWN when read from maps */
	char path[HF_PATH_LEN]; /* "" for anonymous mappings; "[heap]", "[stack]", ... */
};

/*
 * Calls cb once per mapping, in address order; a non-zero return from cb
 * stops the walk and is returned.  Works on both maps and smaps text.
 */
typedef int (*hf_mapping_cb)(const struct hf_mapping *m, void *arg);
int hf_proc_parse_smaps(FILE *f, hf_mapping_cb cb, void *arg);
int hf_proc_read_smaps(pid_t pid, hf_mapping_cb cb, void *arg);

/*
 * Bytes of [start, start + len) that are resident, from /proc/PID/pagemap:
 * for a part of a mapping, where smaps only knows the whole.
 */
int hf_proc_resident_range(pid_t pid, uint64_t start, uint64_t len, uint64_t *resident);

#endif /* HF_PROCFS_H */
