/* OTEL_RESOURCE_ATTRIBUTES: "key1=value1,key2=value2", percent-encoded
 * (OTel Resource SDK spec: values are strings; ',' and '=' inside keys and
 * values MUST be percent-encoded; on any error the whole variable SHOULD be
 * discarded). Spaces and tabs around list members, keys and values are
 * ignored (W3C Baggage OWS); empty list members are skipped. A repeated key
 * keeps its last value (Resource keys MUST be unique). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Percent-decode s[0..n) after trimming OWS; NULL on bad encoding or
 * invalid UTF-8 (protobuf strings must be UTF-8). */
static char *decode(const char *s, size_t n) {
  while (n > 0 && is_ows(*s)) s++, n--;
  while (n > 0 && is_ows(s[n - 1])) n--;
  char *out = malloc(n + 1);
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      if (i + 2 >= n) { /* '%' needs two more characters */
        free(out);
        return NULL;
      }
      int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
      if (h < 0 || l < 0) {
        free(out);
        return NULL;
      }
      out[o++] = (char)(h << 4 | l);
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = 0;
  if (!otelctx__utf8_valid((const unsigned char *)out, o) || memchr(out, 0, o)) {
    free(out);
    return NULL;
  }
  return out;
}

void otelctx__free_kvs(otelctx_kv *kvs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free((char *)kvs[i].key);
    free((char *)kvs[i].value);
  }
  free(kvs);
}

int otelctx__parse_resource_attributes(const char *s, otelctx_kv **out) {
  *out = NULL;
  size_t cap = 0, n = 0;
  otelctx_kv *kvs = NULL;
  const char *p = s;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t mlen = end ? (size_t)(end - p) : strlen(p);
    size_t k = 0;
    while (k < mlen && is_ows(p[k])) k++;
    if (k < mlen) { /* non-empty member */
      const char *eq = memchr(p, '=', mlen);
      if (!eq) goto bad;
      char *key = decode(p, (size_t)(eq - p));
      char *val = decode(eq + 1, mlen - (size_t)(eq - p) - 1);
      if (!key || !val || !*key) {
        free(key);
        free(val);
        goto bad;
      }
      size_t i;
      for (i = 0; i < n; i++)
        if (strcmp(kvs[i].key, key) == 0) break;
      if (i < n) { /* last occurrence wins */
        free(key);
        free((char *)kvs[i].value);
        kvs[i].value = val;
      } else {
        if (n == cap) {
          cap = cap ? cap * 2 : 8;
          otelctx_kv *nk = realloc(kvs, cap * sizeof *nk);
          if (!nk) {
            free(key);
            free(val);
            goto bad;
          }
          kvs = nk;
        }
        kvs[n].key = key;
        kvs[n].value = val;
        n++;
      }
    }
    if (!end) break;
    p = end + 1;
  }
  *out = kvs;
  return (int)n;
bad:
  otelctx__free_kvs(kvs, n);
  return -1;
}
