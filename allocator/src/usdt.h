/* SPDX-License-Identifier: MIT */
/*
 * usdt.h - the probe sites' macro, over <sys/sdt.h>.  The probes and their
 * arguments are listed in ptm_usdt.h.
 */
#ifndef PTM_SRC_USDT_H
#define PTM_SRC_USDT_H

#include <stdint.h>
#include <sys/sdt.h>

#include "ptm_usdt.h"

#define PTM_PROBE1(name, a)    STAP_PROBE1(libptm, name, (uint64_t)(uintptr_t)(a))
#define PTM_PROBE2(name, a, b) STAP_PROBE2(libptm, name, (uint64_t)(uintptr_t)(a), (uint64_t)(b))
#define PTM_PROBE3(name, a, b, c)                                                                  \
	STAP_PROBE3(libptm, name, (uint64_t)(uintptr_t)(a), (uint64_t)(b), (uint64_t)(c))
#define PTM_PROBE4(name, a, b, c, d)                                                               \
	STAP_PROBE4(libptm, name, (uint64_t)(uintptr_t)(a), (uint64_t)(b), (uint64_t)(c),           \
		    (uint64_t)(uintptr_t)(d))

#endif /* PTM_SRC_USDT_H */
