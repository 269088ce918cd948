/* SPDX-License-Identifier: MIT */
/*
 * preload.h - run one workload on glibc and again on libptm.
 *
 * Every black-box test of libptm runs its workload twice: first on glibc, to
 * prove that the test itself is right, then with LD_PRELOAD=libptm.so.  The
 * driver re-executes its own binary with HF_PTM_MODE set to "glibc" or "ptm";
 * the child calls hf_preload_verify() first, which proves that malloc really
 * resolves to the allocator the mode names.  A preload that silently did not
 * happen therefore fails instead of testing glibc twice.
 */
#ifndef HF_TEST_PRELOAD_H
#define HF_TEST_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>

enum hf_preload_mode {
	HF_PRELOAD_GLIBC = 0,
	HF_PRELOAD_PTM = 1,
};

struct hf_preload_child {
	int status;    /* wait status, valid when the child was reaped */
	int timed_out; /* the child was killed after the timeout */
	char *out;     /* stdout and stderr interleaved, NUL-terminated */
	size_t out_len;
};

const char *hf_preload_mode_name(enum hf_preload_mode mode);

/*
 * Writes the path of $HF_BUILD_DIR/lib/libptm.so to buf.  Returns 0, or
 * -ENOENT (with a "libptm.so not built" line on stderr) when it is missing.
 */
int hf_preload_lib_path(char *buf, size_t len);

/*
 * In a child started by hf_preload_spawn(): checks that malloc resolves to
 * libptm.so (mode ptm: ptm_version exported, malloc defined in libptm.so) or
 * to glibc (mode glibc: no ptm_version, malloc defined in libc.so.6).  Exits
 * with status 3 and a message when it does not.
 */
void hf_preload_verify(void);

/*
 * Runs /proc/self/exe with argv (argv[0] included) under mode, capturing its
 * stdout and stderr; kills it after timeout_s seconds.  Returns 0 when the
 * child was reaped (look at child->status), or a negative errno.  The caller
 * frees child->out.
 */
int hf_preload_spawn(enum hf_preload_mode mode, char *const argv[], int timeout_s,
		     struct hf_preload_child *child);

/* Prints a child's captured output, each line prefixed, for the test log. */
void hf_preload_print(const char *prefix, const struct hf_preload_child *child);

/* Describes a wait status: "exit 0", "signal 6 (Aborted)", "timed out". */
const char *hf_preload_describe(const struct hf_preload_child *child, char *buf, size_t len);

/*
 * The usual run: argv under mode (hf_preload_spawn), its output printed with
 * prefix, and whether it exited 0 within timeout_s having printed expect.
 * When not, why[0..len) says what happened (it could not start, its status).
 */
bool hf_preload_run_ok(enum hf_preload_mode mode, char *const argv[], int timeout_s,
		       const char *prefix, const char *expect, char *why, size_t len);

#endif /* HF_TEST_PRELOAD_H */
