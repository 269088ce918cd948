/* SPDX-License-Identifier: MIT */
/*
 * fuzz_check.h - the fuzzers' one check: a property that does not hold is a
 * finding, so it aborts (libFuzzer saves the input) with where and what.
 */
#ifndef HF_FUZZ_CHECK_H
#define HF_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
