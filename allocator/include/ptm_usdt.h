/* SPDX-License-Identifier: MIT */
/*
 * ptm_usdt.h - libptm's USDT probes (provider "libptm"), for tracers such as
 * bpftrace (usdt:/path/libptm.so:libptm:NAME) and heapfragd.
 *
 * Every probe sits on a slow path (a system call, a lock wait, a new arena)
 * and none on the allocation fast path.  Arguments, in order:
 *
 *   heap_grow(arena, bytes, system_bytes)
 *       the arena got bytes more from the system (brk, a heap grown with
 *       mprotect, a new heap, or mapped fallback space); system_bytes is
 *       the arena's total afterwards.
 *   heap_shrink(arena, bytes, system_bytes)
 *       the arena gave bytes back (the break lowered, a heap shrunk or
 *       unmapped); system_bytes is the total afterwards.
 *   arena_create(arena, index)
 *       a new arena, and its index in the statistics (0 is the main arena).
 *   arena_reuse(arena, index)
 *       a thread took an existing arena: one freed by an exited thread, or
 *       a shared one once the arena limit is reached.
 *   lock_contended_begin(arena)
 *       a thread found the arena's lock taken and starts to wait.
 *   lock_contended_end(arena, wait_ns)
 *       ... and now holds it, after wait_ns nanoseconds.
 *   trim(arena, pad, result)
 *       malloc_trim(pad) visited the arena; result is 1 if it released
 *       memory, as malloc_trim returns.
 *   page_release(arena, addr, bytes)
 *       bytes of whole pages inside a free chunk, from addr, given back to
 *       the kernel (the release threshold, or malloc_trim).
 *   sample_alloc(ptr, size, weight, caller)
 *       the sampled heap profile (MALLOC_SAMPLE_INTERVAL_): an allocation
 *       of size bytes at ptr was sampled and stands for weight bytes;
 *       caller is the return address of the malloc or calloc call that made
 *       it (inside libptm when libptm called malloc itself: realloc(NULL, n),
 *       the aligned allocations).
 *   sample_free(ptr)
 *       a sampled allocation was freed.
 *
 * Addresses are user pointers or arena addresses in the traced process;
 * sizes are in bytes; all arguments are 64-bit.
 *
 * Cost when no tracer is attached: each probe is one nop in the code and a
 * note in the ELF file (.note.stapsdt); its arguments are values the code
 * has in registers or on the stack already.  libptm declares no SDT
 * semaphores: a semaphore only pays off when computing a probe's arguments
 * is expensive, and costs a memory load and a branch at every site, and a
 * tracer that writes into the process to enable it.
 */
#ifndef PTM_USDT_H
#define PTM_USDT_H

#define PTM_USDT_PROVIDER "libptm"

#endif /* PTM_USDT_H */
