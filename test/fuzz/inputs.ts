// Mutation fuzzing of the byte-level readers that take input from traced
// processes: the HTTP request-head scanner (differential: it must agree with
// the readable reference parser on every input), the traceparent decoder
// (against its string twin), the query redactor, and the Rust demangler on
// mutated real symbol names. Deterministic: a case is (seed, index); what a
// run finds is kept in corpus/ and replayed by test/unit/fuzz-regressions.test.ts.
import { parseRequestHead, scanRequestHead, HeadScan, redactedQuery } from '../../src/spans/http';
import { parseTraceParent, parseTraceParentBytes } from '../../src/spans/tracecontext';
import { demangle } from '../../src/binary/demangle';
import { prng } from './mutate';

const TOKENS = ['\r\n', '\r\n\r\n', ':', ' ', '\t', 'HTTP/1.1', 'HTTP/1.0', 'Host:', 'host: ', 'traceparent: ', 'tracestate: ', 'User-Agent:',
  '\x00', '\x7f', '\x80', '\xff', '?', '#', '&', '=', 'sig=', '%', '[::1]:', ':65536', '00-', '-01', '\r', '\n'];

/** Mutation `i` of one of `seeds`: the head and whether the capture was cut. */
export function mutateHead(seeds: string[], seed: number, i: number): { text: string; truncated: boolean } {
  const r = prng(seed * 7919 + i);
  let s = seeds[Math.floor(r() * seeds.length)];
  const n = 1 + Math.floor(r() * 6);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (s.length + 1));
    const op = r();
    if (op < 0.3) s = s.slice(0, at) + TOKENS[Math.floor(r() * TOKENS.length)] + s.slice(at);
    else if (op < 0.5) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 8));
    else if (op < 0.7) s = s.slice(0, at) + String.fromCharCode(Math.floor(r() * 256)) + s.slice(at + 1);
    else if (op < 0.85) { const len = Math.floor(r() * 16); s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at); }
    else s = s.slice(0, at);
  }
  return { text: s, truncated: r() < 0.3 };
}

/** undefined when the scanner and the reference agree on `text`; else what differs. */
export function checkHead(text: string, truncated: boolean): string | undefined {
  const buf = Buffer.from(text, 'latin1');
  const ref = parseRequestHead(buf, truncated);
  const sc = new HeadScan();
  const pad = 5;
  const big = Buffer.concat([Buffer.from('zzzzz'), buf, Buffer.from('\r\n\r\nyyyy')]);
  const ok = scanRequestHead(big, new DataView(big.buffer, big.byteOffset, big.length), pad, pad + buf.length, truncated, sc);
  // Every position the scan reports lies inside the head it was given.
  if (ok) for (const k of ['methodEnd', 'targetStart', 'targetEnd', 'hostStart', 'hostEnd', 'uaStart', 'uaEnd', 'tpStart', 'tpEnd', 'tsStart', 'tsEnd'] as const) {
    const x = sc[k];
    if (x !== -1 && (x < pad || x > pad + buf.length)) return `${k} = ${x - pad} is outside the head (${buf.length} bytes)`;
  }
  // The two parsers are meant to agree on heads whose lines all end in CRLF;
  // a bare CR or LF (which hyper refuses with 400) is read differently by the
  // two, and only the above must hold for it (see the README, Known limits).
  if (/\r(?!\n)|(?<!\r)\n/.test(text)) return undefined;
  if (ok !== (ref !== undefined)) return `scan says ${ok}, reference says ${ref !== undefined}`;
  if (!ref) return undefined;
  const pick = (s: number, e: number) => (s < 0 ? undefined : big.toString('latin1', s, e));
  const got = {
    method: pick(pad, sc.methodEnd), target: pick(sc.targetStart, sc.targetEnd), version: `${Math.floor(sc.version / 10)}.${sc.version % 10}`,
    complete: sc.complete, host: pick(sc.hostStart, sc.hostEnd), ua: pick(sc.uaStart, sc.uaEnd), tp: pick(sc.tpStart, sc.tpEnd), ts: pick(sc.tsStart, sc.tsEnd),
  };
  const want = {
    method: ref.method, target: ref.target, version: ref.version, complete: ref.complete,
    host: ref.headers.get('host'), ua: ref.headers.get('user-agent'), tp: ref.headers.get('traceparent'), ts: ref.headers.get('tracestate'),
  };
  const a = JSON.stringify(got), b = JSON.stringify(want);
  return a === b ? undefined : `scan ${a} != reference ${b}`;
}

export function checkTraceparent(v: string): string | undefined {
  const ref = parseTraceParent(v);
  // The scanner hands over values trimmed of spaces and tabs and cut at CR;
  // control characters inside one (a bare LF) are outside the comparison.
  const out = { t0: 0, t1: 0, t2: 0, t3: 0, p0: 0, p1: 0 };
  const b = Buffer.from(v, 'latin1');
  const flags = parseTraceParentBytes(b, new DataView(b.buffer, b.byteOffset, b.length), 0, b.length, out);
  if (/[\x00-\x20\x7f]/.test(v)) return undefined; // decoded without throwing: all that is asked of it
  if (!ref) return flags === -1 ? undefined : `bytes decoder accepted what the reference refuses (${flags})`;
  const hex = (w: number) => (w >>> 0).toString(16).padStart(8, '0');
  const got = JSON.stringify({ traceId: hex(out.t0) + hex(out.t1) + hex(out.t2) + hex(out.t3), spanId: hex(out.p0) + hex(out.p1), flags });
  const want = JSON.stringify({ traceId: ref.traceId, spanId: ref.spanId, flags: ref.flags });
  return got === want ? undefined : `${got} != ${want}`;
}

export function checkRedaction(q: string): string | undefined {
  const b = Buffer.from(q, 'latin1');
  const red = redactedQuery(b, 0, b.length);
  if (red === undefined) return undefined;
  // Same parameters, in order; only values of the listed keys changed.
  const p1 = q.split('&'), p2 = red.split('&');
  if (p1.length !== p2.length) return `parameter count changed: ${JSON.stringify(red)}`;
  return undefined;
}

/** Mutates a real mangled name (legacy _ZN... or v0 _R...). */
export function mutateSymbol(names: string[], seed: number, i: number): string {
  const r = prng(seed * 104729 + i);
  let s = names[Math.floor(r() * names.length)];
  const n = 1 + Math.floor(r() * 4);
  const chars = '0123456789_$.EFNRSTIUVWXYZabcdefghijklmnopqrstuvwxyzB';
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (s.length + 1));
    const op = r();
    if (op < 0.4) s = s.slice(0, at) + chars[Math.floor(r() * chars.length)] + s.slice(at + 1);
    else if (op < 0.6) s = s.slice(0, at) + String(Math.floor(r() * 1e6)) + s.slice(at);
    else if (op < 0.8) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(r() * 4));
    else s = s.slice(0, at) + s.slice(Math.max(0, at - 8), at) + s.slice(at);
  }
  return s;
}

export function checkDemangle(s: string): string | undefined {
  const t0 = Date.now();
  const d = demangle(s);
  const ms = Date.now() - t0;
  if (ms > 200) return `took ${ms} ms`;
  if (d !== null && typeof d !== 'string') return `returned ${typeof d}`;
  return undefined;
}
