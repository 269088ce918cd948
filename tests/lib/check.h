/* SPDX-License-Identifier: MIT */
/*
 * check.h - the whole test framework: CHECK() and friends.
 *
 * A failed check prints where and why and counts; hf_test_done() prints the
 * closing line "N passed, N failed" and returns the exit status.  A test that
 * needs something the machine lacks calls HF_SKIP(): outside CI it exits 77
 * (ctest's SKIP_RETURN_CODE); under CI=true it fails, because CI must prove
 * the real path works.
 */
#ifndef HF_TEST_CHECK_H
#define HF_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hf_checks_passed;
static int hf_checks_failed;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (cond) {                                                           \
			hf_checks_passed++;                                           \
		} else {                                                              \
			hf_checks_failed++;                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#cond);                                               \
		}                                                                     \
	} while (0)

#define CHECK_MSG(cond, ...)                                                          \
	do {                                                                          \
		if (cond) {                                                           \
			hf_checks_passed++;                                           \
		} else {                                                              \
			hf_checks_failed++;                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, \
				#cond);                                               \
			fprintf(stderr, __VA_ARGS__);                                 \
			fputc('\n', stderr);                                          \
		}                                                                     \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                            \
	do {                                                                          \
		uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                      \
		CHECK_MSG(a_ == b_, "%s = %" PRIu64 ", %s = %" PRIu64, #a, a_, #b, b_); \
	} while (0)

#define CHECK_STR_EQ(a, b)                                                            \
	do {                                                                          \
		const char *a_ = (a), *b_ = (b);                                      \
		CHECK_MSG(a_ && b_ && strcmp(a_, b_) == 0, "%s = \"%s\", %s = \"%s\"", #a, \
			  a_ ? a_ : "(null)", #b, b_ ? b_ : "(null)");                \
	} while (0)

/* Stops the test at once: the rest cannot run without what is missing. */
#define HF_SKIP(...)                                                                  \
	do {                                                                          \
		const char *ci_ = getenv("CI");                                       \
		fprintf(stderr, "SKIP: ");                                            \
		fprintf(stderr, __VA_ARGS__);                                         \
		fputc('\n', stderr);                                                  \
		if (ci_ && strcmp(ci_, "true") == 0) {                                \
			fprintf(stderr, "CI=true: a test may not skip; failing\n");    \
			exit(1);                                                      \
		}                                                                     \
		exit(77);                                                             \
	} while (0)

static inline int hf_test_done(void)
{
	printf("%d passed, %d failed\n", hf_checks_passed, hf_checks_failed);
	return hf_checks_failed ? 1 : 0;
}

#endif /* HF_TEST_CHECK_H */
