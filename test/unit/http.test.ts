// HTTP/1 head parsing (src/spans/http1.ts) and W3C trace context
// (src/spans/tracecontext.ts).
import { describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
// The module object itself (not an import-star copy), so the mock reaches tracecontext.ts.
import crypto = require('node:crypto');
import { normalizeMethod, parseRequestHead, parseStatusLine, splitHost, splitTarget, HeadScan, scanRequestHead } from '../../src/spans/http';
import { newSpanId, newTraceId, parseTraceParent, parseTraceParentBytes } from '../../src/spans/tracecontext';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

// Runs first in this file, before anything has filled the id pool, so the
// mocked randomBytes supplies the pool.
describe('id generation', () => {
  test('all-zero ids from the random source are skipped', () => {
    // Shorter than asked for: the generator must use what it got, then refill
    // from the real source (so later tests see real random ids).
    const pool = Buffer.alloc(56, 0x5a);
    pool.fill(0, 0, 16);          // first trace id candidate: zero
    pool.fill(0x01, 16, 32);      // second: accepted
    pool.fill(0, 32, 40);         // first span id candidate: zero
    pool.fill(0xab, 40, 48);      // second: accepted
    const m = mock.method(crypto, 'randomBytes', (n: number) => { assert.equal(n, 4096); return Buffer.from(pool); });
    try {
      assert.equal(newTraceId(), '01'.repeat(16));
      assert.equal(newSpanId(), 'ab'.repeat(8));
      assert.equal(newSpanId(), '5a'.repeat(8));
      assert.equal(m.mock.callCount(), 1);
    } finally {
      m.mock.restore();
    }
    assert.notEqual(newSpanId(), '5a'.repeat(8));
  });

  test('ids are lowercase hex of the right length, non-zero and distinct across pool refills', () => {
    const traces = new Set<string>();
    const spans = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const t = newTraceId();
      const s = newSpanId();
      assert.match(t, /^[0-9a-f]{32}$/);
      assert.match(s, /^[0-9a-f]{16}$/);
      assert.doesNotMatch(t, /^0+$/);
      assert.doesNotMatch(s, /^0+$/);
      traces.add(t);
      spans.add(s);
    }
    assert.equal(traces.size, 2000);
    assert.equal(spans.size, 2000);
  });
});

describe('parseRequestHead', () => {
  test('complete head: request line, lowercase header names, first value wins, values trimmed', () => {
    const h = parseRequestHead(b('GET /a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent:  curl/8.5.0 \r\nX-Dup: one\r\nx-dup: two\r\n\r\nbody bytes'), false);
    assert.deepEqual(h, {
      method: 'GET', target: '/a/b?x=1', version: '1.1', complete: true,
      headers: new Map([['host', 'example.com:8080'], ['user-agent', 'curl/8.5.0'], ['x-dup', 'one']]),
    });
  });

  test('header names are matched case-insensitively', () => {
    const h = parseRequestHead(b('POST / HTTP/1.0\r\nHOST: a.example\r\nuSeR-aGeNt: UA/1\r\nTraceParent: v\r\n\r\n'), false);
    assert.ok(h);
    assert.equal(h.version, '1.0');
    assert.deepEqual([...h.headers], [['host', 'a.example'], ['user-agent', 'UA/1'], ['traceparent', 'v']]);
  });

  test('lines without a name or colon are skipped; values keep inner colons', () => {
    const h = parseRequestHead(b('GET / HTTP/1.1\r\n: novalue\r\nnocolon\r\nHost: [::1]:8080\r\n\r\n'), false);
    assert.ok(h);
    assert.deepEqual([...h.headers], [['host', '[::1]:8080']]);
  });

  test('a partial head (no end, not truncated) is undefined: hyper parses again', () => {
    assert.equal(parseRequestHead(b('GET / HTTP/1.1\r\nHost: a\r\n'), false), undefined);
    assert.equal(parseRequestHead(b('GET / HTTP/1.1\r\nHost: a\r\n\r'), false), undefined);
    assert.equal(parseRequestHead(b(''), false), undefined);
  });

  test('a truncated capture keeps complete header lines and drops the cut last one', () => {
    const h = parseRequestHead(b('GET /x HTTP/1.1\r\nHost: h.example\r\nUser-Agent: Mozil'), true);
    assert.deepEqual(h, { method: 'GET', target: '/x', version: '1.1', complete: false, headers: new Map([['host', 'h.example']]) });
    // Cut right after a CRLF: the last (empty) piece is what gets dropped.
    const h2 = parseRequestHead(b('GET /x HTTP/1.1\r\nHost: h.example\r\n'), true);
    assert.ok(h2);
    assert.deepEqual([...h2.headers], [['host', 'h.example']]);
    // Cut in the request line: nothing to report.
    assert.equal(parseRequestHead(b('GET /very/long/pa'), true), undefined);
  });

  test('a truncated capture that still holds the end of head is complete and keeps its last header', () => {
    const h = parseRequestHead(b('GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: ua\r\n\r\nGET /next HT'), true);
    assert.ok(h);
    assert.equal(h.complete, true);
    assert.deepEqual([...h.headers], [['host', 'a'], ['user-agent', 'ua']]);
  });

  test('absolute-form targets are kept verbatim', () => {
    const h = parseRequestHead(b('GET http://example.com:81/p?q=1 HTTP/1.1\r\nHost: example.com:81\r\n\r\n'), false);
    assert.ok(h);
    assert.equal(h.target, 'http://example.com:81/p?q=1');
  });

  test('non-request first lines are undefined', () => {
    for (const s of [
      'HTTP/1.1 200 OK\r\n\r\n',      // a response
      'GET / HTTP/2\r\n\r\n',         // not d.d
      'G(T / HTTP/1.1\r\n\r\n',       // method is not a token
      'GET  / HTTP/1.1\r\n\r\n',      // two spaces
      'GET / HTTP/1.1 \r\n\r\n',      // trailing space
      '\r\n\r\n',
    ]) assert.equal(parseRequestHead(b(s), false), undefined, JSON.stringify(s));
  });
});

describe('splitTarget', () => {
  test('origin-form', () => {
    assert.deepEqual(splitTarget('/'), { path: '/' });
    assert.deepEqual(splitTarget('/a/b'), { path: '/a/b' });
    assert.deepEqual(splitTarget('/a?x=1&y=2'), { path: '/a', query: 'x=1&y=2' });
    assert.deepEqual(splitTarget('/a?'), { path: '/a', query: '' });
    assert.deepEqual(splitTarget('/a?x=1?z'), { path: '/a', query: 'x=1?z' });
  });

  test('fragments are removed, a ? inside the fragment is not a query', () => {
    assert.deepEqual(splitTarget('/a?x=1#frag'), { path: '/a', query: 'x=1' });
    assert.deepEqual(splitTarget('/a#frag?notquery'), { path: '/a' });
  });

  test('absolute-form: scheme and authority are removed, an empty path is /', () => {
    assert.deepEqual(splitTarget('http://example.com:8080/p/q?x=1#f'), { path: '/p/q', query: 'x=1' });
    assert.deepEqual(splitTarget('https://example.com'), { path: '/' });
    assert.deepEqual(splitTarget('http://example.com?x=1'), { path: '/', query: 'x=1' });
    assert.deepEqual(splitTarget('http://example.com#f'), { path: '/' });
    assert.deepEqual(splitTarget('http://user@[::1]:80/v6'), { path: '/v6' });
  });

  test('asterisk-form and authority-form pass through as the path', () => {
    assert.deepEqual(splitTarget('*'), { path: '*' });
    assert.deepEqual(splitTarget('example.com:443'), { path: 'example.com:443' });
  });
});

describe('splitHost', () => {
  test('name and port', () => {
    assert.deepEqual(splitHost('example.com:8080', 80), { address: 'example.com', port: 8080 });
    assert.deepEqual(splitHost('  example.com:8080 ', 80), { address: 'example.com', port: 8080 });
    assert.deepEqual(splitHost('10.0.0.1:3000', 80), { address: '10.0.0.1', port: 3000 });
  });

  test('missing port gives the default', () => {
    assert.deepEqual(splitHost('example.com', 80), { address: 'example.com', port: 80 });
    assert.deepEqual(splitHost('example.com', 443), { address: 'example.com', port: 443 });
    assert.deepEqual(splitHost('example.com:', 80), { address: 'example.com:', port: 80 });
  });

  test('IPv6 literals in brackets', () => {
    assert.deepEqual(splitHost('[::1]:8080', 80), { address: '::1', port: 8080 });
    assert.deepEqual(splitHost('[2001:db8::7]', 80), { address: '2001:db8::7', port: 80 });
  });

  test('empty host is undefined', () => {
    assert.equal(splitHost('', 80), undefined);
    assert.equal(splitHost('   ', 80), undefined);
  });
});

describe('parseStatusLine', () => {
  test('version and status', () => {
    assert.deepEqual(parseStatusLine(b('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n')), { version: '1.1', status: 200 });
    assert.deepEqual(parseStatusLine(b('HTTP/1.0 503 Service Unavailable\r\n')), { version: '1.0', status: 503 });
    assert.deepEqual(parseStatusLine(b('HTTP/1.1 404')), { version: '1.1', status: 404 });
  });

  test('not a status line', () => {
    assert.equal(parseStatusLine(b('HTTP/1.1 20')), undefined);
    assert.equal(parseStatusLine(b('GET / HTTP/1.1\r\n')), undefined);
    assert.equal(parseStatusLine(b('http/1.1 200 OK')), undefined);
    assert.equal(parseStatusLine(b('')), undefined);
  });
});

describe('normalizeMethod', () => {
  test('known methods pass, others become _OTHER with the original', () => {
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']) assert.deepEqual(normalizeMethod(m), { method: m });
    assert.deepEqual(normalizeMethod('PROPFIND'), { method: '_OTHER', original: 'PROPFIND' });
    assert.deepEqual(normalizeMethod('get'), { method: '_OTHER', original: 'get' });
  });
});

describe('parseTraceParent', () => {
  const T = '4bf92f3577b34da6a3ce929d0e0e4736';
  const S = '00f067aa0ba902b7';

  test('valid version 00', () => {
    assert.deepEqual(parseTraceParent(`00-${T}-${S}-01`), { traceId: T, spanId: S, flags: 1 });
    assert.deepEqual(parseTraceParent(`00-${T}-${S}-00`), { traceId: T, spanId: S, flags: 0 });
    assert.deepEqual(parseTraceParent(`00-${T}-${S}-09`), { traceId: T, spanId: S, flags: 9 });
    assert.deepEqual(parseTraceParent(` 00-${T}-${S}-01 `), { traceId: T, spanId: S, flags: 1 });
  });

  test('future versions may carry extra fields', () => {
    assert.deepEqual(parseTraceParent(`01-${T}-${S}-01`), { traceId: T, spanId: S, flags: 1 });
    assert.deepEqual(parseTraceParent(`cc-${T}-${S}-01-what-the-future-holds`), { traceId: T, spanId: S, flags: 1 });
    assert.equal(parseTraceParent(`01-${T}-${S}-01x`), undefined); // extra data must follow a dash
  });

  test('invalid values', () => {
    for (const v of [
      undefined, '',
      `00-${T.toUpperCase()}-${S}-01`,      // uppercase hex
      `00-${T}-${S.toUpperCase()}-01`,
      `00-${T}-${S}-0A`,
      `0A-${T}-${S}-01`,
      `00-${'0'.repeat(32)}-${S}-01`,       // all-zero trace id
      `00-${T}-${'0'.repeat(16)}-01`,       // all-zero span id
      `ff-${T}-${S}-01`,                    // forbidden version
      `00-${T}-${S}-01-extra`,              // version 00 has exactly four fields
      `00-${T}-${S}-01-`,
      `00-${T.slice(1)}-${S}-01`,           // short ids
      `00-${T}-${S.slice(1)}-01`,
      `00-${T}-${S}-1`,
      `00-${T}-${S}`,
      `00_${T}_${S}_01`,
      `00-${T}-${S}-zz`,
    ]) assert.equal(parseTraceParent(v), undefined, String(v));
  });
});

describe('scanRequestHead agrees with parseRequestHead', () => {
  const heads: [string, boolean][] = [
    ['GET /a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent:  curl/8.5.0 \r\nX-Dup: one\r\nx-dup: two\r\n\r\nbody bytes', false],
    ['POST / HTTP/1.0\r\nHOST: a.example\r\nuSeR-aGeNt: UA/1\r\nTraceParent: v\r\nTRACESTATE: k=v\r\n\r\n', false],
    ['GET / HTTP/1.1\r\n: novalue\r\nnocolon\r\nHost: [::1]:8080\r\n\r\n', false],
    ['GET / HTTP/1.1\r\nHost: a\r\n', false],
    ['GET / HTTP/1.1\r\nHost: a\r\n\r', false],
    ['', false],
    ['GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: cut', true],
    ['GET / HTTP/1.1\r\nhost: first\r\nHost: second\r\n\r\n', false],
    ['G@T / HTTP/1.1\r\n\r\n', false],
    ['GET  / HTTP/1.1\r\n\r\n', false],
    ['GET / HTTP/1.1 \r\n\r\n', false],
    ['GET / HTTP/11\r\n\r\n', false],
    ['PROPFIND /dav HTTP/1.1\r\nHost: h\r\n\r\n', false],
    ['GET /x HTTP/2.0\r\nUser-Agent:\r\n\r\n', false],
    ['GET /x HTTP/1.1\r\nHost: \t spaced \t\r\n\r\n', false],
    ['GET /x HTTP/1.1\r\nHost : not-a-host-header\r\nHOST:yes\r\n\r\n', false],
    ['GET /a\x7fb HTTP/1.1\r\n\r\n', false],
    ['GET /quite/a/long/path/to/see/the/word/loop/work?and=a&long=query HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\n' +
     'Accept-Encoding: gzip, deflate, br\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36\r\nCookie: a=b; c=d\r\n' +
     'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ntracestate: k=v\r\n\r\n', false],
    ['GET / HTTP/1.1\r\nX: 1\r\nHost: cut-her', true],
  ];
  const pick = (b: Buffer, s: number, e: number) => (s < 0 ? undefined : b.toString('latin1', s, e));
  for (const [text, truncated] of heads) {
    test(JSON.stringify(text).slice(0, 60), () => {
      const buf = Buffer.from(text, 'latin1');
      const ref = parseRequestHead(buf, truncated);
      const sc = new HeadScan();
      // Scanned in place inside a larger buffer, as the agent scans the ring.
      const big = Buffer.concat([Buffer.from('xxxxxxx'), buf, Buffer.from('yyyy')]);
      const ok = scanRequestHead(big, new DataView(big.buffer, big.byteOffset, big.length), 7, 7 + buf.length, truncated, sc);
      assert.equal(ok, ref !== undefined);
      if (!ref) return;
      const at = (x: number) => (x < 0 ? x : x - 7);
      for (const k of ['methodEnd', 'targetStart', 'targetEnd', 'hostStart', 'hostEnd', 'uaStart', 'uaEnd', 'tpStart', 'tpEnd', 'tsStart', 'tsEnd'] as const) sc[k] = at(sc[k]);
      assert.deepEqual({
        method: buf.toString('latin1', 0, sc.methodEnd),
        target: buf.toString('latin1', sc.targetStart, sc.targetEnd),
        version: `${Math.floor(sc.version / 10)}.${sc.version % 10}`,
        complete: sc.complete,
        host: pick(buf, sc.hostStart, sc.hostEnd), ua: pick(buf, sc.uaStart, sc.uaEnd),
        tp: pick(buf, sc.tpStart, sc.tpEnd), ts: pick(buf, sc.tsStart, sc.tsEnd),
      }, {
        method: ref.method, target: ref.target, version: ref.version, complete: ref.complete,
        host: ref.headers.get('host'), ua: ref.headers.get('user-agent'),
        tp: ref.headers.get('traceparent'), ts: ref.headers.get('tracestate'),
      });
    });
  }
});

describe('parseTraceParentBytes agrees with parseTraceParent', () => {
  const T = '4bf92f3577b34da6a3ce929d0e0e4736';
  const S = '00f067aa0ba902b7';
  for (const v of [`00-${T}-${S}-01`, `00-${T}-${S}-00`, `01-${T}-${S}-01`, `cc-${T}-${S}-01-future`, `01-${T}-${S}-01x`,
    `ff-${T}-${S}-01`, `00-${T}-${S}-01-x`, `00-${'0'.repeat(32)}-${S}-01`, `00-${T}-${'0'.repeat(16)}-01`, `00-${T.toUpperCase()}-${S}-01`,
    `00-${T}-${S}-0`, `0-${T}-${S}-01`, `00_${T}-${S}-01`,
    // every digit position with every character class the word-at-a-time decoder must tell apart
    ...[...'09af/:`gAF \x80'].flatMap((c) => [3, 10, 20, 34, 36, 43, 51].map((i) => { const v = `00-${T}-${S}-01`; return v.slice(0, i) + c + v.slice(i + 1); })),
    `00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff`, `00-0123456789abcdef0123456789abcdef-fedcba9876543210-01`]) {
    test(v, () => {
      const ref = parseTraceParent(v);
      const out = { t0: 0, t1: 0, t2: 0, t3: 0, p0: 0, p1: 0 };
      const b = Buffer.from(v, 'latin1');
      const flags = parseTraceParentBytes(b, new DataView(b.buffer, b.byteOffset, b.length), 0, b.length, out);
      if (!ref) { assert.equal(flags, -1); return; }
      const hex = (w: number) => w.toString(16).padStart(8, '0');
      assert.deepEqual({ traceId: hex(out.t0) + hex(out.t1) + hex(out.t2) + hex(out.t3), spanId: hex(out.p0) + hex(out.p1), flags }, ref);
    });
  }
});
