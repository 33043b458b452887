/* W3C Trace Context traceparent parsing. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Lowercase hex digit value, or -1 (W3C: HEXDIGLC = DIGIT / "a"-"f"). */
static int hexlc(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

static int hex_bytes(const char *s, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int hi = hexlc(s[2 * i]), lo = hexlc(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

static int all_zero(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

int otelctx_parse_traceparent(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
                              uint8_t *flags) {
  if (!s) goto bad;
  while (*s == ' ' || *s == '\t') s++;
  size_t len = strlen(s);
  while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;

  /* version "-" trace-id "-" parent-id "-" trace-flags = 2+1+32+1+16+1+2 */
  if (len < 55) goto bad;
  uint8_t version, tid[16], sid[8], fl;
  if (hex_bytes(s, &version, 1) < 0 || version == 0xff) goto bad;
  if (s[2] != '-' || s[35] != '-' || s[52] != '-') goto bad;
  if (hex_bytes(s + 3, tid, 16) < 0 || hex_bytes(s + 36, sid, 8) < 0 ||
      hex_bytes(s + 53, &fl, 1) < 0)
    goto bad;
  if (all_zero(tid, 16) || all_zero(sid, 8)) goto bad;
  /* Version 00 has exactly these fields; a later version may append fields
   * after another '-', which this parser skips. */
  if (version == 0 ? len != 55 : (len > 55 && s[55] != '-')) goto bad;

  if (trace_id) memcpy(trace_id, tid, 16);
  if (span_id) memcpy(span_id, sid, 8);
  if (flags) *flags = fl;
  return 0;
bad:
  errno = EINVAL;
  return -1;
}
