// SPDX-License-Identifier: MIT
/*
 * arena_map_unit: the pure decoders of arena_map.h on crafted bytes laid out
 * like glibc 2.36's structures, and the /proc/PID/maps parser on crafted
 * text.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "arena_map.h"
#include "check.h"

#define ADDR 0x7f0000001c60ull

static void put64(unsigned char *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

/* A fresh arena: every bin empty, pointing at itself; next at itself. */
static void fresh_arena(unsigned char *buf, uint64_t addr)
{
	memset(buf, 0, HF_GLIBC_MSTATE_SIZE);
	for (unsigned int i = 0; i < HF_GLIBC_NBINS - 1; i++) {
		put64(buf, 112 + 16 * i, addr + 112 + 16 * i - 16);
		put64(buf, 112 + 16 * i + 8, addr + 112 + 16 * i - 16);
	}
	put64(buf, 2160, addr);   /* next */
	put64(buf, 2176, 1);      /* attached_threads */
	put64(buf, 2184, 135168); /* system_mem */
	put64(buf, 2192, 135168); /* max_system_mem */
}

static void test_mstate(void)
{
	static unsigned char buf[HF_GLIBC_MSTATE_SIZE];
	struct hf_mstate ms;

	fresh_arena(buf, ADDR);
	CHECK(hf_mstate_decode(buf, sizeof(buf), ADDR, &ms));
	CHECK_EQ_U64(ms.next, ADDR);
	CHECK_EQ_U64(ms.attached_threads, 1);
	CHECK_EQ_U64(ms.system_mem, 135168);

	/* The same bytes seen at another address are not self-referencing. */
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR + 16, NULL));
	/* Too short, misaligned. */
	CHECK(!hf_mstate_decode(buf, sizeof(buf) - 1, ADDR, NULL));
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR + 4, NULL));

	/* A bin holding chunks: two 16-aligned heap pointers are fine. */
	put64(buf, 112 + 16 * 5, 0x55550000a010ull);
	put64(buf, 112 + 16 * 5 + 8, 0x55550000b020ull);
	CHECK(hf_mstate_decode(buf, sizeof(buf), ADDR, NULL));
	/* Half a bin pointing at itself is corrupt, not an arena. */
	put64(buf, 112 + 16 * 5 + 8, ADDR + 112 + 16 * 5 - 16);
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR, NULL));
	/* A misaligned chunk pointer is not a chunk. */
	put64(buf, 112 + 16 * 5 + 8, 0x55550000b028ull);
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR, NULL));

	fresh_arena(buf, ADDR);
	buf[0] = 3; /* a lock word is 0, 1 or 2 */
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR, NULL));
	fresh_arena(buf, ADDR);
	buf[4] = 0x10; /* no such flag */
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR, NULL));
	fresh_arena(buf, ADDR);
	put64(buf, 2192, 4096); /* max_system_mem below system_mem */
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR, NULL));

	/* Fewer than HF_ARENA_MIN_EMPTY_BINS empty bins: too little evidence. */
	fresh_arena(buf, ADDR);
	for (unsigned int i = 0; i < HF_GLIBC_NBINS - 1 - (HF_ARENA_MIN_EMPTY_BINS - 1); i++) {
		put64(buf, 112 + 16 * i, 0x555500010000ull + 32 * i);
		put64(buf, 112 + 16 * i + 8, 0x555500010000ull + 32 * i);
	}
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR, NULL));

	/* All zero, as before the first malloc. */
	memset(buf, 0, sizeof(buf));
	CHECK(!hf_mstate_decode(buf, sizeof(buf), ADDR, NULL));
}

static void test_heap_info(void)
{
	unsigned char buf[HF_GLIBC_HEAP_INFO_SIZE] = {0};
	const uint64_t heap = 0x7f3c54000000ull;
	struct hf_heap_info h;

	put64(buf, 0, heap + 48);
	put64(buf, 16, 135168);
	put64(buf, 24, 135168);
	CHECK(hf_heap_info_decode(buf, sizeof(buf), heap, &h));
	CHECK_EQ_U64(h.ar_ptr, heap + 48);
	CHECK_EQ_U64(h.mprotect_size, 135168);
	/* Not 64 MiB-aligned. */
	CHECK(!hf_heap_info_decode(buf, sizeof(buf), heap + 4096, NULL));
	/* A first heap (prev NULL) must hold its own arena. */
	put64(buf, 0, 0x7f3c58000030ull);
	CHECK(!hf_heap_info_decode(buf, sizeof(buf), heap, NULL));
	/* A later heap points back at an aligned heap and at its arena anywhere. */
	put64(buf, 8, 0x7f3c58000000ull);
	CHECK(hf_heap_info_decode(buf, sizeof(buf), heap, &h));
	/* Size above the committed part, or above 64 MiB, is impossible. */
	put64(buf, 16, 200000);
	CHECK(!hf_heap_info_decode(buf, sizeof(buf), heap, NULL));
	put64(buf, 16, 135168);
	put64(buf, 24, (64ull << 20) + 4096);
	CHECK(!hf_heap_info_decode(buf, sizeof(buf), heap, NULL));
}

static void test_debug_path(void)
{
	char buf[256];

	CHECK(hf_debug_file_path("/usr/lib/debug/.build-id",
				 "93ac61ec5a8eb1396f9fbd350e3169a558528a40", buf,
				 sizeof(buf)) == 0);
	CHECK_STR_EQ(buf,
		     "/usr/lib/debug/.build-id/93/ac61ec5a8eb1396f9fbd350e3169a558528a40.debug");
	CHECK(hf_debug_file_path("/d", "93AC", buf, sizeof(buf)) < 0);
	CHECK(hf_debug_file_path("/d", "93a", buf, sizeof(buf)) < 0);
	CHECK(hf_debug_file_path("/d", "93ac61", buf, 8) < 0);
}

static const char maps_text[] =
	"55d0c8a00000-55d0c8a01000 r--p 00000000 fe:01 1234 /usr/bin/prog\n"
	"55d0c9a00000-55d0c9a21000 rw-p 00000000 00:00 0 [heap]\n"
	"7f3c54000000-7f3c54021000 rw-p 00000000 00:00 0 \n"
	"7f3c54021000-7f3c58000000 ---p 00000000 00:00 0 \n"
	"7f3c5c000000-7f3c5c026000 r--p 00000000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f3c5c026000-7f3c5c17c000 r-xp 00026000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f3c5c17c000-7f3c5c1d2000 r--p 0017c000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f3c5c1d2000-7f3c5c1d6000 r--p 001d1000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f3c5c1d6000-7f3c5c1d8000 rw-p 001d5000 fe:01 5678 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f3c5c1d8000-7f3c5c1e5000 rw-p 00000000 00:00 0 \n"
	"7f3c5c1e5000-7f3c5c1e9000 rw-p 00000000 00:00 0 \n"
	"7f3c5c200000-7f3c5c201000 r--p 00000000 fe:01 9999 /usr/lib/x86_64-linux-gnu/libm.so.6\n";

static void test_libc_map(void)
{
	struct hf_libc_map libc;
	FILE *f = fmemopen((void *)maps_text, sizeof(maps_text) - 1, "r");

	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(hf_libc_map_parse(f, 4242, &libc) == 0);
	fclose(f);
	CHECK_STR_EQ(libc.target_path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
	CHECK_STR_EQ(libc.path, "/proc/4242/root/usr/lib/x86_64-linux-gnu/libc.so.6");
	CHECK_EQ_U64(libc.bias, 0x7f3c5c000000ull);
	/* The data mapping plus the one anonymous .bss mapping right after it, no more. */
	CHECK_EQ_U64(libc.data_start, 0x7f3c5c1d6000ull);
	CHECK_EQ_U64(libc.data_end, 0x7f3c5c1e5000ull);

	f = fmemopen((void *)maps_text, 120, "r"); /* the program and [heap] only */
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(hf_libc_map_parse(f, 1, &libc) == -ENOENT);
	fclose(f);
}

int main(void)
{
	test_mstate();
	test_heap_info();
	test_debug_path();
	test_libc_map();
	return hf_test_done();
}
