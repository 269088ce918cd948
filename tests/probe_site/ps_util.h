/* SPDX-License-Identifier: MIT */
/*
 * ps_util.h - independent answers for the probe-site tests, from binutils:
 * a symbol's address from `nm`, the file offset from `readelf -lW`'s PT_LOAD
 * rows done by hand here, the build-id from `readelf -n`.  None of this goes
 * through libelf, so the tests check the library against another reader.
 */
#ifndef HF_TEST_PS_UTIL_H
#define HF_TEST_PS_UTIL_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The address of a defined symbol as `nm` prints it (dynamic: nm -D), taking
 * the default version "name@@V" or the plain "name".  Returns 0 if absent.
 */
static inline uint64_t ps_nm_address(const char *path, const char *name, bool dynamic)
{
	char cmd[1024], line[1024];
	uint64_t found = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm %s --defined-only '%s' 2>/dev/null", dynamic ? "-D" : "",
		 path);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	while (fgets(line, sizeof(line), p)) {
		char addr[64], type[8], sym[512];
		size_t n = strlen(name);

		if (sscanf(line, "%63s %7s %511s", addr, type, sym) != 3)
			continue;
		if (strncmp(sym, name, n) != 0)
			continue;
		if (sym[n] == '\0' || (sym[n] == '@' && sym[n + 1] == '@')) {
			found = strtoull(addr, NULL, 16);
			break;
		}
	}
	pclose(p);
	return found;
}

/* vaddr - p_vaddr + p_offset of the PT_LOAD row of `readelf -lW` holding vaddr. */
static inline uint64_t ps_readelf_offset(const char *path, uint64_t vaddr)
{
	char cmd[1024], line[1024];
	uint64_t result = UINT64_MAX;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "readelf -lW '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	if (!p)
		return result;
	while (fgets(line, sizeof(line), p)) {
		unsigned long long off, va, pa, filesz, memsz;

		if (sscanf(line, " LOAD 0x%llx 0x%llx 0x%llx 0x%llx 0x%llx", &off, &va, &pa,
			   &filesz, &memsz) != 5)
			continue;
		if (vaddr >= va && vaddr < va + filesz) {
			result = vaddr - va + off;
			break;
		}
	}
	pclose(p);
	return result;
}

/* The build-id `readelf -n` prints, into hex; "" if none. */
static inline void ps_readelf_build_id(const char *path, char *hex, size_t len)
{
	char cmd[1024], line[1024];
	FILE *p;

	hex[0] = '\0';
	snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		char *at = strstr(line, "Build ID: ");

		if (at && sscanf(at + 10, "%40s", hex) == 1)
			break;
		(void)len;
	}
	pclose(p);
}

#endif /* HF_TEST_PS_UTIL_H */
