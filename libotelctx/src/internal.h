/* Internal declarations shared by the libotelctx sources. Not installed. */
#ifndef OTELCTX_INTERNAL_H
#define OTELCTX_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "otelctx.h"

#define OTELCTX_HIDDEN __attribute__((visibility("hidden")))

/* The TLS slot (OTEP 4947). Defined in record.c. Every access in this
 * library goes through otelctx__slot_load/store, compiled with
 * -fPIC -mtls-dialect=gnu2, so the slot is reached through a TLSDESC. */
extern __thread otelctx_record *otel_thread_ctx_v1;

static inline otelctx_record *otelctx__slot_load(void) {
  return __atomic_load_n(&otel_thread_ctx_v1, __ATOMIC_RELAXED);
}

/* A compiler fence orders all earlier record writes before the one 8-byte
 * pointer store (a reader interrupting the thread sees a complete record). */
static inline void otelctx__slot_store(otelctx_record *rec) {
  atomic_signal_fence(memory_order_seq_cst);
  __atomic_store_n(&otel_thread_ctx_v1, rec, __ATOMIC_RELAXED);
  atomic_signal_fence(memory_order_seq_cst);
}

/* Records are allocated inside a box: 64 bytes of bookkeeping, then the
 * 640-byte record, so records start on a 64-byte (cache line) boundary. */
#define OTELCTX_BOX_MAGIC 0x5854434fu /* "OCTX" little endian */
#define OTELCTX_BOX_INHERITED 1u        /* owned by the thread-exit cleanup */

struct otelctx_box {
  uint32_t magic;
  uint32_t flags;
  unsigned char pad[56];
  otelctx_record rec;
};

_Static_assert(offsetof(struct otelctx_box, rec) == 64, "record at +64");
_Static_assert(sizeof(struct otelctx_box) % 64 == 0, "box is whole cache lines");

static inline struct otelctx_box *otelctx__box(const otelctx_record *rec) {
  return (struct otelctx_box *)((char *)rec - offsetof(struct otelctx_box, rec));
}

/* UTF-8 helpers (record.c). */
OTELCTX_HIDDEN int otelctx__utf8_valid(const unsigned char *s, size_t len);

/* The pthread_create to call for real: libc's. In the shared library it is
 * found with dlsym(RTLD_NEXT) (preload.c); in the static archive it is
 * pthread_create itself (real_create_static.c). NULL if it cannot be found. */
typedef int (*otelctx__create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
OTELCTX_HIDDEN otelctx__create_fn otelctx__real_create(void);

/* Create a thread that starts with a copy of `cur` attached (inherit.c). */
OTELCTX_HIDDEN int otelctx__create_inheriting(otelctx__create_fn real, pthread_t *thread,
                                              const pthread_attr_t *attr,
                                              void *(*start_routine)(void *), void *arg,
                                              const otelctx_record *cur);

/* One line on stderr (write(2), no stdio). */
OTELCTX_HIDDEN void otelctx__warn(const char *msg);

/* W3C Baggage-style OTEL_RESOURCE_ATTRIBUTES parser (envconf.c). Returns the
 * number of pairs (keys/values malloc'd into *out, caller frees with
 * otelctx__free_kvs), or -1 on malformed input. */
OTELCTX_HIDDEN int otelctx__parse_resource_attributes(const char *s, otelctx_kv **out);
OTELCTX_HIDDEN void otelctx__free_kvs(otelctx_kv *kvs, size_t n);

#endif
