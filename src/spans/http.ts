// Parsing of raw HTTP/1 heads captured by the probes. Defensive: the bytes come
// from another process and may be partial or truncated by the capture limit.

export interface RequestHead {
  method: string;
  target: string;
  version: string; // "1.1", "1.0"
  headers: Map<string, string>; // lowercase name -> first value
  /** The head ends inside the captured bytes (\r\n\r\n seen). */
  complete: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Returns the parsed head, or undefined when the bytes do not start with a
 * request line. `truncated` says the capture limit cut the buffer, so a missing
 * end of head is not evidence of a partial read.
 */
export function parseRequestHead(buf: Buffer, truncated: boolean): RequestHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  const complete = end >= 0;
  if (!complete && !truncated) return undefined; // partial read: hyper will parse again
  const text = buf.subarray(0, complete ? end : buf.length).toString('latin1');
  const lines = text.split('\r\n');
  const m = /^(\S+) ([^\x00-\x20\x7f]+) HTTP\/(\d\.\d)$/.exec(lines[0]);
  if (!m || !TOKEN.test(m[1])) return undefined;
  const headers = new Map<string, string>();
  // With a truncated capture the last line may be cut: drop it.
  const last = complete ? lines.length : lines.length - 1;
  for (let i = 1; i < last; i++) {
    const c = lines[i].indexOf(':');
    if (c <= 0) continue;
    // RFC 9112 §5.1: no whitespace between a field name and its colon (hyper
    // rejects such a request), so a name is never trimmed.
    const name = lines[i].slice(0, c).toLowerCase();
    // Optional whitespace around a value is spaces and tabs only (RFC 9110 §5.6.3).
    if (!headers.has(name)) headers.set(name, lines[i].slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, ''));
  }
  return { method: m[1], target: m[2], version: m[3], headers, complete };
}

export interface StatusLine {
  version: string;
  status: number;
}

export function parseStatusLine(buf: Buffer): StatusLine | undefined {
  const m = /^HTTP\/(\d\.\d) (\d{3})/.exec(buf.subarray(0, 32).toString('latin1'));
  if (!m) return undefined;
  return { version: m[1], status: parseInt(m[2], 10) };
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
export function normalizeMethod(m: string): { method: string; original?: string } {
  return KNOWN_METHODS.has(m) ? { method: m } : { method: '_OTHER', original: m };
}

/** Splits an origin-form or absolute-form request target into path and query. */
export function splitTarget(target: string): { path: string; query?: string } {
  let t = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(t);
  // An empty path after the authority is "/", also when a query follows.
  if (abs) { t = t.slice(abs[0].length); if (!t.startsWith('/')) t = '/' + t; }
  const hash = t.indexOf('#');
  if (hash >= 0) t = t.slice(0, hash);
  const q = t.indexOf('?');
  if (q < 0) return { path: t };
  return { path: t.slice(0, q), query: t.slice(q + 1) };
}

/** Host header -> server.address / server.port (IPv6 literals in brackets). */
export function splitHost(host: string, defaultPort: number): { address: string; port: number } | undefined {
  const h = host.trim();
  if (!h) return undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(h);
  if (v6) return { address: v6[1], port: v6[2] ? parseInt(v6[2], 10) : defaultPort };
  const c = h.lastIndexOf(':');
  if (c > 0 && /^\d+$/.test(h.slice(c + 1))) return { address: h.slice(0, c), port: parseInt(h.slice(c + 1), 10) };
  return { address: h, port: defaultPort };
}

// ---------------------------------------------------------------------------
// Byte-level request-head scan: the hot path. It finds the request line and
// the headers spans care about without making strings, so their bytes can go
// straight into the OTLP request (SpanRecord.addBytes). Same rules as
// parseRequestHead above, which stays as the readable reference (the unit
// tests check that both agree).

/** Range [start, end) of a header value in the scanned buffer; start < 0 = absent. */
export class HeadScan {
  complete = false;
  methodEnd = 0;
  targetStart = 0;
  targetEnd = 0;
  /** '1.1' / '1.0' as 11 / 10 (major*10 + minor). */
  version = 0;
  hostStart = -1; hostEnd = -1;
  uaStart = -1; uaEnd = -1;
  tpStart = -1; tpEnd = -1;
  tsStart = -1; tsEnd = -1;

  reset(): void {
    this.complete = false;
    this.methodEnd = this.targetStart = this.targetEnd = this.version = 0;
    this.hostStart = this.hostEnd = this.uaStart = this.uaEnd = -1;
    this.tpStart = this.tpEnd = this.tsStart = this.tsEnd = -1;
  }
}

// RFC 9110 tchar.
const TCHAR = new Uint8Array(256);
for (const ch of "!#$%&'*+-.^_`|~") TCHAR[ch.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) { TCHAR[c] = 1; TCHAR[c + 32] = 1; }

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Case-insensitive match of b[s..e) against a lowercase ASCII name. */
function nameIs(b: Uint8Array, s: number, e: number, name: string): boolean {
  if (e - s !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    let c = b[s + i];
    if (c >= 0x41 && c <= 0x5a) c += 32;
    if (c !== name.charCodeAt(i)) return false;
  }
  return true;
}

// Word-at-a-time byte search: typed-array loads cost about 10 instructions
// each in V8 here, a DataView u32 load about the same, so finding a byte four
// at a time ("has zero byte" bit tricks on little-endian words) is about four
// times cheaper than a byte loop.
const ONES = 0x01010101;
const HIGHS = 0x80808080;

/** Index of the first byte equal to c in [i, end), or end. */
function findByte(b: Uint8Array, v: DataView, i: number, end: number, c: number): number {
  const pat = c * ONES;
  for (; i + 4 <= end; i += 4) {
    const t = v.getUint32(i, true) ^ pat;
    const m = (t - ONES) & ~t & HIGHS;
    if (m !== 0) return i + ((31 - Math.clz32(m & -m)) >>> 3);
  }
  for (; i < end; i++) if (b[i] === c) return i;
  return end;
}

/** Index of the first byte below 0x21 (space, CR, LF, controls) or equal to 0x7f in [i, end), or end. */
function findTargetEnd(b: Uint8Array, v: DataView, i: number, end: number): number {
  for (; i + 4 <= end; i += 4) {
    const x = v.getUint32(i, true);
    const del = x ^ 0x7f7f7f7f;
    const m = (((x - 0x21212121) & ~x) | ((del - ONES) & ~del)) & HIGHS;
    if (m !== 0) return i + ((31 - Math.clz32(m & -m)) >>> 3);
  }
  for (; i < end; i++) if (b[i] <= 0x20 || b[i] === 0x7f) return i;
  return end;
}

const H_HOST = 0, H_UA = 1, H_TP = 2, H_TS = 3;

/** Records the value after the colon at `colon`, trimmed, up to `le`, as header `which`. */
function setValue(s: HeadScan, which: number, b: Uint8Array, colon: number, le: number): void {
  let vs = colon + 1;
  let ve = le;
  while (vs < ve && isSpace(b[vs])) vs++;
  while (ve > vs && isSpace(b[ve - 1])) ve--;
  switch (which) {
    case H_HOST: s.hostStart = vs; s.hostEnd = ve; break;
    case H_UA: s.uaStart = vs; s.uaEnd = ve; break;
    case H_TP: s.tpStart = vs; s.tpEnd = ve; break;
    default: s.tsStart = vs; s.tsEnd = ve;
  }
}

/**
 * Scans the request head in b[start..end), in one pass; every position it
 * reports is an index into b (so it can scan the ring buffer in place). `v`
 * is a DataView over the same bytes with the same offsets. Returns false when
 * the bytes do not start with a request line, or the head is incomplete and
 * not `truncated` (a partial read: hyper will parse again); `s.complete` then
 * says which. With a truncated capture the last, possibly cut, line is
 * ignored.
 */
export function scanRequestHead(b: Uint8Array, v: DataView, start: number, end: number, truncated: boolean, s: HeadScan): boolean {
  s.reset();
  // METHOD SP TARGET SP HTTP/d.d, then CR LF
  let p = start;
  while (p < end && TCHAR[b[p]] === 1) p++;
  const ts = p + 1;
  const q = ts < end ? findTargetEnd(b, v, ts, end) : end;
  const lineEnd = q + 9;
  if (p === start || b[p] !== 0x20 || q === ts || lineEnd > end || b[q] !== 0x20 ||
      b[q + 1] !== 0x48 || b[q + 2] !== 0x54 || b[q + 3] !== 0x54 || b[q + 4] !== 0x50 || b[q + 5] !== 0x2f ||
      b[q + 7] !== 0x2e || b[q + 6] < 0x30 || b[q + 6] > 0x39 || b[q + 8] < 0x30 || b[q + 8] > 0x39 ||
      (lineEnd < end && b[lineEnd] !== 0x0d && b[lineEnd] !== 0x0a)) {
    s.complete = Buffer.from(b.buffer, b.byteOffset + start, end - start).indexOf('\r\n\r\n') >= 0;
    return false;
  }
  s.methodEnd = p;
  s.targetStart = ts;
  s.targetEnd = q;
  s.version = (b[q + 6] - 0x30) * 10 + (b[q + 8] - 0x30);
  // Header lines, up to the empty line. A field name is followed by its colon
  // directly (RFC 9112 §5.1), so a wanted header is recognized by its first
  // letter and the colon at its length, without looking for the colon.
  let ls = lineEnd + 2;
  while (ls < end) {
    if (b[ls] === 0x0d) {
      if (ls + 1 < end && b[ls + 1] === 0x0a) s.complete = true;
      break;
    }
    const le = findByte(b, v, ls, end, 0x0d);
    if (le >= end) break; // cut by the capture limit (or a partial read)
    const first = b[ls] | 0x20;
    if (first === 0x68) {
      if (s.hostStart < 0 && ls + 4 < le && b[ls + 4] === 0x3a && nameIs(b, ls, ls + 4, 'host')) setValue(s, H_HOST, b, ls + 4, le);
    } else if (first === 0x75) {
      if (s.uaStart < 0 && ls + 10 < le && b[ls + 10] === 0x3a && nameIs(b, ls, ls + 10, 'user-agent')) setValue(s, H_UA, b, ls + 10, le);
    } else if (first === 0x74) {
      // Both tried: "tracestate::v" has a colon at the length of "traceparent" too.
      if (s.tpStart < 0 && ls + 11 < le && b[ls + 11] === 0x3a && nameIs(b, ls, ls + 11, 'traceparent')) setValue(s, H_TP, b, ls + 11, le);
      else if (s.tsStart < 0 && ls + 10 < le && b[ls + 10] === 0x3a && nameIs(b, ls, ls + 10, 'tracestate')) setValue(s, H_TS, b, ls + 10, le);
    }
    ls = le + 2;
  }
  return s.complete || truncated;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

/** The standard method b[start..end) names, as an interned string, or undefined. */
export function knownMethod(b: Uint8Array, start: number, end: number): string | undefined {
  const n = end - start;
  for (const m of METHODS) {
    if (m.length !== n || m.charCodeAt(0) !== b[start]) continue;
    let ok = true;
    for (let i = 1; i < n; i++) if (m.charCodeAt(i) !== b[start + i]) { ok = false; break; }
    if (ok) return m;
  }
  return undefined;
}

/** Host value b[s..e) -> [address end, port or -1]: splits "host:port" and "[v6]:port". */
export function splitHostBytes(b: Uint8Array, s: number, e: number): { addrStart: number; addrEnd: number; port: number } | undefined {
  if (s >= e) return undefined;
  if (b[s] === 0x5b) { // [v6]
    let r = s + 1;
    while (r < e && b[r] !== 0x5d) r++;
    if (r >= e) return undefined;
    const port = r + 1 < e && b[r + 1] === 0x3a ? digits(b, r + 2, e) : -1;
    if (r + 1 < e && port < 0) return undefined;
    return { addrStart: s + 1, addrEnd: r, port };
  }
  let c = e - 1;
  while (c > s && b[c] !== 0x3a) c--;
  if (c > s) {
    const port = digits(b, c + 1, e);
    if (port >= 0) return { addrStart: s, addrEnd: c, port };
  }
  return { addrStart: s, addrEnd: e, port: -1 };
}

function digits(b: Uint8Array, s: number, e: number): number {
  if (s >= e || e - s > 5) return -1;
  let v = 0;
  for (let i = s; i < e; i++) {
    const d = b[i] - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

// ---------------------------------------------------------------------------
// Sensitive query values. The semantic conventions (url.query) say query
// values of these keys SHOULD be replaced by "REDACTED" by default: they are
// signatures and access keys of pre-signed URLs (S3, GCS, Azure SAS).

export const SENSITIVE_QUERY_KEYS = ['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature'];
const SENSITIVE = SENSITIVE_QUERY_KEYS.map((k) => Buffer.from(k, 'latin1'));
const SENSITIVE_LENGTHS = new Uint8Array(32);
for (const k of SENSITIVE) SENSITIVE_LENGTHS[k.length] = 1;

function sensitiveKey(b: Uint8Array, s: number, e: number): boolean {
  const n = e - s;
  if (n >= 32 || SENSITIVE_LENGTHS[n] === 0) return false;
  for (const k of SENSITIVE) {
    if (k.length !== n) continue;
    let i = 0;
    while (i < n && b[s + i] === k[i]) i++;
    if (i === n) return true;
  }
  return false;
}

/**
 * The query b[start..end) with the values of sensitive keys replaced by
 * REDACTED, or undefined when it has none (the common case: no string is
 * made, the bytes can be used as they are).
 */
export function redactedQuery(b: Uint8Array, start: number, end: number): string | undefined {
  let out: string | undefined;
  let copied = start;
  let p = start;
  while (p <= end) {
    let k = p;
    while (k < end && b[k] !== 0x3d && b[k] !== 0x26) k++; // '=' or '&'
    let next = k;
    while (next < end && b[next] !== 0x26) next++;
    if (k < end && b[k] === 0x3d && next > k + 1 && sensitiveKey(b, p, k)) {
      out = (out ?? '') + Buffer.from(b.buffer, b.byteOffset + copied, k + 1 - copied).toString('latin1') + 'REDACTED';
      copied = next;
    }
    p = next + 1;
  }
  if (out === undefined) return undefined;
  return out + Buffer.from(b.buffer, b.byteOffset + copied, end - copied).toString('latin1');
}

/** The same for a query string (rare paths: absolute-form targets). */
export function redactQueryString(q: string): string {
  const b = Buffer.from(q, 'latin1');
  return redactedQuery(b, 0, b.length) ?? q;
}
