/* For test programs that are NOT linked against libotelctx: the library is
 * expected to be in the process through LD_PRELOAD, and its API is looked
 * up with dlsym, as an unmodified program would see it. */
#ifndef PRELOADED_API_H
#define PRELOADED_API_H
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otelctx.h"

static struct {
  otelctx_record *(*new_)(const uint8_t *, const uint8_t *, uint8_t, const otelctx_attr *, size_t);
  void (*free_)(otelctx_record *);
  otelctx_record *(*attach)(otelctx_record *);
  otelctx_record *(*detach)(void);
  const otelctx_record *(*current)(void);
  int (*update)(const uint8_t *, const uint8_t *, uint8_t, const otelctx_attr *, size_t);
} api;

static void *need(const char *name) {
  void *p = dlsym(RTLD_DEFAULT, name);
  if (!p) {
    fprintf(stderr, "%s not found: run with LD_PRELOAD=libotelctx.so\n", name);
    exit(2);
  }
  return p;
}

static void load_api(void) {
  void *p;
#define LOAD(field, name) (p = need(name), memcpy(&api.field, &p, sizeof p))
  LOAD(new_, "otelctx_new");
  LOAD(free_, "otelctx_free");
  LOAD(attach, "otelctx_attach");
  LOAD(detach, "otelctx_detach");
  LOAD(current, "otelctx_current");
  LOAD(update, "otelctx_update");
#undef LOAD
}

static void hexs(char *out, const uint8_t *b, size_t n) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * n] = 0;
}

/* "none", or "trace=<hex> span=<hex> flags=<n> attrs=<hex of attrs_data>" */
static void describe(const otelctx_record *r, char *out, size_t cap) {
  if (!r) {
    snprintf(out, cap, "none");
    return;
  }
  char t[33], s[17], a[2 * OTELCTX_MAX_ATTRS_DATA + 1];
  hexs(t, r->trace_id, 16);
  hexs(s, r->span_id, 8);
  hexs(a, r->attrs_data, r->attrs_data_size);
  snprintf(out, cap, "valid=%u trace=%s span=%s flags=%u attrs=%s", r->valid, t, s, r->trace_flags, a);
}
#endif
