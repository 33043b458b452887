/* Test driver for layout, encoding and API behaviour (linked against
 * libotelctx.so). Subcommands print results; the TypeScript test compares
 * them with byte vectors written from the specifications.
 *
 *   tool layout
 *   tool record <trace hex|-> <span hex|-> <flags> [<key index>:<value hex>]...
 *   tool parse <traceparent>
 *   tool payload [--key K]... [--res k=v]... [--attr k=v]...
 *   tool dump      (the context the library published at load, if any)
 *   tool api
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otelctx.h"

static void hexs(char *out, const void *p, size_t n) {
  static const char d[] = "0123456789abcdef";
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * n] = 0;
}

static int unhex(const char *s, uint8_t *out, size_t max) {
  size_t n = strlen(s);
  if (n % 2 || n / 2 > max) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    out[i] = (uint8_t)v;
  }
  return (int)(n / 2);
}

static const char *errname(int e) {
  switch (e) {
  case EINVAL: return "EINVAL";
  case ENOENT: return "ENOENT";
  case ENOMEM: return "ENOMEM";
  default: return "other";
  }
}

static int cmd_layout(void) {
  printf("record.size=%zu\n", sizeof(otelctx_record));
  printf("record.align=%zu\n", _Alignof(otelctx_record));
  printf("record.trace_id=%zu\n", offsetof(otelctx_record, trace_id));
  printf("record.span_id=%zu\n", offsetof(otelctx_record, span_id));
  printf("record.valid=%zu\n", offsetof(otelctx_record, valid));
  printf("record.trace_flags=%zu\n", offsetof(otelctx_record, trace_flags));
  printf("record.attrs_data_size=%zu\n", offsetof(otelctx_record, attrs_data_size));
  printf("record.attrs_data=%zu\n", offsetof(otelctx_record, attrs_data));
  printf("OTELCTX_RECORD_SIZE=%d\n", OTELCTX_RECORD_SIZE);
  printf("OTELCTX_MAX_ATTRS_DATA=%d\n", OTELCTX_MAX_ATTRS_DATA);
  printf("OTELCTX_HEADER_SIZE=%d\n", OTELCTX_HEADER_SIZE);
  printf("header.size=%zu\n", sizeof(otelctx_process_header));
  printf("header.version=%zu\n", offsetof(otelctx_process_header, version));
  printf("header.payload_size=%zu\n", offsetof(otelctx_process_header, payload_size));
  printf("header.monotonic_published_at_ns=%zu\n",
         offsetof(otelctx_process_header, monotonic_published_at_ns));
  printf("header.payload=%zu\n", offsetof(otelctx_process_header, payload));
  /* a record from otelctx_new is 64-byte aligned */
  uint8_t t[16] = {1}, s[8] = {1};
  otelctx_record *r = otelctx_new(t, s, 0, NULL, 0);
  printf("new.align64=%d\n", (int)((uintptr_t)r % 64 == 0));
  otelctx_free(r);
  return 0;
}

static int cmd_record(int argc, char **argv) {
  if (argc < 3) return 2;
  uint8_t t[16], s[8];
  const uint8_t *tp = NULL, *sp = NULL;
  if (strcmp(argv[0], "-") != 0) {
    if (unhex(argv[0], t, 16) != 16) return 2;
    tp = t;
  }
  if (strcmp(argv[1], "-") != 0) {
    if (unhex(argv[1], s, 8) != 8) return 2;
    sp = s;
  }
  uint8_t flags = (uint8_t)strtoul(argv[2], NULL, 0);
  size_t n = (size_t)(argc - 3);
  otelctx_attr *attrs = calloc(n + 1, sizeof *attrs);
  uint8_t(*vals)[2048] = calloc(n + 1, sizeof *vals);
  for (size_t i = 0; i < n; i++) {
    char *a = argv[3 + i], *colon = strchr(a, ':');
    if (!colon) return 2;
    attrs[i].key_index = (uint8_t)strtoul(a, NULL, 0);
    int len = unhex(colon + 1, vals[i], sizeof vals[i]);
    if (len < 0) return 2;
    attrs[i].value = (const char *)vals[i];
    attrs[i].len = (size_t)len;
  }
  otelctx_record *r = otelctx_new(tp, sp, flags, attrs, n);
  if (!r) {
    printf("error %s\n", errname(errno));
    return 0;
  }
  static char h[2 * OTELCTX_RECORD_SIZE + 1];
  hexs(h, r, OTELCTX_HEADER_SIZE + r->attrs_data_size);
  printf("%s\n", h);
  /* otelctx_update of an attached record must produce the same bytes */
  otelctx_record *blank = otelctx_new(NULL, NULL, 0, NULL, 0);
  otelctx_attach(blank);
  if (otelctx_update(tp, sp, flags, attrs, n) < 0) return 1;
  static char h2[2 * OTELCTX_RECORD_SIZE + 1];
  hexs(h2, otelctx_current(), OTELCTX_HEADER_SIZE + otelctx_current()->attrs_data_size);
  printf("update-same=%d\n", strcmp(h, h2) == 0 && otelctx_current() == blank);
  otelctx_free(otelctx_detach());
  otelctx_free(r);
  free(attrs);
  free(vals);
  return 0;
}

static int cmd_parse(const char *s) {
  uint8_t t[16], sp[8], f;
  if (otelctx_parse_traceparent(s, t, sp, &f) < 0) {
    printf("error %s\n", errname(errno));
    return 0;
  }
  char th[33], sh[17];
  hexs(th, t, 16);
  hexs(sh, sp, 8);
  printf("ok %s %s %02x\n", th, sh, f);
  return 0;
}

/* Find our own OTEL_CTX mapping the way an outside reader would. */
static int find_mapping(uintptr_t *start, char *name, size_t cap) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[512];
  int found = 0;
  while (f && fgets(line, sizeof line, f)) {
    char *nm = strchr(line, '/');
    if (!nm) nm = strchr(line, '[');
    if (!nm) continue;
    if (strncmp(nm, "/memfd:OTEL_CTX", 15) == 0 || strncmp(nm, "[anon:OTEL_CTX]", 15) == 0 ||
        strncmp(nm, "[anon_shmem:OTEL_CTX]", 21) == 0) {
      nm[strcspn(nm, "\n")] = 0;
      snprintf(name, cap, "%s", nm);
      *start = (uintptr_t)strtoull(line, NULL, 16);
      found++;
    }
  }
  if (f) fclose(f);
  return found;
}

static uint64_t boottime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmd_payload(int argc, char **argv) {
  const char *keys[64];
  otelctx_kv res[64], attrs[64];
  size_t nk = 0, nr = 0, na = 0;
  for (int i = 0; i + 1 < argc; i += 2) {
    char *v = argv[i + 1];
    if (strcmp(argv[i], "--key") == 0) {
      keys[nk++] = v;
      continue;
    }
    char *eq = strchr(v, '=');
    if (!eq) return 2;
    *eq = 0;
    otelctx_kv kv = {v, eq + 1};
    if (strcmp(argv[i], "--res") == 0) res[nr++] = kv;
    else attrs[na++] = kv;
  }
  if (otelctx_set_attribute_keys(keys, nk) < 0) {
    printf("error keys %s\n", errname(errno));
    return 0;
  }
  uint64_t before = boottime();
  if (otelctx_process_publish(res, nr, attrs, na) < 0) {
    printf("error publish %s\n", errname(errno));
    return 0;
  }
  uint64_t after = boottime();
  uintptr_t start;
  char name[256];
  int found = find_mapping(&start, name, sizeof name);
  printf("mappings=%d\n", found);
  if (found != 1) return 1;
  printf("name=%s\n", name);
  const otelctx_process_header *h = (const void *)start;
  char hh[65];
  hexs(hh, h, 32);
  printf("header=%s\n", hh);
  printf("payload_addr=%" PRIx64 "\n", h->payload);
  char *ph = malloc(2 * h->payload_size + 1);
  hexs(ph, (const void *)(uintptr_t)h->payload, h->payload_size);
  printf("payload=%s\n", ph);
  printf("boottime_before=%" PRIu64 "\n", before);
  printf("boottime_after=%" PRIu64 "\n", after);
  free(ph);
  return 0;
}

static int cmd_dump(void) {
  uintptr_t start;
  char name[256];
  int found = find_mapping(&start, name, sizeof name);
  printf("mappings=%d\n", found);
  if (found != 1) return 0;
  const otelctx_process_header *h = (const void *)start;
  char *ph = malloc(2 * h->payload_size + 1);
  hexs(ph, (const void *)(uintptr_t)h->payload, h->payload_size);
  printf("payload=%s\n", ph);
  free(ph);
  return 0;
}

#define CHECK(name, expr) printf("%s=%s\n", name, (expr) ? "ok" : "FAIL")

static int cmd_api(void) {
  uint8_t t[16], s[8], zero16[16] = {0}, zero8[8] = {0};
  for (int i = 0; i < 16; i++) t[i] = (uint8_t)(0xa0 + i);
  for (int i = 0; i < 8; i++) s[i] = (uint8_t)(0xb0 + i);

  errno = 0;
  CHECK("new.trace-zero-span-set.EINVAL", !otelctx_new(zero16, s, 1, NULL, 0) && errno == EINVAL);
  errno = 0;
  CHECK("new.trace-set-span-zero.EINVAL", !otelctx_new(t, zero8, 1, NULL, 0) && errno == EINVAL);
  errno = 0;
  CHECK("new.no-ids-flags.EINVAL", !otelctx_new(NULL, NULL, 1, NULL, 0) && errno == EINVAL);
  otelctx_attr bad_utf8 = {0, "\xc3\x28", 2};
  errno = 0;
  CHECK("new.bad-utf8.EINVAL", !otelctx_new(t, s, 1, &bad_utf8, 1) && errno == EINVAL);
  otelctx_attr null_value = {0, NULL, 3};
  errno = 0;
  CHECK("new.null-value.EINVAL", !otelctx_new(t, s, 1, &null_value, 1) && errno == EINVAL);
  otelctx_attr empty = {3, NULL, 0};
  otelctx_record *e = otelctx_new(NULL, NULL, 0, &empty, 1);
  CHECK("new.no-ids.empty-value", e && e->valid == 1 && e->attrs_data_size == 2 &&
                                      e->attrs_data[0] == 3 && e->attrs_data[1] == 0);
  otelctx_free(e);

  CHECK("current.initially-null", otelctx_current() == NULL);
  CHECK("detach.nothing", otelctx_detach() == NULL);
  otelctx_record *a = otelctx_new(t, s, 1, NULL, 0);
  otelctx_record *b = otelctx_new(t, s, 0, NULL, 0);
  CHECK("attach.first-returns-null", otelctx_attach(a) == NULL);
  CHECK("current.is-a", otelctx_current() == a);
  CHECK("attach.same-is-noop", otelctx_attach(a) == NULL && otelctx_current() == a);
  CHECK("attach.returns-previous", otelctx_attach(b) == a);
  CHECK("detach.returns-b", otelctx_detach() == b && otelctx_current() == NULL);

  otelctx_attach(a);
  otelctx_attr at = {1, "x", 1};
  CHECK("update.in-place", otelctx_update(t, s, 0, &at, 1) == 0 && otelctx_current() == a &&
                               a->trace_flags == 0 && a->valid == 1 && a->attrs_data_size == 3);
  errno = 0;
  CHECK("update.bad-input-unchanged", otelctx_update(zero16, s, 1, NULL, 0) == -1 &&
                                          errno == EINVAL && a->attrs_data_size == 3 &&
                                          a->valid == 1 && memcmp(a->trace_id, t, 16) == 0);
  otelctx_record *c = otelctx_clone(a);
  CHECK("clone.equal-and-distinct", c && c != a && memcmp(c, a, OTELCTX_HEADER_SIZE + 3) == 0);
  otelctx_free(c);
  otelctx_free(a); /* attached: detached first */
  CHECK("free.attached-detaches", otelctx_current() == NULL);
  CHECK("update.nothing-attached-allocates",
        otelctx_update(t, s, 1, NULL, 0) == 0 && otelctx_current() != NULL &&
            otelctx_current()->valid == 1 && otelctx_current()->trace_flags == 1);
  otelctx_free(otelctx_detach());
  otelctx_free(b);
  otelctx_free(NULL);

  /* process context */
  errno = 0;
  CHECK("process.update-before-publish.ENOENT", otelctx_process_update(NULL, 0, NULL, 0) == -1 && errno == ENOENT);
  errno = 0;
  CHECK("process.unpublish-before-publish.ENOENT", otelctx_process_unpublish() == -1 && errno == ENOENT);
  otelctx_kv reserved = {"threadlocal.schema_version", "x"};
  errno = 0;
  CHECK("process.reserved-key.EINVAL", otelctx_process_publish(NULL, 0, &reserved, 1) == -1 && errno == EINVAL);
  otelctx_kv dup[] = {{"k", "1"}, {"k", "2"}};
  errno = 0;
  CHECK("process.duplicate-key.EINVAL", otelctx_process_publish(dup, 2, NULL, 0) == -1 && errno == EINVAL);
  otelctx_kv badv = {"k", "\xff"};
  errno = 0;
  CHECK("process.bad-utf8.EINVAL", otelctx_process_publish(&badv, 1, NULL, 0) == -1 && errno == EINVAL);
  const char *k2[] = {"a", "b"}, *k2r[] = {"b", "a"}, *k3[] = {"a", "b", "c"}, *k1[] = {"a"};
  CHECK("keys.set", otelctx_set_attribute_keys(k2, 2) == 0);
  errno = 0;
  CHECK("keys.reorder.EINVAL", otelctx_set_attribute_keys(k2r, 2) == -1 && errno == EINVAL);
  errno = 0;
  CHECK("keys.remove.EINVAL", otelctx_set_attribute_keys(k1, 1) == -1 && errno == EINVAL);
  CHECK("keys.same-again", otelctx_set_attribute_keys(k2, 2) == 0);
  CHECK("keys.append", otelctx_set_attribute_keys(k3, 3) == 0);
  const char *kdup[] = {"a", "a"};
  errno = 0;
  CHECK("keys.duplicate.EINVAL", otelctx_set_attribute_keys(kdup, 2) == -1 && errno == EINVAL);
  otelctx_kv ok = {"service.name", "x"};
  CHECK("process.publish", otelctx_process_publish(&ok, 1, NULL, 0) == 0);
  CHECK("process.publish-again-updates", otelctx_process_publish(&ok, 1, NULL, 0) == 0);
  uintptr_t start;
  char name[256];
  CHECK("process.singleton", find_mapping(&start, name, sizeof name) == 1);
  CHECK("process.update", otelctx_process_update(&ok, 1, NULL, 0) == 0);
  CHECK("process.unpublish", otelctx_process_unpublish() == 0);
  CHECK("process.unpublished-no-mapping", find_mapping(&start, name, sizeof name) == 0);
  CHECK("process.republish", otelctx_process_publish(&ok, 1, NULL, 0) == 0 &&
                                 find_mapping(&start, name, sizeof name) == 1);
  otelctx_process_unpublish();
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "layout") == 0) return cmd_layout();
  if (strcmp(argv[1], "record") == 0) return cmd_record(argc - 2, argv + 2);
  if (strcmp(argv[1], "parse") == 0 && argc == 3) return cmd_parse(argv[2]);
  if (strcmp(argv[1], "payload") == 0) return cmd_payload(argc - 2, argv + 2);
  if (strcmp(argv[1], "api") == 0) return cmd_api();
  if (strcmp(argv[1], "dump") == 0) return cmd_dump();
  return 2;
}
