/* SPDX-License-Identifier: MIT */
/*
 * return_address.h - whether an address found on a stack can be a return
 * address: the bytes before it end with a call instruction.  The allocation
 * sites' frame-pointer stacks (sites.c) keep a frame only if it can.
 */
#ifndef HF_RETURN_ADDRESS_H
#define HF_RETURN_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest call instruction: REX + ff + modrm + SIB + disp32. */
#define HF_MAX_CALL_LEN 8

/*
 * True when code[0..len), the len bytes before an address, end with a call:
 * call rel32 (e8), or an indirect call (ff /2) in any addressing mode, with
 * or without a REX prefix.
 */
bool hf_follows_call(const uint8_t *code, size_t len);

#endif /* HF_RETURN_ADDRESS_H */
