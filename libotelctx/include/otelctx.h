/*
 * libotelctx: publish OpenTelemetry context for readers outside the process.
 *
 *   - Thread context (OTEP 4947): every thread has one ELF TLS slot,
 *     `otel_thread_ctx_v1`, holding a pointer to the Thread-Local Context
 *     Record that is active on that thread (NULL = none). External readers
 *     (the OTel eBPF profiler, ptrace tools) find the slot through the
 *     library's dynamic symbol table and TLSDESC relocation and read the
 *     record while the thread is stopped.
 *   - Process context (OTEP 4719): one small mapping named "OTEL_CTX" whose
 *     32-byte header points to a protobuf ProcessContext (the Resource plus
 *     extra attributes, among them the thread-context key map).
 *
 * Linux x86-64 / glibc only. Link with -lotelctx, or load the shared library
 * with LD_PRELOAD: then pthread_create is wrapped so a new thread starts with
 * a copy of its creator's context (see README.md).
 *
 * Conventions: functions returning int return 0 on success and -1 with errno
 * set on failure. Functions returning a pointer return NULL on failure with
 * errno set (EINVAL for bad input, ENOMEM when out of memory).
 *
 * Thread-safety of the thread-context calls: a thread only ever reads and
 * writes its own TLS slot and the record attached to it. A record must be
 * attached to at most one thread at a time, and only that thread may change
 * it. otelctx_attach, otelctx_detach, otelctx_current and otelctx_update (when
 * a record is already attached) do not allocate, take no lock and are
 * async-signal-safe. otelctx_new, otelctx_clone and otelctx_free use
 * malloc/free.
 *
 * The process-context calls (otelctx_set_attribute_keys and
 * otelctx_process_*) may be called from any thread; one internal mutex makes
 * the library the single writer of the process context, as OTEP 4719 and
 * OTEP 4947 require. They are not async-signal-safe.
 */
#ifndef OTELCTX_H
#define OTELCTX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
#define OTELCTX_STATIC_ASSERT static_assert
#define OTELCTX_ALIGNOF alignof
#else
#define OTELCTX_STATIC_ASSERT _Static_assert
#define OTELCTX_ALIGNOF _Alignof
#endif

#if defined(__GNUC__)
#define OTELCTX_API __attribute__((visibility("default")))
#else
#define OTELCTX_API
#endif

/* ------------------------------------------------------------------------ */
/* Thread-Local Context Record (OTEP 4947)                                  */
/* ------------------------------------------------------------------------ */

/* Name of the exported TLS variable (STT_TLS, STB_GLOBAL, size 8, .tbss).
 * It is deliberately not declared in this header: change it only through the
 * calls below, which follow the publication protocol. */
#define OTELCTX_TLS_SYMBOL "otel_thread_ctx_v1"

#define OTELCTX_HEADER_SIZE 28      /* fixed part a reader reads first        */
#define OTELCTX_RECORD_SIZE 640     /* recommended maximum total record size  */
#define OTELCTX_MAX_ATTRS_DATA 612  /* OTELCTX_RECORD_SIZE - header           */
#define OTELCTX_MAX_ATTR_VALUE 255  /* one length byte per attribute value    */
#define OTELCTX_MAX_ATTRIBUTE_KEYS 256 /* one key-index byte per attribute   */

/* Value of `threadlocal.schema_version` in the process context. The OTEP says
 * it becomes "tls_v1" later; readers accept only this value today. */
#define OTELCTX_SCHEMA_VERSION "tlsdesc_v1_dev"

/*
 * The record, byte for byte as OTEP 4947 lays it out: packed, host endian,
 * no implicit padding (the natural layout of these fields has none; the
 * asserts below prove it). Alignment is 2 because of attrs_data_size; the
 * library allocates records on 64-byte boundaries.
 *
 *   trace_id        W3C trace-id bytes in the order of the hex string.
 *                   All zero = no trace. If trace_id or span_id is set, both
 *                   are set.
 *   span_id         W3C span-id (parent-id) bytes in hex-string order.
 *   valid           1 = record complete and usable. Any other value: readers
 *                   ignore the record. otelctx_update writes 0 while it
 *                   rewrites an attached record, then 1 again.
 *   trace_flags     W3C trace-flags byte (0x01 sampled, 0x02 random, ...).
 *                   0 when there are no ids.
 *   attrs_data_size number of meaningful bytes in attrs_data (host endian).
 *   attrs_data      packed entries [key index u8][length u8][length bytes
 *                   of UTF-8]; the key index points into the process
 *                   context's `threadlocal.attribute_key_map`.
 */
typedef struct otelctx_record {
  uint8_t trace_id[16];
  uint8_t span_id[8];
  uint8_t valid;
  uint8_t trace_flags;
  uint16_t attrs_data_size;
  uint8_t attrs_data[OTELCTX_MAX_ATTRS_DATA];
} otelctx_record;

OTELCTX_STATIC_ASSERT(sizeof(otelctx_record) == OTELCTX_RECORD_SIZE, "record size");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_record, trace_id) == 0, "trace_id offset");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_record, span_id) == 16, "span_id offset");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_record, valid) == 24, "valid offset");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_record, trace_flags) == 25, "trace_flags offset");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_record, attrs_data_size) == 26, "attrs_data_size offset");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_record, attrs_data) == OTELCTX_HEADER_SIZE, "attrs_data offset");
OTELCTX_STATIC_ASSERT(OTELCTX_ALIGNOF(otelctx_record) <= 2, "record needs only 2-byte alignment");

/* One thread attribute: index into the key map, and a UTF-8 value of `len`
 * bytes (need not be NUL-terminated; may be NULL when len == 0). */
typedef struct otelctx_attr {
  uint8_t key_index;
  const char *value;
  size_t len;
} otelctx_attr;

/*
 * Allocate a record (640 bytes, 64-byte aligned, valid = 1), not attached.
 *
 * trace_id / span_id may be NULL, meaning all zero. Either both ids are
 * non-zero, or both are zero and trace_flags is 0; anything else is EINVAL
 * (e.g. a zero trace id with a non-zero span id).
 *
 * Attributes are encoded in the given order (readers let the last occurrence
 * of a key index win). A value longer than 255 bytes is cut to at most 255
 * bytes at a UTF-8 character boundary. The encoded attributes are capped at
 * OTELCTX_MAX_ATTRS_DATA (612) bytes: a value that does not fit entirely is
 * cut (at a character boundary) to the space left, and once no value byte of
 * a non-empty value fits, that entry and all later ones are dropped. A value
 * that is not valid UTF-8, or NULL with len > 0, is EINVAL.
 */
OTELCTX_API otelctx_record *otelctx_new(const uint8_t trace_id[16], const uint8_t span_id[8],
                                        uint8_t trace_flags, const otelctx_attr *attrs, size_t n);

/* Allocate an unattached copy of `rec` (which may be attached to the calling
 * thread). Used to hand a context to another thread. */
OTELCTX_API otelctx_record *otelctx_clone(const otelctx_record *rec);

/* Free a record from otelctx_new/otelctx_clone. It must not be attached to
 * any thread; if it is attached to the calling thread it is detached first.
 * NULL is a no-op. */
OTELCTX_API void otelctx_free(otelctx_record *rec);

/*
 * Make `rec` the calling thread's active record: a compiler fence, then one
 * 8-byte store of the pointer into otel_thread_ctx_v1. `rec` (from
 * otelctx_new/otelctx_clone, valid == 1) must not be attached to another
 * thread. Returns the previously attached record (or NULL); the caller now
 * owns it and may re-attach it later (save/restore around a coroutine or a
 * callback) or free it. otelctx_attach(NULL) is otelctx_detach(). Attaching
 * the record that is already attached changes nothing and returns NULL.
 */
OTELCTX_API otelctx_record *otelctx_attach(otelctx_record *rec);

/* Clear the calling thread's slot (store NULL) and return the record that
 * was attached, now owned by the caller, or NULL. */
OTELCTX_API otelctx_record *otelctx_detach(void);

/* The record attached to the calling thread, or NULL. Do not modify it. */
OTELCTX_API const otelctx_record *otelctx_current(void);

/*
 * Change the calling thread's context in place. The new record is encoded
 * first (same rules and errors as otelctx_new, nothing is changed on error),
 * then written into the attached record with the OTEP 4947 protocol:
 *     valid = 0; compiler fence; write ids, flags, attributes (size last);
 *     compiler fence; valid = 1
 * so a reader that interrupts the thread sees either the old record, the
 * new one, or valid == 0 - never a mix. Only compiler fences are used: the
 * reader observes the thread while it is stopped, like a signal handler.
 * If nothing is attached this is otelctx_new + otelctx_attach (allocates);
 * the caller owns that record (otelctx_free(otelctx_detach()) when done).
 */
OTELCTX_API int otelctx_update(const uint8_t trace_id[16], const uint8_t span_id[8],
                               uint8_t trace_flags, const otelctx_attr *attrs, size_t n);

/*
 * Parse a W3C traceparent header value "vv-<32 hex>-<16 hex>-<2 hex>":
 * lowercase hex only, version "ff" invalid, all-zero trace-id or parent-id
 * invalid, version 00 exactly 55 characters, a higher version at least 55
 * characters followed by the end or '-'. Leading and trailing spaces/tabs
 * are ignored. On success fills the outputs (any may be NULL) and returns 0;
 * otherwise returns -1 with errno = EINVAL and leaves the outputs unchanged.
 */
OTELCTX_API int otelctx_parse_traceparent(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
                                          uint8_t *flags);

/*
 * pthread_create that starts the new thread with a copy of the calling
 * thread's attached record (when there is one). The library owns the copy
 * and frees it when the thread ends (return, pthread_exit or cancellation,
 * through a pthread key destructor) as long as it is still attached then; if
 * the thread takes it out with otelctx_attach/otelctx_detach, the thread owns
 * it from then on. A thread started while nothing is attached starts with
 * nothing; if the copy cannot be allocated the thread starts without it. With LD_PRELOAD, or when linked against libotelctx.so, plain
 * pthread_create already does this; programs linked with libotelctx.a call
 * this helper explicitly.
 */
OTELCTX_API int otelctx_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                                       void *(*start_routine)(void *), void *arg);

/* ------------------------------------------------------------------------ */
/* Process context (OTEP 4719)                                              */
/* ------------------------------------------------------------------------ */

#define OTELCTX_PROCESS_SIGNATURE "OTEL_CTX" /* 8 bytes, no NUL in the header */
#define OTELCTX_PROCESS_VERSION 2
#define OTELCTX_PROCESS_HEADER_SIZE 32

/* The mapping header, host endian, 8-byte aligned. Readers: check signature
 * and version; read the timestamp (0 = being written, retry); fence; copy
 * payload_size bytes at payload; fence; re-read the timestamp (changed =
 * retry). */
typedef struct otelctx_process_header {
  char signature[8];                  /* "OTEL_CTX"                          */
  uint32_t version;                   /* 2                                   */
  uint32_t payload_size;              /* bytes of protobuf at `payload`      */
  uint64_t monotonic_published_at_ns; /* CLOCK_BOOTTIME ns, written last     */
  uint64_t payload;                   /* address of the protobuf payload     */
} otelctx_process_header;

OTELCTX_STATIC_ASSERT(sizeof(otelctx_process_header) == OTELCTX_PROCESS_HEADER_SIZE, "header size");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_process_header, version) == 8, "version offset");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_process_header, payload_size) == 12, "payload_size offset");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_process_header, monotonic_published_at_ns) == 16, "timestamp offset");
OTELCTX_STATIC_ASSERT(offsetof(otelctx_process_header, payload) == 24, "payload offset");

/* A string attribute for the process context (NUL-terminated UTF-8). */
typedef struct otelctx_kv {
  const char *key;
  const char *value;
} otelctx_kv;

/*
 * Set the thread attribute key map (`threadlocal.attribute_key_map`):
 * keys[i] is the name of key index i. The map is append-only (OTEP 4947):
 * the new list must start with the current one (same keys, same order);
 * reordering or removing is EINVAL. At most 256 non-empty UTF-8 keys. If the
 * process context is published, it is republished with the update protocol.
 */
OTELCTX_API int otelctx_set_attribute_keys(const char *const *keys, size_t n);

/*
 * Publish the process context: ProcessContext{ resource = Resource{resource},
 * attributes = attrs + threadlocal.schema_version + threadlocal.attribute_key_map }.
 * Keys must be non-empty and unique per list, keys and values valid UTF-8;
 * attrs must not use the library-owned `threadlocal.` prefix (EINVAL).
 *
 * First publication (OTEP 4719): memfd_create("OTEL_CTX", CLOEXEC |
 * ALLOW_SEALING | NOEXEC_SEAL, retried without NOEXEC_SEAL), ftruncate, mmap
 * MAP_PRIVATE, close; anonymous mapping if memfd is unavailable;
 * madvise(MADV_DONTFORK); header fields; seq_cst fence; CLOCK_BOOTTIME
 * timestamp last; prctl(PR_SET_VMA_ANON_NAME, "OTEL_CTX") (errors ignored,
 * unless the mapping is anonymous, which then could not be found: error).
 * The context is a singleton: if it is already published this performs
 * otelctx_process_update. After fork() the child has no context (the
 * mapping is not inherited) and may publish its own.
 */
OTELCTX_API int otelctx_process_publish(const otelctx_kv *resource, size_t nres,
                                        const otelctx_kv *attrs, size_t nattrs);

/*
 * Replace the published context (ENOENT if nothing is published): encode
 * the new payload; timestamp = 0; seq_cst fence; payload pointer and size;
 * seq_cst fence; new timestamp, strictly greater than the previous one;
 * prctl naming again.
 */
OTELCTX_API int otelctx_process_update(const otelctx_kv *resource, size_t nres,
                                       const otelctx_kv *attrs, size_t nattrs);

/* Withdraw the context: timestamp = 0, fence, unmap, free the payload.
 * ENOENT if nothing is published. */
OTELCTX_API int otelctx_process_unpublish(void);

#ifdef __cplusplus
}
#endif

#endif /* OTELCTX_H */
