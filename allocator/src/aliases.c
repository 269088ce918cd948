// SPDX-License-Identifier: MIT
/*
 * aliases.c - the standard names.  Linked into libptm.so and libptm.a (not
 * into ptm_core, whose users keep their own malloc beside ours), these make
 * libptm the process's malloc: the C and POSIX functions, glibc's
 * extensions, cfree, and the __libc_* names that some programs and
 * interposers call directly.
 *
 * Each is a one-instruction tail jump to the hidden ptm_ implementation.
 */
#include <stddef.h>
#include <stdio.h>
#include <malloc.h>

#include "ptm.h"
#include "internal.h"

/*
 * Hidden second names of the public functions, so these calls bind inside
 * the library instead of going through the PLT.
 */
extern __typeof__(ptm_malloc) ptm_i_api_malloc PTM_HIDDEN;
extern __typeof__(ptm_free) ptm_i_api_free PTM_HIDDEN;
extern __typeof__(ptm_calloc) ptm_i_api_calloc PTM_HIDDEN;
extern __typeof__(ptm_realloc) ptm_i_api_realloc PTM_HIDDEN;
extern __typeof__(ptm_reallocarray) ptm_i_api_reallocarray PTM_HIDDEN;
extern __typeof__(ptm_memalign) ptm_i_api_memalign PTM_HIDDEN;
extern __typeof__(ptm_posix_memalign) ptm_i_api_posix_memalign PTM_HIDDEN;
extern __typeof__(ptm_aligned_alloc) ptm_i_api_aligned_alloc PTM_HIDDEN;
extern __typeof__(ptm_valloc) ptm_i_api_valloc PTM_HIDDEN;
extern __typeof__(ptm_pvalloc) ptm_i_api_pvalloc PTM_HIDDEN;
extern __typeof__(ptm_malloc_usable_size) ptm_i_api_malloc_usable_size PTM_HIDDEN;
extern __typeof__(ptm_mallopt) ptm_i_api_mallopt PTM_HIDDEN;
extern __typeof__(ptm_mallinfo) ptm_i_api_mallinfo PTM_HIDDEN;
extern __typeof__(ptm_mallinfo2) ptm_i_api_mallinfo2 PTM_HIDDEN;
extern __typeof__(ptm_malloc_stats) ptm_i_api_malloc_stats PTM_HIDDEN;
extern __typeof__(ptm_malloc_info) ptm_i_api_malloc_info PTM_HIDDEN;
extern __typeof__(ptm_malloc_trim) ptm_i_api_malloc_trim PTM_HIDDEN;

PTM_API void *malloc(size_t size)
{
	return ptm_i_api_malloc(size);
}

PTM_API void free(void *ptr)
{
	ptm_i_api_free(ptr);
}

PTM_API void cfree(void *ptr)
{
	ptm_i_api_free(ptr);
}

PTM_API void *calloc(size_t nmemb, size_t size)
{
	return ptm_i_api_calloc(nmemb, size);
}

PTM_API void *realloc(void *ptr, size_t size)
{
	return ptm_i_api_realloc(ptr, size);
}

PTM_API void *reallocarray(void *ptr, size_t nmemb, size_t size)
{
	return ptm_i_api_reallocarray(ptr, nmemb, size);
}

PTM_API void *memalign(size_t alignment, size_t size)
{
	return ptm_i_api_memalign(alignment, size);
}

PTM_API int posix_memalign(void **memptr, size_t alignment, size_t size)
{
	return ptm_i_api_posix_memalign(memptr, alignment, size);
}

PTM_API void *aligned_alloc(size_t alignment, size_t size)
{
	return ptm_i_api_aligned_alloc(alignment, size);
}

PTM_API void *valloc(size_t size)
{
	return ptm_i_api_valloc(size);
}

PTM_API void *pvalloc(size_t size)
{
	return ptm_i_api_pvalloc(size);
}

PTM_API size_t malloc_usable_size(void *ptr)
{
	return ptm_i_api_malloc_usable_size(ptr);
}

PTM_API int mallopt(int param, int value)
{
	return ptm_i_api_mallopt(param, value);
}

PTM_API struct mallinfo mallinfo(void)
{
	return ptm_i_api_mallinfo();
}

PTM_API struct mallinfo2 mallinfo2(void)
{
	return ptm_i_api_mallinfo2();
}

PTM_API void malloc_stats(void)
{
	ptm_i_api_malloc_stats();
}

PTM_API int malloc_info(int options, FILE *fp)
{
	return ptm_i_api_malloc_info(options, fp);
}

PTM_API int malloc_trim(size_t pad)
{
	return ptm_i_api_malloc_trim(pad);
}

/* glibc's internal names, which some programs and preloaded tools call. */
PTM_API void *__libc_malloc(size_t size)
{
	return ptm_i_api_malloc(size);
}

PTM_API void __libc_free(void *ptr)
{
	ptm_i_api_free(ptr);
}

PTM_API void *__libc_calloc(size_t nmemb, size_t size)
{
	return ptm_i_api_calloc(nmemb, size);
}

PTM_API void *__libc_realloc(void *ptr, size_t size)
{
	return ptm_i_api_realloc(ptr, size);
}

PTM_API void *__libc_memalign(size_t alignment, size_t size)
{
	return ptm_i_api_memalign(alignment, size);
}

PTM_API void *__libc_valloc(size_t size)
{
	return ptm_i_api_valloc(size);
}

PTM_API void *__libc_pvalloc(size_t size)
{
	return ptm_i_api_pvalloc(size);
}

PTM_API struct mallinfo __libc_mallinfo(void)
{
	return ptm_i_api_mallinfo();
}

PTM_API int __libc_mallopt(int param, int value)
{
	return ptm_i_api_mallopt(param, value);
}
