// SPDX-License-Identifier: MIT
/*
 * libsymtest - the shared library of the symbolizer's target program.  Each
 * site returns the return address of a call made by a known function, so the
 * test knows which function and line the address must resolve to.
 */
#include "symtest.h"

#define NOINLINE __attribute__((noinline, noclone))

/* Storing the address after the call keeps the call from being a tail call. */
static void *volatile lib_sink;

NOINLINE static void *lib_callee(void)
{
	return __builtin_return_address(0);
}

NOINLINE void *symtest_lib_site(void)
{
	void *ra = lib_callee();

	lib_sink = ra;
	return ra;
}

/*
 * Static, and after an exported function: only .symtab and DWARF know
 * its name, while .dynsym has a symbol below it that does not hold it.
 */
NOINLINE static void *lib_inner(void)
{
	void *ra = lib_callee();

	lib_sink = ra;
	return ra;
}

NOINLINE void *symtest_lib_inner_site(void)
{
	void *ra = lib_inner();

	lib_sink = ra;
	return ra;
}
