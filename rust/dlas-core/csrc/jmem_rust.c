/*
 * libjpeg's system-dependent memory functions (the interface of libjpeg-turbo's
 * jmemsys.h, which libjpeg documents as the part a port replaces), for the
 * libjpeg-turbo compiled into dlas_fast.
 *
 * libjpeg-turbo's own version (jmemnobs.c) takes every pool from malloc. A progressive
 * JPEG's decoder keeps the coefficients of the whole image, tens of megabytes per
 * photo; glibc maps blocks that large afresh and unmaps them when freed, so every
 * progressive photo faults its buffers in page by page and the kernel zeroes each
 * page first. Here the pools come from the Rust side (dlas_jpeg_alloc/free), that is
 * from the allocator the program chose, which reuses freed blocks.
 *
 * Everything else is as in jmemnobs.c: no backing store, and the limit a caller sets
 * (max_memory_to_use: TurboJPEG's TJPARAM_MAXMEMORY, the JPEGMEM environment
 * variable) is enforced the same way.
 *
 * Linked ahead of libjpeg-turbo's static library: the linker then never takes its
 * jmemnobs.o (were it taken too, the duplicate definitions would fail the link).
 */

#include <stddef.h>
#include <stdio.h>

#include "jpeglib.h"
#include "jerror.h"

#define LOCAL_TO_LIB __attribute__((visibility("hidden")))

/* The Rust side: blocks aligned as malloc aligns them. */
extern void *dlas_jpeg_alloc(size_t size);
extern void dlas_jpeg_free(void *ptr, size_t size);

struct backing_store_struct;

LOCAL_TO_LIB void *jpeg_get_small(j_common_ptr cinfo, size_t sizeofobject)
{
  (void)cinfo;
  return dlas_jpeg_alloc(sizeofobject);
}

LOCAL_TO_LIB void jpeg_free_small(j_common_ptr cinfo, void *object,
                                  size_t sizeofobject)
{
  (void)cinfo;
  dlas_jpeg_free(object, sizeofobject);
}

LOCAL_TO_LIB void *jpeg_get_large(j_common_ptr cinfo, size_t sizeofobject)
{
  (void)cinfo;
  return dlas_jpeg_alloc(sizeofobject);
}

LOCAL_TO_LIB void jpeg_free_large(j_common_ptr cinfo, void *object,
                                  size_t sizeofobject)
{
  (void)cinfo;
  dlas_jpeg_free(object, sizeofobject);
}

LOCAL_TO_LIB size_t jpeg_mem_available(j_common_ptr cinfo,
                                       size_t min_bytes_needed,
                                       size_t max_bytes_needed,
                                       size_t already_allocated)
{
  long limit = cinfo->mem->max_memory_to_use;

  (void)min_bytes_needed;
  if (limit == 0)
    return max_bytes_needed;
  return (size_t)limit > already_allocated ? (size_t)limit - already_allocated : 0;
}

LOCAL_TO_LIB void jpeg_open_backing_store(j_common_ptr cinfo,
                                          struct backing_store_struct *info,
                                          long total_bytes_needed)
{
  (void)info;
  (void)total_bytes_needed;
  ERREXIT(cinfo, JERR_NO_BACKING_STORE);
}

LOCAL_TO_LIB long jpeg_mem_init(j_common_ptr cinfo)
{
  (void)cinfo;
  return 0;
}

LOCAL_TO_LIB void jpeg_mem_term(j_common_ptr cinfo)
{
  (void)cinfo;
}

/* Called from Rust, so that this object is always part of the link. */
int dlas_jpeg_memory_linked(void)
{
  return 1;
}
