// hyper HTTP/1 server events -> SERVER spans (src/libs/hyper-h1-server/spans.ts),
// driven by synthetic decoded events.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { H1RequestEvent, H1ResponseEvent } from '../../src/libs/hyper-h1-server/decode';
import { H1_SERVER_LAYOUTS } from '../../src/libs/hyper-h1-server/layouts';
import { H1ServerStats, HyperH1ServerSpans, PENDING_MAX_AGE_NS, PENDING_MAX } from '../../src/libs/hyper-h1-server/spans';

const { constants: CONSTANTS, kinds: EVENT_KIND } = H1_SERVER_LAYOUTS;
import type { AgentSpan } from '../../src/spans/types';

const PID = 4242;
const SCOPE = 'otel-rust-agent/hyper-test';
const WALL = 1_700_000_000_000_000_000n; // added by the fake toUnixNano

// Per-connection addresses (pointer-like: user-space, 8-byte aligned). The
// connection key (`&mut conn.state.method`) sits at ctx word 2 and msg word 1;
// the other pointer words stand for unrelated per-request/per-connection data.
const CONN_A = 0x5555_0000_1000n;
const CONN_B = 0x5555_0000_2000n;
const CONN_C = 0x5555_0000_3000n;
const CONN_D = 0x5555_0000_4000n;

function ctxFor(conn: bigint, other: bigint = conn + 0x100n): bigint[] {
  // words: other pointer, a small integer, the key, an odd (non-pointer) value, zeros
  const w = [other, 100n, conn, conn + 0x41n, 0n, 0n, 0n, 1n];
  assert.equal(w.length, CONSTANTS.H1_CTX_WORDS);
  return w;
}

function msgFor(conn: bigint): bigint[] {
  // a pointer that is in no ParseContext, the key, then scalars
  const w = [0x7fff_0000_8000n, conn, 2n, 0n, 1n, 0n];
  assert.equal(w.length, CONSTANTS.H1_MSG_WORDS);
  return w;
}

function req(tsNs: bigint, ctxWords: bigint[], head: string | Buffer, opts: { pid?: number; bufLen?: number; instance?: number } = {}): H1RequestEvent {
  const buf = typeof head === 'string' ? Buffer.from(head, 'latin1') : head;
  return {
    type: 'h1.request',
    hdr: { kind: EVENT_KIND.H1_SERVER_REQUEST, probeId: 1, pid: opts.pid ?? PID, tid: 7, cpu: 0, instance: opts.instance ?? 0, tsNs },
    bufAddr: 0x6000_0000_0000,
    ctxWords: ctxWords.map(Number),
    taskId: 0,
    bufLen: opts.bufLen ?? buf.length,
    head: buf,
  };
}

function res(tsNs: bigint, msgWords: bigint[], statusLine: string, opts: { pid?: number; status?: number; instance?: number } = {}): H1ResponseEvent {
  return {
    type: 'h1.response',
    hdr: { kind: EVENT_KIND.H1_SERVER_RESPONSE, probeId: 2, pid: opts.pid ?? PID, tid: 7, cpu: 0, instance: opts.instance ?? 0, tsNs },
    dstAddr: 0x6000_0000_1000,
    msgWords: msgWords.map(Number),
    entryTsNs: tsNs - 10n,
    written: statusLine.length,
    status: opts.status ?? 0,
    statusLine: Buffer.from(statusLine, 'latin1'),
  };
}

function setup(): { spans: AgentSpan[]; s: HyperH1ServerSpans } {
  const spans: AgentSpan[] = [];
  const s = new HyperH1ServerSpans({ toUnixNano: (mono) => mono + WALL, clock: { hi: Number(WALL >> 32n), lo: Number(WALL & 0xffffffffn) },
    emit: (span) => spans.push(span.toAgentSpan()), libraryActive: () => true }, SCOPE);
  return { spans, s };
}

function stats(over: Partial<H1ServerStats>): H1ServerStats {
  return { requests: 0, bpfIds: 0, bpfIdMismatch: 0, partialHeads: 0, unparsable: 0, spans: 0, abandoned: 0, unmatchedResponses: 0, notSampled: 0, expired: 0, h2Prefaces: 0, ...over };
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: localhost:3000\r\n${extra}\r\n`;
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n';

describe('request/response pairing', () => {
  test('two hyper versions in one binary: key positions are learned per instance', () => {
    const { spans, s } = setup();
    // Instance 0 (say hyper 1.x): key at ctx word 2, msg word 1 (ctxFor/msgFor).
    // Instance 1 (say hyper 0.14): key at ctx word 5, msg word 3.
    const ctx1 = (conn: bigint) => [0n, 7n, 0x7ffe_0000_0010n + (conn & 0xfffn), 3n, 0n, conn, 0n, 0n];
    const msg1 = (conn: bigint) => [5n, 0x7ffd_0000_0000n, 0n, conn, 0n, 0n];
    for (let round = 0; round < 3; round++) {
      s.onRequest(req(BigInt(1000 + round * 100), ctxFor(CONN_A), get(`/v1/${round}`), { instance: 0 }));
      s.onRequest(req(BigInt(1010 + round * 100), ctx1(CONN_B), get(`/v014/${round}`), { instance: 1 }));
      s.onResponse(res(BigInt(1050 + round * 100), msg1(CONN_B), OK, { instance: 1 }));
      s.onResponse(res(BigInt(1060 + round * 100), msgFor(CONN_A), OK, { instance: 0 }));
    }
    assert.deepEqual(spans.map((x) => x.attributes['url.path']), ['/v014/0', '/v1/0', '/v014/1', '/v1/1', '/v014/2', '/v1/2']);
    assert.deepEqual(s.counts, stats({ requests: 6, spans: 6 }));
  });

  test('requests that never get a response expire after PENDING_MAX_AGE_NS', () => {
    const { spans, s } = setup();
    s.onRequest(req(1_000n, ctxFor(CONN_A), get('/gone')));
    s.onRequest(req(PENDING_MAX_AGE_NS, ctxFor(CONN_B), get('/fresh')));
    s.expire(PENDING_MAX_AGE_NS + 2_000n);
    assert.equal(s.pendingCount(), 1);
    assert.equal(s.counts.expired, 1);
    s.onResponse(res(PENDING_MAX_AGE_NS + 3_000n, msgFor(CONN_B), OK));
    assert.deepEqual(spans.map((x) => x.attributes['url.path']), ['/fresh']);
  });

  test('at most PENDING_MAX requests wait per process; the oldest goes first', () => {
    const { s } = setup();
    for (let i = 0; i <= PENDING_MAX; i++) s.onRequest(req(BigInt(i), ctxFor(0x5555_1000_0000n + BigInt(i) * 0x1000n), get(`/${i}`)));
    assert.equal(s.pendingCount(), PENDING_MAX);
    assert.equal(s.counts.expired, 1);
  });

  test('a status read at encode entry wins over (absent) status-line bytes', () => {
    const { spans, s } = setup();
    s.onRequest(req(1_000n, ctxFor(CONN_A), get('/x')));
    s.onResponse(res(2_000n, msgFor(CONN_A), '', { status: 503 }));
    assert.equal(spans.length, 1);
    assert.equal(spans[0].attributes['http.response.status_code'], 503);
    assert.equal(spans[0].attributes['error.type'], '503');
    assert.deepEqual(spans[0].status, { code: 'ERROR' });
  });

  test('one pair gives exactly one SERVER span with the semantic-convention attributes', () => {
    const { spans, s } = setup();
    s.onRequest(req(1_000n, ctxFor(CONN_A), 'GET /api/items?id=7&x=y HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: test-agent/1.0\r\nAccept: */*\r\n\r\n'));
    assert.equal(spans.length, 0);
    assert.equal(s.pendingCount(), 1);
    s.onResponse(res(5_000n, msgFor(CONN_A), OK));
    assert.equal(spans.length, 1);
    const sp = spans[0];
    assert.match(sp.traceId, /^[0-9a-f]{32}$/);
    assert.match(sp.spanId, /^[0-9a-f]{16}$/);
    assert.deepEqual(sp, {
      traceId: sp.traceId,
      spanId: sp.spanId,
      parentSpanId: undefined,
      parentIsRemote: undefined,
      traceFlags: 1,
      traceState: undefined,
      name: 'GET',
      kind: 'SERVER',
      startTimeUnixNano: WALL + 1_000n,
      endTimeUnixNano: WALL + 5_000n,
      attributes: {
        'http.request.method': 'GET',
        'url.path': '/api/items',
        'url.query': 'id=7&x=y',
        'url.scheme': 'http',
        'server.address': 'example.test',
        'server.port': 8080,
        'user_agent.original': 'test-agent/1.0',
        'network.protocol.version': '1.1',
        'http.response.status_code': 200,
      },
      status: { code: 'UNSET' },
      pid: PID,
      scope: SCOPE,
    });
    assert.deepEqual(s.counts, stats({ requests: 1, spans: 1 }));
    assert.equal(s.pendingCount(), 0);
  });

  test('no query, no user agent, host without port: those attributes are absent, port defaults to 80', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), 'DELETE /x HTTP/1.0\r\nHost: svc\r\n\r\n'));
    s.onResponse(res(20n, msgFor(CONN_A), 'HTTP/1.0 204 No Content\r\n'));
    assert.equal(spans.length, 1);
    assert.equal(spans[0].name, 'DELETE');
    assert.deepEqual(spans[0].attributes, {
      'http.request.method': 'DELETE', 'url.path': '/x', 'url.scheme': 'http', 'server.address': 'svc', 'server.port': 80,
      'network.protocol.version': '1.0', 'http.response.status_code': 204,
    });
  });

  test('an unknown method is _OTHER with the original, and the span is named HTTP', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), 'PROPFIND /dav HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n'));
    s.onResponse(res(20n, msgFor(CONN_A), 'HTTP/1.1 207 Multi-Status\r\n'));
    assert.equal(spans.length, 1);
    assert.equal(spans[0].name, 'HTTP');
    assert.deepEqual(spans[0].attributes, {
      'http.request.method': '_OTHER', 'http.request.method_original': 'PROPFIND', 'url.path': '/dav', 'url.scheme': 'http',
      'server.address': '::1', 'server.port': 8443, 'network.protocol.version': '1.1', 'http.response.status_code': 207,
    });
  });

  test('5xx is an ERROR with error.type; 4xx is not', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), get('/down')));
    s.onResponse(res(20n, msgFor(CONN_A), 'HTTP/1.1 503 Service Unavailable\r\n'));
    s.onRequest(req(30n, ctxFor(CONN_A), get('/missing')));
    s.onResponse(res(40n, msgFor(CONN_A), 'HTTP/1.1 404 Not Found\r\n'));
    assert.equal(spans.length, 2);
    assert.deepEqual(spans[0].status, { code: 'ERROR' });
    assert.equal(spans[0].attributes['http.response.status_code'], 503);
    assert.equal(spans[0].attributes['error.type'], '503');
    assert.deepEqual(spans[1].status, { code: 'UNSET' });
    assert.equal(spans[1].attributes['http.response.status_code'], 404);
    assert.equal('error.type' in spans[1].attributes, false);
  });

  test('an unparsable status line leaves the status code out', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), get('/')));
    s.onResponse(res(20n, msgFor(CONN_A), 'garbage'));
    assert.equal(spans.length, 1);
    assert.equal('http.response.status_code' in spans[0].attributes, false);
    assert.deepEqual(spans[0].status, { code: 'UNSET' });
  });
});

describe('trace context', () => {
  const T = '4bf92f3577b34da6a3ce929d0e0e4736';
  const S = '00f067aa0ba902b7';

  test('a sampled incoming traceparent makes the span a child of the remote parent', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), get('/', `traceparent: 00-${T}-${S}-01\r\ntracestate: vendor=abc\r\n`)));
    s.onResponse(res(20n, msgFor(CONN_A), OK));
    assert.equal(spans.length, 1);
    const sp = spans[0];
    assert.equal(sp.traceId, T);
    assert.equal(sp.parentSpanId, S);
    assert.equal(sp.parentIsRemote, true);
    assert.equal(sp.traceFlags, 1);
    assert.equal(sp.traceState, 'vendor=abc');
    assert.match(sp.spanId, /^[0-9a-f]{16}$/);
    assert.notEqual(sp.spanId, S);
  });

  test('an invalid traceparent starts a new root trace', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), get('/', `traceparent: 00-${T.toUpperCase()}-${S}-01\r\ntracestate: vendor=abc\r\n`)));
    s.onResponse(res(20n, msgFor(CONN_A), OK));
    assert.equal(spans.length, 1);
    assert.notEqual(spans[0].traceId, T);
    assert.equal(spans[0].parentSpanId, undefined);
    assert.equal(spans[0].parentIsRemote, undefined);
    assert.equal(spans[0].traceState, undefined);
    assert.equal(spans[0].traceFlags, 1);
  });

  test('a not-sampled traceparent (flags 00) produces no span and is counted', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), get('/', `traceparent: 00-${T}-${S}-00\r\n`)));
    s.onResponse(res(20n, msgFor(CONN_A), OK));
    assert.equal(spans.length, 0);
    assert.deepEqual(s.counts, stats({ requests: 1, notSampled: 1 }));
    assert.equal(s.pendingCount(), 0);
  });
});

describe('connections', () => {
  test('two interleaved connections pair correctly when responses come in the opposite order', () => {
    const { spans, s } = setup();
    s.onRequest(req(100n, ctxFor(CONN_A), get('/a')));
    s.onRequest(req(200n, ctxFor(CONN_B), get('/b')));
    assert.equal(s.pendingCount(), 2);
    s.onResponse(res(300n, msgFor(CONN_B), 'HTTP/1.1 201 Created\r\n'));
    s.onResponse(res(400n, msgFor(CONN_A), OK));
    // And again, now that the key words are learned.
    s.onRequest(req(500n, ctxFor(CONN_A), get('/a2')));
    s.onRequest(req(600n, ctxFor(CONN_B), get('/b2')));
    s.onResponse(res(700n, msgFor(CONN_B), OK));
    s.onResponse(res(800n, msgFor(CONN_A), 'HTTP/1.1 500 Internal Server Error\r\n'));
    assert.deepEqual(spans.map((x) => [x.attributes['url.path'], x.startTimeUnixNano - WALL, x.endTimeUnixNano - WALL, x.attributes['http.response.status_code']]), [
      ['/b', 200n, 300n, 201],
      ['/a', 100n, 400n, 200],
      ['/b2', 600n, 700n, 200],
      ['/a2', 500n, 800n, 500],
    ]);
    assert.deepEqual(s.counts, stats({ requests: 4, spans: 4 }));
    assert.equal(s.pendingCount(), 0);
  });

  test('a partial head (no end of head, not truncated) counts in partialHeads and creates nothing', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), 'GET /slow HTTP/1.1\r\nHost: local'));
    assert.deepEqual(s.counts, stats({ partialHeads: 1 }));
    assert.equal(s.pendingCount(), 0);
    s.onResponse(res(20n, msgFor(CONN_A), OK));
    assert.equal(spans.length, 0);
    assert.deepEqual(s.counts, stats({ partialHeads: 1, unmatchedResponses: 1 }));
  });

  test('a complete head that is not a request counts in unparsable', () => {
    const { s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), 'NOT AN HTTP REQUEST\r\n\r\n'));
    assert.deepEqual(s.counts, stats({ unparsable: 1 }));
    assert.equal(s.pendingCount(), 0);
  });

  test('a head cut by the capture limit still makes a span, without the cut header', () => {
    const { spans, s } = setup();
    const prefix = 'GET /big HTTP/1.1\r\nHost: big.test:9000\r\nX-Filler: ';
    const head = Buffer.from(prefix + 'f'.repeat(CONSTANTS.H1_HEAD_CAPTURE - prefix.length), 'latin1');
    assert.equal(head.length, CONSTANTS.H1_HEAD_CAPTURE);
    s.onRequest(req(10n, ctxFor(CONN_A), head, { bufLen: 5000 }));
    s.onResponse(res(20n, msgFor(CONN_A), OK));
    assert.equal(spans.length, 1);
    assert.equal(spans[0].attributes['server.address'], 'big.test');
    assert.equal(spans[0].attributes['server.port'], 9000);
    assert.equal(spans[0].attributes['url.path'], '/big');
    // The same bytes with nothing beyond them are a partial read instead.
    s.onRequest(req(30n, ctxFor(CONN_A), head, { bufLen: CONSTANTS.H1_HEAD_CAPTURE }));
    assert.deepEqual(s.counts, stats({ requests: 1, spans: 1, partialHeads: 1 }));
  });

  test('a second request on a connection before its response abandons the first', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), get('/first')));
    s.onRequest(req(20n, ctxFor(CONN_A), get('/second')));
    assert.equal(s.counts.abandoned, 1);
    assert.equal(s.pendingCount(), 1);
    s.onResponse(res(30n, msgFor(CONN_A), OK));
    assert.deepEqual(spans.map((x) => [x.attributes['url.path'], x.startTimeUnixNano - WALL]), [['/second', 20n]]);
    // With the key learned, the same happens through the key word alone.
    s.onRequest(req(40n, ctxFor(CONN_A), get('/third')));
    s.onRequest(req(50n, ctxFor(CONN_A), get('/fourth')));
    s.onResponse(res(60n, msgFor(CONN_A), OK));
    assert.deepEqual(spans.map((x) => x.attributes['url.path']), ['/second', '/fourth']);
    assert.deepEqual(s.counts, stats({ requests: 4, spans: 2, abandoned: 2 }));
    assert.equal(s.pendingCount(), 0);
  });

  test('before the key is learned, a pointer shared by concurrent connections (current-thread runtime) abandons nothing', () => {
    const { spans, s } = setup();
    const SHARED = 0x5555_0009_0000n;
    s.onRequest(req(10n, ctxFor(CONN_A, SHARED), get('/a')));
    s.onRequest(req(20n, ctxFor(CONN_B, SHARED), get('/b')));
    s.onRequest(req(30n, ctxFor(CONN_C, SHARED), get('/c')));
    assert.equal(s.counts.abandoned, 0);
    assert.equal(s.pendingCount(), 3);
    s.onResponse(res(40n, msgFor(CONN_B), OK));
    s.onResponse(res(50n, msgFor(CONN_A), OK));
    s.onResponse(res(60n, msgFor(CONN_C), OK));
    assert.deepEqual(spans.map((x) => x.attributes['url.path']), ['/b', '/a', '/c']);
    assert.deepEqual(s.counts, stats({ requests: 3, spans: 3 }));
  });

  test('a response with no pending request is counted and ignored', () => {
    const { spans, s } = setup();
    s.onResponse(res(10n, msgFor(CONN_A), OK));
    assert.deepEqual(s.counts, stats({ unmatchedResponses: 1 }));
    // Also once the key is learned, and for a response of another process.
    s.onRequest(req(20n, ctxFor(CONN_A), get('/')));
    s.onResponse(res(30n, msgFor(CONN_A), OK));
    s.onResponse(res(40n, msgFor(CONN_A), OK));
    s.onRequest(req(50n, ctxFor(CONN_B), get('/')));
    s.onResponse(res(60n, msgFor(CONN_B), OK, { pid: PID + 1 }));
    assert.equal(spans.length, 1);
    assert.deepEqual(s.counts, stats({ requests: 2, spans: 1, unmatchedResponses: 3 }));
    assert.equal(s.pendingCount(PID), 1);
  });

  test('after the key is learned, a shared non-key pointer does not disturb another connection', () => {
    const { spans, s } = setup();
    const SHARED = 0x5555_0000_9000n;
    // C is pending while the key is learned from A's pair: C is refiled under its key word only.
    s.onRequest(req(10n, ctxFor(CONN_A), get('/a')));
    s.onRequest(req(20n, ctxFor(CONN_C, SHARED), get('/c')));
    s.onResponse(res(30n, msgFor(CONN_A), OK));
    // D's ParseContext holds, in a non-key word, the same pointer as C's non-key word.
    s.onRequest(req(40n, ctxFor(CONN_D, SHARED), get('/d')));
    // And E holds C's key value in a non-key word.
    const CONN_E = 0x5555_0000_5000n;
    s.onRequest(req(50n, ctxFor(CONN_E, CONN_C), get('/e')));
    assert.equal(s.counts.abandoned, 0);
    assert.equal(s.pendingCount(), 3);
    s.onResponse(res(60n, msgFor(CONN_C), OK));
    s.onResponse(res(70n, msgFor(CONN_E), OK));
    s.onResponse(res(80n, msgFor(CONN_D), OK));
    assert.deepEqual(spans.map((x) => [x.attributes['url.path'], x.startTimeUnixNano - WALL, x.endTimeUnixNano - WALL]), [
      ['/a', 10n, 30n], ['/c', 20n, 60n], ['/e', 50n, 70n], ['/d', 40n, 80n],
    ]);
    assert.deepEqual(s.counts, stats({ requests: 4, spans: 4 }));
  });

  test('processes are separate: the same address in two pids is two connections', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), get('/p1'), { pid: 1 }));
    s.onRequest(req(20n, ctxFor(CONN_A), get('/p2'), { pid: 2 }));
    assert.equal(s.counts.abandoned, 0);
    s.onResponse(res(30n, msgFor(CONN_A), OK, { pid: 2 }));
    s.onResponse(res(40n, msgFor(CONN_A), OK, { pid: 1 }));
    assert.deepEqual(spans.map((x) => [x.pid, x.attributes['url.path']]), [[2, '/p2'], [1, '/p1']]);
  });

  test('forgetProcess drops the pending requests of that process only', () => {
    const { spans, s } = setup();
    s.onRequest(req(10n, ctxFor(CONN_A), get('/a')));
    s.onRequest(req(20n, ctxFor(CONN_B), get('/b')));
    s.onRequest(req(30n, ctxFor(CONN_A), get('/other'), { pid: PID + 1 }));
    assert.equal(s.pendingCount(PID), 2);
    assert.equal(s.pendingCount(), 3);
    assert.equal(s.forgetProcess(PID), 2);
    assert.equal(s.pendingCount(PID), 0);
    assert.equal(s.pendingCount(), 1);
    assert.equal(s.forgetProcess(999), 0);
    s.onResponse(res(40n, msgFor(CONN_A), OK));
    assert.equal(spans.length, 0);
    assert.equal(s.counts.unmatchedResponses, 1);
    s.onResponse(res(50n, msgFor(CONN_A), OK, { pid: PID + 1 }));
    assert.deepEqual(spans.map((x) => x.attributes['url.path']), ['/other']);
  });
});

describe('fat-LTO fallback: responses carry the Conn address', () => {
  // write_head / encode_head pass &mut Conn; the ParseContext key
  // (&mut conn.state.method) lies 0x208 bytes into it (as in a real build).
  const DELTA = 0x208n;
  function connRes(tsNs: bigint, conn: bigint, status: number, instance = 0): H1ResponseEvent {
    const e = res(tsNs, [conn - DELTA, 0n, 0n, 0n, 0n, 0n], '', { status, instance });
    e.hdr.kind = EVENT_KIND.H1_SERVER_RESPONSE_CONN;
    return e;
  }

  test('one connection: the distance is learned from the first response', () => {
    const { spans, s } = setup();
    s.onRequest(req(100n, ctxFor(CONN_A), get('/a')));
    s.onResponse(connRes(200n, CONN_A, 200), true);
    s.onRequest(req(300n, ctxFor(CONN_A), get('/b')));
    s.onResponse(connRes(400n, CONN_A, 503), true);
    assert.deepEqual(spans.map((x) => [x.attributes['url.path'], x.attributes['http.response.status_code']]), [['/a', 200], ['/b', 503]]);
    assert.deepEqual(s.counts, stats({ requests: 2, spans: 2 }));
  });

  test('connections in flight together: ambiguous at first, learned when two responses agree on the distance', () => {
    const { spans, s } = setup();
    // Three connections 4 KiB apart: each response alone fits several requests.
    s.onRequest(req(100n, ctxFor(CONN_A), get('/a1')));
    s.onRequest(req(101n, ctxFor(CONN_B), get('/b1')));
    s.onRequest(req(102n, ctxFor(CONN_C), get('/c1')));
    s.onResponse(connRes(200n, CONN_A, 200), true); // A, B and C all within reach of A's Conn
    assert.equal(spans.length, 0);
    s.onRequest(req(201n, ctxFor(CONN_D), get('/d1')));
    s.onResponse(connRes(202n, CONN_C, 201), true); // the smallest distance is 0x208 again: trusted
    assert.deepEqual(spans.map((x) => [x.attributes['url.path'], x.attributes['http.response.status_code']]), [['/c1', 201]]);
    s.onResponse(connRes(203n, CONN_B, 202), true);
    s.onResponse(connRes(204n, CONN_D, 204), true);
    assert.deepEqual(spans.map((x) => [x.attributes['url.path'], x.attributes['http.response.status_code']]), [['/c1', 201], ['/b1', 202], ['/d1', 204]]);
    assert.equal(s.counts.unmatchedResponses, 1);
  });

  test('a Conn address far from every waiting request matches nothing', () => {
    const { spans, s } = setup();
    s.onRequest(req(100n, ctxFor(CONN_A), get('/a')));
    s.onResponse(connRes(200n, CONN_A + 0x100000n, 200), true);
    assert.equal(spans.length, 0);
    assert.equal(s.counts.unmatchedResponses, 1);
    assert.equal(s.pendingCount(), 1);
  });
});
