// SPDX-License-Identifier: MIT
/*
 * return_address.c - return_address.h: decodes, backwards from an address,
 * the call instructions that can end right before it.  Only their lengths
 * matter, so this is a few lines of x86-64 encoding rather than a
 * disassembler run per frame.
 */
#include "return_address.h"

/* The length of ff /2 (call r/m64) from its modrm byte on, or 0 if it is not one. */
static size_t indirect_call_len(const uint8_t *m, size_t avail)
{
	uint8_t mod, rm;
	size_t len = 1;

	if (avail < 1 || ((m[0] >> 3) & 7) != 2)
		return 0;
	mod = m[0] >> 6;
	rm = m[0] & 7;
	if (mod == 3)
		return len;
	if (rm == 4) {
		if (avail < 2)
			return 0;
		len++;
		if (mod == 0 && (m[1] & 7) == 5)
			len += 4;
	} else if (mod == 0 && rm == 5) {
		len += 4; /* rip-relative */
	}
	if (mod == 1)
		len += 1;
	else if (mod == 2)
		len += 4;
	return len;
}

bool hf_follows_call(const uint8_t *code, size_t len)
{
	if (len >= 5 && code[len - 5] == 0xe8)
		return true;
	for (size_t k = 2; k <= HF_MAX_CALL_LEN && k <= len; k++) {
		const uint8_t *at = code + len - k;
		size_t pre = (at[0] & 0xf0) == 0x40 ? 1 : 0;

		if (pre + 1 < k && at[pre] == 0xff &&
		    indirect_call_len(at + pre + 1, k - pre - 1) == k - pre - 1)
			return true;
	}
	return false;
}

