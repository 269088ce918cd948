/* SPDX-License-Identifier: MIT */
/*
 * profile.h - allocation sites as a pprof profile or as folded stacks.
 *
 * A site is one call stack into the allocator with the numbers heapfragd
 * keeps for it.  The writers are pure functions: the output depends only on
 * the arguments, and they neither log nor touch the daemon.  profile.c says
 * how each number lands in the output.
 */
#ifndef HF_PROFILE_H
#define HF_PROFILE_H

#include <stddef.h>
#include <stdint.h>

/* A site's requested_bytes when the tracer did not count it (same as HF_UNKNOWN). */
#define HF_PROFILE_UNKNOWN UINT64_MAX

/* The most sites one profile takes; more is -E2BIG. */
#define HF_PROFILE_MAX_SITES (1u << 20)
/* The most frames one site has (the kernel's PERF_MAX_STACK_DEPTH); more is -E2BIG. */
#define HF_PROFILE_MAX_FRAMES 127
/* Longer function, object and file names are cut to this many bytes. */
#define HF_PROFILE_MAX_NAME 4096

struct hf_profile_frame {
	uint64_t address;     /* absolute, in the process */
	const char *object;   /* mapped file's path; "" or NULL unknown */
	uint64_t offset;      /* the address's offset in that object */
	const char *function; /* NULL or "" unknown */
	const char *file;     /* source file; NULL or "" unknown */
	uint32_t line;        /* 0 unknown */
};

struct hf_profile_site {
	const struct hf_profile_frame *frames; /* leaf first: frames[0] called the allocator */
	size_t nr_frames;
	uint64_t allocations;       /* allocations made here since attach */
	uint64_t requested_bytes;   /* bytes those allocations asked for; HF_PROFILE_UNKNOWN */
	uint64_t live_allocations;  /* of those, the ones not yet freed */
	uint64_t live_bytes;        /* their bytes */
	uint64_t pinned_free_bytes; /* free bytes the live allocations keep from being released */
};

enum hf_profile_kind {
	/*
	 * pprof: alloc_objects/count, alloc_space/bytes (only if every site
	 * knows requested_bytes), inuse_objects/count, inuse_space/bytes;
	 * default inuse_space.  Folded: live_bytes.
	 */
	HF_PROFILE_INUSE,
	/*
	 * pprof: inuse_space/bytes, pinned_free_space/bytes; default
	 * pinned_free_space.  Folded: pinned_free_bytes.
	 */
	HF_PROFILE_PINNED,
};

/*
 * A gzip-compressed profile.proto message (what `go tool pprof` reads and a
 * server sends as application/octet-stream), one Sample per site in the
 * sites' order.  time_seconds is the profile's wall-clock time since the
 * epoch (0: not written).  n = 0 gives a valid empty profile.  On success
 * *out is the caller's to free().  Returns 0, -EINVAL (a NULL pointer where
 * data is needed, an unknown kind), -E2BIG (more than HF_PROFILE_MAX_SITES
 * sites or HF_PROFILE_MAX_FRAMES frames in a site), -ENOMEM, or -EIO if zlib
 * reports its stream broken (which it does not do with valid use).
 */
int hf_profile_pprof(const struct hf_profile_site *sites, size_t n, enum hf_profile_kind kind,
		     double time_seconds, unsigned char **out, size_t *out_len);

/*
 * Folded stacks (flamegraph.pl, speedscope, Grafana): one line
 * "root;...;leaf VALUE\n" per site whose value is not 0, in the sites'
 * order.  *out is NUL-terminated text, *out_len its length without the NUL;
 * the caller frees it.  Returns 0, -EINVAL, -E2BIG or -ENOMEM as
 * hf_profile_pprof() does.
 */
int hf_profile_folded(const struct hf_profile_site *sites, size_t n, enum hf_profile_kind kind,
		      char **out, size_t *out_len);

#endif /* HF_PROFILE_H */
