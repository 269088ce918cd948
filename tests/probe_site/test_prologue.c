// SPDX-License-Identifier: MIT
/*
 * Entry-probe placement: synthetic prologues pin each rule down (emulated
 * instructions, argument registers written, straight-line code only), then
 * the real libc.so.6: free's probe goes on the je at free+3, malloc's on its
 * first push at malloc+0.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "check.h"
#include "probe_site.h"
#include "prologue.h"
#include "ps_util.h"

#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"
#define BASE 0x1000

struct pcase {
	const char *what;
	uint8_t code[40];
	size_t len;
	unsigned args;
	uint64_t want_delta;
	bool want_emulated;
};

static void test_synthetic(void)
{
	static const struct pcase cases[] = {
		{"test rdi,rdi; je: the je",
		 {0x48, 0x85, 0xff, 0x0f, 0x84, 0x10, 0, 0, 0},
		 9,
		 HF_ARG_RDI,
		 3,
		 true},
		{"push r12 at once", {0x41, 0x54, 0x55}, 3, HF_ARG_RDI, 0, true},
		{"mov rdi,rsi before a push: stays",
		 {0x48, 0x89, 0xf7, 0x55},
		 4,
		 HF_ARG_RDI,
		 0,
		 false},
		{"mov rdi,rsi before a push, probe reads rsi only: the push",
		 {0x48, 0x89, 0xf7, 0x55},
		 4,
		 HF_ARG_RSI,
		 3,
		 true},
		{"xor edi,edi (a 32-bit write) before a push: stays",
		 {0x31, 0xff, 0x55},
		 3,
		 HF_ARG_RDI,
		 0,
		 false},
		{"mov dl,1 before a push, probe reads rdx: stays",
		 {0xb2, 0x01, 0x55},
		 3,
		 HF_ARG_RDX,
		 0,
		 false},
		{"push then jcc: the push", {0x55, 0x74, 0x05}, 3, HF_ARG_RDI, 0, true},
		{"sub rsp,8; je: the je",
		 {0x48, 0x83, 0xec, 0x08, 0x74, 0x02},
		 6,
		 HF_ARG_RDI,
		 4,
		 true},
		{"mov rax,[rdi] reads only; jne",
		 {0x48, 0x8b, 0x07, 0x75, 0x02},
		 5,
		 HF_ARG_RDI,
		 3,
		 true},
		{"mov [rdi],rax writes memory: stays",
		 {0x48, 0x89, 0x07, 0x75, 0x02},
		 5,
		 HF_ARG_RDI,
		 0,
		 false},
		{"mov [rsp+8],rdi writes the stack only",
		 {0x48, 0x89, 0x7c, 0x24, 0x08, 0x53},
		 6,
		 HF_ARG_RDI,
		 5,
		 true},
		{"jmp rax ends straight-line code", {0xff, 0xe0, 0x55}, 3, HF_ARG_RDI, 0, false},
		{"ret ends straight-line code", {0xc3, 0x55}, 2, HF_ARG_RDI, 0, false},
		{"cmpb $0,[rip]; je",
		 {0x80, 0x3d, 1, 2, 3, 4, 0, 0x74, 0x07},
		 9,
		 HF_ARG_RDI | HF_ARG_RSI,
		 7,
		 true},
		{"call rel32", {0xe8, 0, 0, 0, 0}, 5, HF_ARG_RDI, 0, true},
		{"nopl 0(rax,rax,1) is the kernel's nop5",
		 {0x0f, 0x1f, 0x44, 0, 0},
		 5,
		 HF_ARG_RDI,
		 0,
		 true},
		{"endbr64 then push: the push",
		 {0xf3, 0x0f, 0x1e, 0xfa, 0x55},
		 5,
		 HF_ARG_RDI,
		 4,
		 true},
		{"cs nopw (bad prefix) then push: the push",
		 {0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, 0x53},
		 11,
		 HF_ARG_RDI,
		 10,
		 true},
		{"glibc reallocarray: mul writes rdx, stays",
		 {0x48, 0x89, 0xf0, 0x48, 0xf7, 0xe2, 0x48, 0x89, 0xc6, 0x70, 0x05},
		 11,
		 HF_ARG_RDI | HF_ARG_RSI | HF_ARG_RDX,
		 0,
		 false},
		{"glibc reallocarray, reading rdi only: the jo",
		 {0x48, 0x89, 0xf0, 0x48, 0xf7, 0xe2, 0x48, 0x89, 0xc6, 0x70, 0x05},
		 11,
		 HF_ARG_RDI,
		 9,
		 true},
		{"nine movs, then a push: beyond the window",
		 {0x48, 0x89, 0xc0, 0x48, 0x89, 0xc0, 0x48, 0x89, 0xc0, 0x48,
		  0x89, 0xc0, 0x48, 0x89, 0xc0, 0x48, 0x89, 0xc0, 0x48, 0x89,
		  0xc0, 0x48, 0x89, 0xc0, 0x48, 0x89, 0xc0, 0x55},
		 28,
		 HF_ARG_RDI,
		 0,
		 false},
		{"a truncated instruction ends the search",
		 {0x48, 0x89, 0xc0, 0x0f, 0x84, 0x10},
		 6,
		 HF_ARG_RDI,
		 0,
		 false},
	};
	struct hf_prologue p;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pcase *c = &cases[i];
		int err = hf_prologue_choose(c->code, c->len, BASE, c->args, &p);

		CHECK_MSG(err == 0, "%s: err %d", c->what, err);
		CHECK_MSG(p.entry_delta == c->want_delta && p.emulated == c->want_emulated,
			  "%s: chose +%" PRIu64 " (%s, %s), want +%" PRIu64 " %s", c->what,
			  p.entry_delta, p.insn, p.emulated ? "emulated" : "single-stepped",
			  c->want_delta, c->want_emulated ? "emulated" : "single-stepped");
	}

	/* The chosen instruction is named for the logs, and rsp movement is reported. */
	CHECK(hf_prologue_choose((const uint8_t *)"\x48\x85\xff\x0f\x84\x10\0\0\0", 9, BASE,
				 HF_ARG_RDI, &p) == 0);
	CHECK_STR_EQ(p.insn, "je 0x1019");
	CHECK(p.stack_unchanged);
	CHECK(hf_prologue_choose((const uint8_t *)"\x48\x83\xec\x08\x74\x02", 6, BASE, HF_ARG_RDI,
				 &p) == 0);
	CHECK(!p.stack_unchanged);
	CHECK(hf_prologue_choose((const uint8_t *)"\x55\x74\x02", 3, BASE, HF_ARG_RDI, &p) == 0);
	CHECK(p.stack_unchanged); /* the push is the site: it has not run yet */

	/* Nothing decodable: an error, not a guess. */
	CHECK(hf_prologue_choose((const uint8_t *)"\x06", 1, BASE, HF_ARG_RDI, &p) == -EINVAL);
	CHECK(hf_prologue_choose((const uint8_t *)"", 0, BASE, HF_ARG_RDI, &p) == -EINVAL);
}

static void test_kernel_emulation_rules(void)
{
	/* What Linux 6.18's branch_setup_xol_ops and push_setup_xol_ops accept. */
	CHECK(hf_insn_emulated((const uint8_t *)"\x90", 1));
	CHECK(hf_insn_emulated((const uint8_t *)"\x66\x90", 2));
	CHECK(hf_insn_emulated((const uint8_t *)"\x0f\x1f\x00", 3));
	CHECK(hf_insn_emulated((const uint8_t *)"\x66\x0f\x1f\x44\x00\x00", 6));
	CHECK(hf_insn_emulated((const uint8_t *)"\x0f\x1f\x84\x00\x00\x00\x00\x00", 8));
	CHECK(hf_insn_emulated((const uint8_t *)"\x55", 1));
	CHECK(hf_insn_emulated((const uint8_t *)"\x41\x57", 2));
	CHECK(hf_insn_emulated((const uint8_t *)"\xeb\x05", 2));
	CHECK(hf_insn_emulated((const uint8_t *)"\xe9\x00\x01\x00\x00", 5));
	CHECK(hf_insn_emulated((const uint8_t *)"\x7f\x05", 2));
	CHECK(hf_insn_emulated((const uint8_t *)"\x0f\x8f\x00\x01\x00\x00", 6));
	/* ... and what it single-steps or refuses. */
	CHECK(!hf_insn_emulated((const uint8_t *)"\x48\x85\xff", 3));     /* test */
	CHECK(!hf_insn_emulated((const uint8_t *)"\x48\x50", 2));         /* REX.W push */
	CHECK(!hf_insn_emulated((const uint8_t *)"\x66\x50", 2));         /* push ax */
	CHECK(!hf_insn_emulated((const uint8_t *)"\xff\x35\0\0\0\0", 6)); /* push [rip] */
	CHECK(!hf_insn_emulated((const uint8_t *)"\x66\xe9\x00\x01", 4)); /* jmpw */
	CHECK(!hf_insn_emulated((const uint8_t *)"\x41\x90", 2));         /* xchg r8d,eax */
	CHECK(!hf_insn_emulated((const uint8_t *)"\x3e\xff\xe0", 3));     /* notrack jmp */
	CHECK(!hf_insn_emulated((const uint8_t *)"\x2e\x0f\x1f\x84\0\0\0\0\0", 9)); /* nop9 */
	CHECK(!hf_insn_emulated((const uint8_t *)"\xf3\x0f\x1e\xfa", 4));           /* endbr64 */
	CHECK(!hf_insn_emulated((const uint8_t *)"\x0f\x1f\x44\x00\x01", 5));       /* not nop5 */
}

/* The bytes at a file offset, read without the library. */
static void read_at(uint64_t off, uint8_t *buf, size_t len)
{
	int fd = open(LIBC, O_RDONLY);

	memset(buf, 0, len);
	if (fd >= 0) {
		if (pread(fd, buf, len, (off_t)off) != (ssize_t)len)
			memset(buf, 0, len);
		close(fd);
	}
}

static void test_real_libc(void)
{
	struct hf_alloc_target t;
	char why[256];
	uint8_t b[2];
	uint64_t free_off = ps_readelf_offset(LIBC, ps_nm_address(LIBC, "free", true));
	uint64_t malloc_off = ps_readelf_offset(LIBC, ps_nm_address(LIBC, "malloc", true));

	CHECK(hf_alloc_target_from_file(LIBC, &t, why, sizeof(why)) == 0);
	CHECK(t.kind == HF_ALLOC_GLIBC);
	CHECK(!t.static_in_exe);

	CHECK_EQ_U64(t.ops[HF_OP_FREE].sym_offset, free_off);
	CHECK_EQ_U64(t.ops[HF_OP_FREE].entry_offset, free_off + 3);
	CHECK(t.ops[HF_OP_FREE].entry_emulated);
	CHECK(!strncmp(t.ops[HF_OP_FREE].entry_insn, "free+3: je ", 11));
	read_at(t.ops[HF_OP_FREE].entry_offset, b, 2);
	CHECK(b[0] == 0x0f && b[1] == 0x84); /* je rel32 in the file itself */

	CHECK_EQ_U64(t.ops[HF_OP_MALLOC].sym_offset, malloc_off);
	CHECK_EQ_U64(t.ops[HF_OP_MALLOC].entry_offset, malloc_off);
	CHECK(t.ops[HF_OP_MALLOC].entry_emulated);
	CHECK_STR_EQ(t.ops[HF_OP_MALLOC].entry_insn, "malloc+0: push r12");
	read_at(malloc_off, b, 2);
	CHECK(b[0] == 0x41 && b[1] == 0x54);

	/* reallocarray's mul clobbers rdx before any emulated instruction. */
	CHECK(t.ops[HF_OP_REALLOCARRAY].present);
	CHECK_EQ_U64(t.ops[HF_OP_REALLOCARRAY].entry_offset, t.ops[HF_OP_REALLOCARRAY].sym_offset);
	CHECK(!t.ops[HF_OP_REALLOCARRAY].entry_emulated);

	/* cfree is free under another name; aligned_alloc is memalign's. */
	CHECK(t.ops[HF_OP_CFREE].present);
	CHECK(t.ops[HF_OP_CFREE].alias_of == HF_OP_FREE);
	CHECK(t.ops[HF_OP_MEMALIGN].alias_of == HF_OP_ALIGNED_ALLOC);
	CHECK(t.ops[HF_OP_MALLOC].alias_of == -1);

	/* Every present op has its offsets inside the file and an emulated or fallback site. */
	for (int op = 0; op < HF_OP_COUNT; op++) {
		const struct hf_probe_site *s = &t.ops[op];

		CHECK_MSG(s->present, "%s present in glibc", hf_op_symbol((enum hf_op)op));
		CHECK(s->entry_offset >= s->sym_offset && s->entry_offset < s->sym_offset + 64);
		CHECK(s->ret_offset == s->sym_offset || s->ret_offset == s->entry_offset);
	}
	CHECK_STR_EQ(hf_op_symbol(HF_OP_POSIX_MEMALIGN), "posix_memalign");
	CHECK_STR_EQ(hf_op_symbol(HF_OP_COUNT), "unknown");
}

int main(void)
{
	test_synthetic();
	test_kernel_emulation_rules();
	test_real_libc();
	return hf_test_done();
}
