/* Process context (OTEP 4719): the OTEL_CTX mapping and its protobuf payload. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U /* Linux 6.3; not in every libc header yet */
#endif
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif
#ifndef PR_SET_VMA_ANON_NAME
#define PR_SET_VMA_ANON_NAME 0
#endif

#define THREADLOCAL_PREFIX "threadlocal."
#define KEY_SCHEMA_VERSION "threadlocal.schema_version"
#define KEY_ATTRIBUTE_KEY_MAP "threadlocal.attribute_key_map"

/* ---------------------------------------------------------------------- */
/* Minimal protobuf encoder: varints and length-delimited fields only.     */
/* ---------------------------------------------------------------------- */

struct buf {
  uint8_t *p;
  size_t len, cap;
  int oom;
};

static void b_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void b_put(struct buf *b, const void *data, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void b_byte(struct buf *b, uint8_t c) { b_put(b, &c, 1); }

static size_t vsz(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static void b_varint(struct buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  while (v >= 0x80) {
    tmp[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  tmp[n++] = (uint8_t)v;
  b_put(b, tmp, n);
}

/* Tag byte of a length-delimited field (wire type 2); field numbers < 16. */
static void b_tag(struct buf *b, unsigned field) { b_byte(b, (uint8_t)(field << 3 | 2)); }

/* Size of a length-delimited field with a one-byte tag and `n` bytes. */
static size_t ld_size(size_t n) { return 1 + vsz(n) + n; }

/* common.v1.AnyValue { string string_value = 1; } */
static size_t any_str_size(size_t n) { return ld_size(n); }
static void put_any_str(struct buf *b, const char *s, size_t n) {
  b_tag(b, 1);
  b_varint(b, n);
  b_put(b, s, n);
}

/* common.v1.KeyValue { string key = 1; AnyValue value = 2; } with a string value */
static size_t kv_str_size(size_t kl, size_t vl) { return ld_size(kl) + ld_size(any_str_size(vl)); }

/* `field` = KeyValue{key, AnyValue{string_value}} */
static void put_field_kv_str(struct buf *b, unsigned field, const char *k, const char *v) {
  size_t kl = strlen(k), vl = strlen(v);
  b_tag(b, field);
  b_varint(b, kv_str_size(kl, vl));
  b_tag(b, 1);
  b_varint(b, kl);
  b_put(b, k, kl);
  b_tag(b, 2);
  b_varint(b, any_str_size(vl));
  put_any_str(b, v, vl);
}

/* `field` = KeyValue{key, AnyValue{array_value = 5: ArrayValue{repeated
 * AnyValue values = 1 (each a string_value)}}} */
static void put_field_kv_str_array(struct buf *b, unsigned field, const char *k,
                                   char *const *strs, size_t n) {
  size_t arr = 0;
  for (size_t i = 0; i < n; i++) arr += ld_size(any_str_size(strlen(strs[i])));
  size_t any = ld_size(arr);
  size_t kl = strlen(k);
  b_tag(b, field);
  b_varint(b, ld_size(kl) + ld_size(any));
  b_tag(b, 1);
  b_varint(b, kl);
  b_put(b, k, kl);
  b_tag(b, 2);
  b_varint(b, any);
  b_tag(b, 5);
  b_varint(b, arr);
  for (size_t i = 0; i < n; i++) {
    size_t sl = strlen(strs[i]);
    b_tag(b, 1);
    b_varint(b, any_str_size(sl));
    put_any_str(b, strs[i], sl);
  }
}

/* ---------------------------------------------------------------------- */
/* State                                                                  */
/* ---------------------------------------------------------------------- */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static struct {
  otelctx_process_header *hdr; /* the mapping, NULL when not published     */
  size_t map_size;
  pid_t pid;                   /* process that created the mapping          */
  uint8_t *payload;            /* what hdr->payload points at (or a payload
                                  inherited through fork, freed on next use) */
  uint64_t last_ts;            /* last timestamp written (strictly grows)    */
  struct buf resource_field;   /* encoded `resource = 1` field               */
  struct buf attrs_fields;     /* encoded user `attributes = 2` fields       */
  char **keys;                 /* threadlocal.attribute_key_map              */
  size_t nkeys;
} g;

/* After fork, in the child: the MADV_DONTFORK mapping is gone. Forget it so
 * a later publish creates a fresh one. Only plain stores here; the payload
 * copy inherited on the heap is freed by the next publish. */
static void atfork_prepare(void) { pthread_mutex_lock(&g_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&g_lock); }
static void atfork_child(void) {
  g.hdr = NULL;
  g.map_size = 0;
  pthread_mutex_init(&g_lock, NULL);
}
static void register_atfork(void) { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

/* Safety net for children created without running atfork handlers (raw
 * clone): a mapping published by another pid is not ours. */
static void check_fork_locked(void) {
  if (g.hdr && g.pid != getpid()) {
    g.hdr = NULL;
    g.map_size = 0;
  }
}

static uint64_t next_timestamp_locked(void) {
  struct timespec ts;
  uint64_t now = 0;
  if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
    now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  if (now <= g.last_ts) now = g.last_ts + 1; /* every publication differs */
  g.last_ts = now;
  return now;
}

static int name_mapping(void *addr, size_t size) {
  return prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)addr, size,
               (unsigned long)"OTEL_CTX");
}

static int otel_memfd(void) {
  int fd = (int)syscall(SYS_memfd_create, "OTEL_CTX",
                        MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
  if (fd < 0) /* MFD_NOEXEC_SEAL is Linux >= 6.3 */
    fd = (int)syscall(SYS_memfd_create, "OTEL_CTX", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  return fd;
}

/* OTEP 4719 publication protocol, steps 2-10. Lock held, nothing published. */
static int publish_locked(uint8_t *payload, size_t len) {
  long page = sysconf(_SC_PAGESIZE);
  size_t size = page > 0 ? (size_t)page : 4096;
  void *m = MAP_FAILED;
  int fd = otel_memfd();
  if (fd >= 0) {
    if (ftruncate(fd, (off_t)size) == 0)
      m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
  }
  int from_memfd = m != MAP_FAILED;
  if (!from_memfd) m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return -1;
  if (madvise(m, size, MADV_DONTFORK) != 0) {
    int e = errno;
    munmap(m, size);
    errno = e;
    return -1;
  }
  otelctx_process_header *h = m;
  memcpy(h->signature, OTELCTX_PROCESS_SIGNATURE, 8);
  h->version = OTELCTX_PROCESS_VERSION;
  h->payload_size = (uint32_t)len;
  h->payload = (uint64_t)(uintptr_t)payload;
  atomic_thread_fence(memory_order_seq_cst);
  __atomic_store_n(&h->monotonic_published_at_ns, next_timestamp_locked(), __ATOMIC_RELAXED);
  int named = name_mapping(m, size) == 0;
  if (!from_memfd && !named) {
    /* Neither a memfd name nor a VMA name: no reader could find it. */
    __atomic_store_n(&h->monotonic_published_at_ns, 0, __ATOMIC_RELAXED);
    munmap(m, size);
    errno = ENOTSUP;
    return -1;
  }
  g.hdr = h;
  g.map_size = size;
  g.pid = getpid();
  free(g.payload); /* NULL, or a stale copy inherited through fork */
  g.payload = payload;
  return 0;
}

/* OTEP 4719 update protocol. Lock held, published. */
static void update_locked(uint8_t *payload, size_t len) {
  otelctx_process_header *h = g.hdr;
  __atomic_store_n(&h->monotonic_published_at_ns, 0, __ATOMIC_RELAXED);
  atomic_thread_fence(memory_order_seq_cst);
  __atomic_store_n(&h->payload, (uint64_t)(uintptr_t)payload, __ATOMIC_RELAXED);
  __atomic_store_n(&h->payload_size, (uint32_t)len, __ATOMIC_RELAXED);
  atomic_thread_fence(memory_order_seq_cst);
  __atomic_store_n(&h->monotonic_published_at_ns, next_timestamp_locked(), __ATOMIC_RELAXED);
  name_mapping(h, g.map_size); /* unconditionally, for prctl-hooking readers */
  free(g.payload);
  g.payload = payload;
}

/* ProcessContext { resource = 1; repeated attributes = 2 } from the stored
 * fragments plus the library's threadlocal.* attributes. */
static int build_payload_locked(struct buf *out) {
  memset(out, 0, sizeof *out);
  b_put(out, g.resource_field.p, g.resource_field.len);
  b_put(out, g.attrs_fields.p, g.attrs_fields.len);
  put_field_kv_str(out, 2, KEY_SCHEMA_VERSION, OTELCTX_SCHEMA_VERSION);
  put_field_kv_str_array(out, 2, KEY_ATTRIBUTE_KEY_MAP, g.keys, g.nkeys);
  if (out->oom || out->len > UINT32_MAX) {
    b_free(out);
    errno = ENOMEM;
    return -1;
  }
  return 0;
}

static int publish_or_update_locked(void) {
  struct buf p;
  if (build_payload_locked(&p) < 0) return -1;
  if (g.hdr) {
    update_locked(p.p, p.len);
    return 0;
  }
  if (publish_locked(p.p, p.len) < 0) {
    int e = errno;
    free(p.p);
    errno = e;
    return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Validation and encoding of the caller's key/values                      */
/* ---------------------------------------------------------------------- */

static int str_ok(const char *s, int allow_empty) {
  if (!s || (!allow_empty && !*s)) return 0;
  return otelctx__utf8_valid((const unsigned char *)s, strlen(s));
}

static int kvs_ok(const otelctx_kv *kv, size_t n, int is_attrs) {
  if (n > 0 && !kv) return 0;
  for (size_t i = 0; i < n; i++) {
    if (!str_ok(kv[i].key, 0) || !str_ok(kv[i].value, 1)) return 0;
    if (is_attrs && strncmp(kv[i].key, THREADLOCAL_PREFIX, strlen(THREADLOCAL_PREFIX)) == 0)
      return 0; /* owned by the library */
    for (size_t j = 0; j < i; j++)
      if (strcmp(kv[i].key, kv[j].key) == 0) return 0; /* keys MUST be unique */
  }
  return 1;
}

/* `resource = 1` field: Resource { repeated KeyValue attributes = 1; } */
static void encode_resource(struct buf *b, const otelctx_kv *kv, size_t n) {
  size_t inner = 0;
  for (size_t i = 0; i < n; i++) inner += ld_size(kv_str_size(strlen(kv[i].key), strlen(kv[i].value)));
  b_tag(b, 1);
  b_varint(b, inner);
  for (size_t i = 0; i < n; i++) put_field_kv_str(b, 1, kv[i].key, kv[i].value);
}

static int set_context(const otelctx_kv *res, size_t nres, const otelctx_kv *attrs,
                       size_t nattrs, int must_exist) {
  if (!kvs_ok(res, nres, 0) || !kvs_ok(attrs, nattrs, 1)) {
    errno = EINVAL;
    return -1;
  }
  struct buf rf = {0}, af = {0};
  encode_resource(&rf, res, nres);
  for (size_t i = 0; i < nattrs; i++) put_field_kv_str(&af, 2, attrs[i].key, attrs[i].value);
  if (rf.oom || af.oom) {
    b_free(&rf);
    b_free(&af);
    errno = ENOMEM;
    return -1;
  }
  pthread_once(&g_atfork_once, register_atfork);
  pthread_mutex_lock(&g_lock);
  check_fork_locked();
  int rc = -1;
  if (must_exist && !g.hdr) {
    errno = ENOENT;
  } else {
    struct buf old_rf = g.resource_field, old_af = g.attrs_fields;
    g.resource_field = rf;
    g.attrs_fields = af;
    rc = publish_or_update_locked();
    if (rc == 0) {
      rf = old_rf;
      af = old_af;
    } else {
      g.resource_field = old_rf;
      g.attrs_fields = old_af;
    }
  }
  int e = errno;
  pthread_mutex_unlock(&g_lock);
  b_free(&rf);
  b_free(&af);
  errno = e;
  return rc;
}

int otelctx_process_publish(const otelctx_kv *resource, size_t nres, const otelctx_kv *attrs,
                            size_t nattrs) {
  return set_context(resource, nres, attrs, nattrs, 0);
}

int otelctx_process_update(const otelctx_kv *resource, size_t nres, const otelctx_kv *attrs,
                           size_t nattrs) {
  return set_context(resource, nres, attrs, nattrs, 1);
}

int otelctx_process_unpublish(void) {
  pthread_mutex_lock(&g_lock);
  check_fork_locked();
  if (!g.hdr) {
    pthread_mutex_unlock(&g_lock);
    errno = ENOENT;
    return -1;
  }
  __atomic_store_n(&g.hdr->monotonic_published_at_ns, 0, __ATOMIC_RELAXED);
  atomic_thread_fence(memory_order_seq_cst);
  munmap(g.hdr, g.map_size);
  g.hdr = NULL;
  g.map_size = 0;
  free(g.payload);
  g.payload = NULL;
  pthread_mutex_unlock(&g_lock);
  return 0;
}

static void free_keys(char **keys, size_t n) {
  for (size_t i = 0; i < n; i++) free(keys[i]);
  free(keys);
}

int otelctx_set_attribute_keys(const char *const *keys, size_t n) {
  if (n > OTELCTX_MAX_ATTRIBUTE_KEYS || (n > 0 && !keys)) {
    errno = EINVAL;
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if (!str_ok(keys[i], 0)) {
      errno = EINVAL;
      return -1;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(keys[i], keys[j]) == 0) {
        errno = EINVAL;
        return -1;
      }
  }
  pthread_once(&g_atfork_once, register_atfork);
  pthread_mutex_lock(&g_lock);
  check_fork_locked();
  int rc = 0, e = 0;
  /* Append-only: existing indexes never move or disappear. */
  if (n < g.nkeys) {
    rc = -1;
    e = EINVAL;
  }
  for (size_t i = 0; rc == 0 && i < g.nkeys; i++)
    if (strcmp(keys[i], g.keys[i]) != 0) {
      rc = -1;
      e = EINVAL;
    }
  if (rc == 0 && n > g.nkeys) {
    char **copy = calloc(n, sizeof *copy);
    for (size_t i = 0; copy && i < n; i++)
      if (!(copy[i] = strdup(keys[i]))) {
        free_keys(copy, i);
        copy = NULL;
      }
    if (!copy) {
      rc = -1;
      e = ENOMEM;
    } else {
      char **old = g.keys;
      size_t oldn = g.nkeys;
      g.keys = copy;
      g.nkeys = n;
      if (g.hdr && publish_or_update_locked() < 0) {
        e = errno;
        rc = -1;
        g.keys = old;
        g.nkeys = oldn;
        free_keys(copy, n);
      } else {
        free_keys(old, oldn);
      }
    }
  }
  pthread_mutex_unlock(&g_lock);
  if (rc) errno = e;
  return rc;
}
