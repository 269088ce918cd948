/* SPDX-License-Identifier: MIT */
/*
 * symtest.h - libsymtest's two entry points, each returning a return address
 * inside libsymtest: one in an exported function (a stripped copy still names
 * it from .dynsym), one in a static function (a stripped copy cannot).
 */
#ifndef HF_TEST_SYMTEST_H
#define HF_TEST_SYMTEST_H

void *symtest_lib_site(void);
void *symtest_lib_inner_site(void);

#endif /* HF_TEST_SYMTEST_H */
