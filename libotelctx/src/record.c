/* Thread-Local Context Record and the otel_thread_ctx_v1 TLS slot (OTEP 4947). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * The published TLS variable: a pointer to the active record, NULL = none.
 * Global, default visibility, zero-initialised (so it lands in .tbss), 8
 * bytes. global-dynamic + -mtls-dialect=gnu2 makes every access a TLSDESC
 * sequence; since the symbol stays preemptible in the shared library, the
 * linker keeps one R_X86_64_TLSDESC dynamic relocation against it, which is
 * what readers use to find the slot.
 */
__attribute__((visibility("default"), tls_model("global-dynamic")))
__thread otelctx_record *otel_thread_ctx_v1 = NULL;

_Static_assert(sizeof(otel_thread_ctx_v1) == 8, "TLS slot is one 8-byte pointer");

int otelctx__utf8_valid(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return 0; /* continuation byte first, overlong C0/C1, or > F4 */
    }
    if (len - i - 1 < n) return 0;
    for (size_t k = 1; k <= n; k++) {
      unsigned char cc = s[i + k];
      if ((cc & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += n + 1;
  }
  return 1;
}

/* Longest prefix of a valid UTF-8 string of `len` bytes that is at most `max`
 * bytes and does not split a character. */
static size_t utf8_cut(const unsigned char *s, size_t len, size_t max) {
  if (len <= max) return len;
  size_t cut = max;
  while (cut > 0 && (s[cut] & 0xc0) == 0x80) cut--;
  return cut;
}

static const uint8_t zero_id[16];

/* Fill ids, flags and attributes of `r` (not `valid`). 0, or -1/EINVAL. */
static int encode(otelctx_record *r, const uint8_t *trace_id, const uint8_t *span_id,
                  uint8_t trace_flags, const otelctx_attr *attrs, size_t n) {
  const uint8_t *t = trace_id ? trace_id : zero_id;
  const uint8_t *s = span_id ? span_id : zero_id;
  int t_zero = memcmp(t, zero_id, 16) == 0;
  int s_zero = memcmp(s, zero_id, 8) == 0;
  if (t_zero != s_zero || (t_zero && trace_flags != 0) || (n > 0 && attrs == NULL)) {
    errno = EINVAL;
    return -1;
  }
  size_t off = 0;
  int full = 0;
  for (size_t i = 0; i < n; i++) {
    const otelctx_attr *a = &attrs[i];
    if (a->value == NULL && a->len > 0) {
      errno = EINVAL;
      return -1;
    }
    const unsigned char *v = (const unsigned char *)a->value;
    if (a->len > 0 && !otelctx__utf8_valid(v, a->len)) {
      errno = EINVAL;
      return -1;
    }
    if (full) continue; /* keep validating, but nothing more fits */
    size_t room = OTELCTX_MAX_ATTRS_DATA - off;
    if (room < 2) {
      full = 1;
      continue;
    }
    size_t max = room - 2 < OTELCTX_MAX_ATTR_VALUE ? room - 2 : OTELCTX_MAX_ATTR_VALUE;
    size_t len = utf8_cut(v, a->len, max);
    if (len == 0 && a->len > 0) {
      full = 1;
      continue;
    }
    r->attrs_data[off] = a->key_index;
    r->attrs_data[off + 1] = (uint8_t)len;
    if (len) memcpy(&r->attrs_data[off + 2], v, len);
    off += 2 + len;
  }
  memcpy(r->trace_id, t, 16);
  memcpy(r->span_id, s, 8);
  r->trace_flags = trace_flags;
  r->attrs_data_size = (uint16_t)off;
  return 0;
}

static otelctx_record *alloc_record(void) {
  struct otelctx_box *box = aligned_alloc(64, sizeof(struct otelctx_box));
  if (!box) {
    errno = ENOMEM;
    return NULL;
  }
  memset(box, 0, sizeof *box);
  box->magic = OTELCTX_BOX_MAGIC;
  return &box->rec;
}

otelctx_record *otelctx_new(const uint8_t trace_id[16], const uint8_t span_id[8],
                            uint8_t trace_flags, const otelctx_attr *attrs, size_t n) {
  otelctx_record tmp;
  if (encode(&tmp, trace_id, span_id, trace_flags, attrs, n) < 0) return NULL;
  otelctx_record *rec = alloc_record();
  if (!rec) return NULL;
  memcpy(rec, &tmp, OTELCTX_HEADER_SIZE + tmp.attrs_data_size);
  rec->valid = 1;
  return rec;
}

otelctx_record *otelctx_clone(const otelctx_record *src) {
  if (!src || src->valid != 1 || src->attrs_data_size > OTELCTX_MAX_ATTRS_DATA) {
    errno = EINVAL;
    return NULL;
  }
  otelctx_record *rec = alloc_record();
  if (!rec) return NULL;
  memcpy(rec, src, OTELCTX_HEADER_SIZE + src->attrs_data_size);
  rec->valid = 1;
  return rec;
}

void otelctx_free(otelctx_record *rec) {
  if (!rec) return;
  struct otelctx_box *box = otelctx__box(rec);
  if (box->magic != OTELCTX_BOX_MAGIC) {
    otelctx__warn("libotelctx: otelctx_free: not a record from otelctx_new/otelctx_clone; ignored");
    return;
  }
  if (otelctx__slot_load() == rec) otelctx__slot_store(NULL);
  box->magic = 0;
  free(box);
}

otelctx_record *otelctx_attach(otelctx_record *rec) {
  otelctx_record *old = otelctx__slot_load();
  if (old == rec) return NULL; /* already attached: nothing changes */
  /* The record leaving the slot now belongs to the caller, not to the
   * thread-exit cleanup of an inherited copy. */
  if (old) otelctx__box(old)->flags &= ~OTELCTX_BOX_INHERITED;
  otelctx__slot_store(rec);
  return old;
}

otelctx_record *otelctx_detach(void) { return otelctx_attach(NULL); }

const otelctx_record *otelctx_current(void) { return otelctx__slot_load(); }

int otelctx_update(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t trace_flags,
                   const otelctx_attr *attrs, size_t n) {
  otelctx_record tmp;
  if (encode(&tmp, trace_id, span_id, trace_flags, attrs, n) < 0) return -1;
  otelctx_record *rec = otelctx__slot_load();
  if (!rec) {
    rec = alloc_record();
    if (!rec) return -1;
    memcpy(rec, &tmp, OTELCTX_HEADER_SIZE + tmp.attrs_data_size);
    rec->valid = 1;
    otelctx__slot_store(rec);
    return 0;
  }
  /* In place, OTEP 4947: valid = 0 -> fence -> write -> fence -> valid = 1.
   * The attribute size is written last within the window. */
  volatile uint8_t *valid = &rec->valid;
  *valid = 0;
  atomic_signal_fence(memory_order_seq_cst);
  memcpy(rec->trace_id, tmp.trace_id, sizeof rec->trace_id);
  memcpy(rec->span_id, tmp.span_id, sizeof rec->span_id);
  rec->trace_flags = tmp.trace_flags;
  memcpy(rec->attrs_data, tmp.attrs_data, tmp.attrs_data_size);
  atomic_signal_fence(memory_order_seq_cst);
  *(volatile uint16_t *)&rec->attrs_data_size = tmp.attrs_data_size;
  atomic_signal_fence(memory_order_seq_cst);
  *valid = 1;
  atomic_signal_fence(memory_order_seq_cst);
  return 0;
}
