// The shared server-span context (src/spans/context.ts) and the h2 stream
// span builder on it (src/libs/h2-server/spans.ts), driven by synthetic events.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerSpanContext, type ActiveServerSpan, type ServerProtocol } from '../../src/spans/context';
import { H2ServerSpans } from '../../src/libs/h2-server/spans';
import type { H2RequestEvent, H2ResponseEvent, H2ResetEvent, Range } from '../../src/libs/h2-server/decode';
import { H2_SERVER_LAYOUTS } from '../../src/libs/h2-server/layouts';
import { acquireRecord, type SpanRecord } from '../../src/spans/record';
import type { AgentSpan } from '../../src/spans/types';

const PID = 77;

function fakeSpan(pid = PID): ActiveServerSpan {
  return { pid, rec: acquireRecord(), route: undefined, open: true, finish() {} };
}

describe('ServerSpanContext', () => {
  test('a key names one span; refiling it moves it to the new span, counted; close unfiles every key', () => {
    const ctx = new ServerSpanContext({ libraryActive: () => true });
    const a = fakeSpan(), b = fakeSpan();
    ctx.addKey(a, 'task', 5);
    ctx.addKey(a, 'request', 0x7f00_0000_1000);
    assert.equal(ctx.find(PID, 'task', 5), a);
    assert.equal(ctx.find(PID + 1, 'task', 5), undefined, 'keys are per process');
    ctx.addKey(b, 'task', 5); // the connection task's next request
    assert.equal(ctx.find(PID, 'task', 5), b);
    assert.equal(ctx.counts.replacedKeys, 1);
    ctx.close(a);
    assert.equal(ctx.find(PID, 'request', 0x7f00_0000_1000), undefined);
    assert.equal(ctx.find(PID, 'task', 5), b, 'closing a does not unfile b');
    ctx.addKey(b, 'task', 0); // 0 is no task
    assert.equal(ctx.find(PID, 'task', 0), undefined);
  });

  test('spawn lineage: children and grandchildren of a task inherit its open span, for client parenting only; closed spans are inherited by nobody', () => {
    const ctx = new ServerSpanContext({ libraryActive: () => true });
    const a = fakeSpan();
    ctx.addKey(a, 'task', 10);
    assert.equal(ctx.inheritTask(PID, 10, 11), true, 'child of the handling task');
    assert.equal(ctx.inheritTask(PID, 11, 12), true, 'grandchild, through the child');
    assert.equal(ctx.inheritTask(PID, 99, 13), false, 'spawned by a task with no span');
    assert.equal(ctx.inheritTask(PID, 0, 14), false, 'spawned outside any task');
    assert.equal(ctx.parentFor(PID, 10), a);
    assert.equal(ctx.parentFor(PID, 11), a);
    assert.equal(ctx.parentFor(PID, 12), a);
    assert.equal(ctx.parentFor(PID, 13), undefined);
    assert.equal(ctx.parentFor(PID, 0), undefined);
    assert.equal(ctx.parentFor(PID + 1, 11), undefined, 'per process');
    assert.equal(ctx.find(PID, 'task', 11), undefined, 'server-side enrichers do not see inherited spans');
    assert.equal(ctx.counts.inheritedTasks, 2);
    assert.equal(ctx.counts.parentedByLineage, 2);
    ctx.close(a);
    assert.equal(ctx.parentFor(PID, 11), undefined, 'gone with the span');
    assert.equal(ctx.inheritTask(PID, 11, 15), false);
    // The handling task's own span wins over an inherited one.
    const b = fakeSpan(), c = fakeSpan();
    ctx.addKey(b, 'task', 20);
    ctx.inheritTask(PID, 20, 21);
    ctx.addKey(c, 'task', 21);
    assert.equal(ctx.parentFor(PID, 21), c);
    ctx.countUnparented();
    assert.equal(ctx.stats().unparented, 1);
  });

  test('thread links: a thread made by a task (or by a linked thread) gives its span to calls outside any task, only while it is open; tids are refiled', () => {
    const ctx = new ServerSpanContext({ libraryActive: () => true });
    const a = fakeSpan();
    ctx.addKey(a, 'task', 10);
    ctx.inheritTask(PID, 10, 11);
    assert.equal(ctx.inheritThread(PID, 500, 10, 501), true, 'made by the handling task');
    assert.equal(ctx.inheritThread(PID, 502, 11, 503), true, 'made by a spawned task (lineage)');
    assert.equal(ctx.inheritThread(PID, 501, 0, 504), true, 'made by a linked thread, outside any task');
    assert.equal(ctx.inheritThread(PID, 600, 0, 601), false, 'made by an unlinked thread');
    assert.equal(ctx.inheritThread(PID, 600, 99, 602), false, 'made by a task with no span');
    assert.equal(ctx.parentFor(PID, 0, 501), a);
    assert.equal(ctx.parentFor(PID, 0, 503), a);
    assert.equal(ctx.parentFor(PID, 0, 504), a);
    assert.equal(ctx.parentFor(PID, 0, 601), undefined);
    assert.equal(ctx.parentFor(PID, 0, 0), undefined);
    assert.equal(ctx.parentFor(PID + 1, 0, 501), undefined, 'per process');
    // Inside a task the task decides, never the thread.
    assert.equal(ctx.parentFor(PID, 99, 501), undefined, 'a task with no span on a linked thread gets nothing');
    assert.equal(ctx.find(PID, 'task', 501), undefined);
    assert.equal(ctx.counts.threadSpawns, 5);
    assert.equal(ctx.counts.inheritedThreads, 3);
    assert.equal(ctx.counts.parentedByThread, 3);
    // A reused tid made outside any span loses the old filing.
    assert.equal(ctx.inheritThread(PID, 600, 0, 503), false);
    assert.equal(ctx.parentFor(PID, 0, 503), undefined, 'tid reused: the new thread inherits nothing');
    // The span ends: the thread outlives it and gives later calls no parent.
    ctx.close(a);
    assert.equal(ctx.parentFor(PID, 0, 501), undefined, 'gone with the span');
    assert.equal(ctx.inheritThread(PID, 501, 0, 505), false);
    const b = fakeSpan();
    ctx.addKey(b, 'task', 20);
    assert.equal(ctx.parentFor(PID, 0, 501), undefined, 'a later span is not given to the old thread');
  });

  test('TLS: marked tasks are https; unmarked ones http only when the process never did TLS or showed handshakes run in serving tasks', () => {
    const ctx = new ServerSpanContext({ libraryActive: () => true });
    assert.equal(ctx.schemeFor(PID, 9), 'http', 'no TLS in the process');
    ctx.markTlsTask(PID, 10);
    assert.equal(ctx.schemeFor(PID, 9), undefined, 'TLS seen, not yet shown to run in serving tasks');
    assert.equal(ctx.counts.schemeUnknown, 1);
    assert.equal(ctx.schemeFor(PID, 10), 'https');
    assert.equal(ctx.schemeFor(PID, 9), 'http', 'a marked task served a request: unmarked tasks are plaintext');
    ctx.markTlsTask(PID + 1, 0);
    assert.equal(ctx.schemeFor(PID + 1, 3), undefined, 'handshakes outside tasks tell nothing');
  });

  test('a protocol claims only in processes where its library is active', () => {
    const active = new Set<number>([PID]);
    const ctx = new ServerSpanContext({ libraryActive: (pid, lib) => lib === 'proto-lib' && active.has(pid) });
    const p: ServerProtocol = {
      library: 'proto-lib', claims: () => true, start() {}, responseHead: () => true, reset() {},
    };
    ctx.registerProtocol(p);
    const req = { src: new Uint8Array(0), pathStart: -1, pathEnd: -1, authorityStart: -1, authorityEnd: -1, contentTypeStart: -1, contentTypeEnd: -1 };
    assert.equal(ctx.protocolFor(PID, req), p);
    assert.equal(ctx.protocolFor(PID + 1, req), undefined);
  });
});

// ---------------------------------------------------------------- h2 streams

const C = H2_SERVER_LAYOUTS.constants;
const RQ = H2_SERVER_LAYOUTS.structs.h2_request_event;

function request(ts: bigint, conn: number, streamId: number, fields: { path?: string; authority?: string; ua?: string; traceparent?: string; ctype?: string } = {},
  opts: { requestId?: number; task?: number; method?: number } = {}): H2RequestEvent {
  const src = Buffer.alloc(RQ.$size - RQ.path);
  const put = (at: number, v: string | undefined): Range => {
    if (v === undefined) return { start: -1, end: -1 };
    const start = at - RQ.path;
    src.write(v, start, 'latin1');
    return { start, end: start + v.length };
  };
  return {
    type: 'h2.request',
    hdr: { kind: H2_SERVER_LAYOUTS.kinds.H2_SERVER_REQUEST, probeId: 1, pid: PID, tid: 1, cpu: 0, instance: 0, tsNs: ts },
    conn, requestId: opts.requestId ?? 0, taskId: opts.task ?? 0, streamId, method: opts.method ?? C.H2_METHOD_GET, endStream: true, nHeaders: 1, src,
    path: put(RQ.path, fields.path ?? '/'), authority: put(RQ.authority, fields.authority), scheme: put(RQ.scheme, 'http'), host: { start: -1, end: -1 },
    ua: put(RQ.ua, fields.ua), traceparent: put(RQ.traceparent, fields.traceparent), tracestate: { start: -1, end: -1 }, ctype: put(RQ.ctype, fields.ctype),
    methodName: { start: -1, end: -1 },
  };
}

function response(ts: bigint, conn: number, streamId: number, status: number, opts: { task?: number; eos?: boolean; grpc?: number } = {}): H2ResponseEvent {
  return {
    type: 'h2.response', hdr: { kind: H2_SERVER_LAYOUTS.kinds.H2_SERVER_RESPONSE, probeId: 2, pid: PID, tid: 2, cpu: 1, instance: 0, tsNs: ts },
    conn, taskId: opts.task ?? 0, streamId, status, endStream: opts.eos ?? false, grpcStatus: opts.grpc ?? -1, grpcMessage: undefined,
  };
}

function reset(ts: bigint, conn: number, streamId: number, code: number): H2ResetEvent {
  return { type: 'h2.reset', hdr: { kind: H2_SERVER_LAYOUTS.kinds.H2_SERVER_RESET, probeId: 3, pid: PID, tid: 1, cpu: 0, instance: 0, tsNs: ts }, conn, streamId, errorCode: code };
}

function setup(active = true) {
  const spans: AgentSpan[] = [];
  const ctx = new ServerSpanContext({ libraryActive: () => active });
  const b = new H2ServerSpans({ toUnixNano: (n) => n, clock: { hi: 0, lo: 0 }, emit: (s: SpanRecord) => spans.push(s.toAgentSpan()), libraryActive: () => active }, 'scope/h2', ctx);
  return { spans, ctx, b };
}

describe('h2 stream spans', () => {
  test('streams of two connections with the same ids pair with their own responses, in any order', () => {
    const { spans, b } = setup();
    const A = 0x5555_0000_1000, B = 0x5555_0000_9000;
    b.onRequest(request(10n, A, 1, { path: '/a?x=1', authority: 'h:8080', ua: 'ua-a' }));
    b.onRequest(request(11n, B, 1, { path: '/b', authority: 'h' }));
    b.onRequest(request(12n, A, 3, { path: '/c' }));
    b.onResponse(response(20n, B, 1, 404));
    b.onResponse(response(21n, A, 3, 503));
    b.onResponse(response(22n, A, 1, 200));
    assert.deepEqual(spans.map((s) => [s.attributes['url.path'], s.attributes['http.response.status_code'], s.endTimeUnixNano]),
      [['/b', 404, 20n], ['/c', 503, 21n], ['/a', 200, 22n]]);
    const a = spans.find((s) => s.attributes['url.path'] === '/a')!;
    assert.deepEqual(a.attributes, {
      'http.request.method': 'GET', 'url.path': '/a', 'url.query': 'x=1', 'url.scheme': 'http', 'server.address': 'h', 'server.port': 8080,
      'user_agent.original': 'ua-a', 'network.protocol.version': '2', 'http.response.status_code': 200,
    });
    assert.equal(spans.find((s) => s.attributes['url.path'] === '/b')!.attributes['server.port'], 80);
    assert.equal(spans.find((s) => s.attributes['url.path'] === '/c')!.status.code, 'ERROR');
    assert.equal(b.counts.unmatchedResponses, 0);
    b.onResponse(response(30n, A, 5, 200));
    assert.equal(b.counts.unmatchedResponses, 1, 'a response with no request is counted, not guessed');
  });

  test('a reset before the response ends the span ERROR with the RFC 9113 name; a late response finds nothing', () => {
    const { spans, b } = setup();
    b.onRequest(request(10n, 0x6000_0000_0000, 7, { path: '/slow' }));
    b.onReset(reset(15n, 0x6000_0000_0000, 7, 8));
    b.onResponse(response(20n, 0x6000_0000_0000, 7, 200));
    assert.equal(spans.length, 1);
    assert.equal(spans[0].status.code, 'ERROR');
    assert.equal(spans[0].attributes['error.type'], 'CANCEL');
    assert.equal(spans[0].endTimeUnixNano, 15n);
    assert.equal(b.counts.resets, 1);
    assert.equal(b.counts.unmatchedResponses, 1);
  });

  test('an unsampled caller gives no span; a route set by an enricher names the span', () => {
    const { spans, b, ctx } = setup();
    b.onRequest(request(1n, 0x7000_0000_0000, 1, { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' }));
    b.onResponse(response(2n, 0x7000_0000_0000, 1, 200));
    assert.equal(spans.length, 0);
    assert.equal(b.counts.notSampled, 1);
    b.onRequest(request(3n, 0x7000_0000_0000, 3, { path: '/users/9' }, { requestId: 0x7100_0000_0000 }));
    const s = ctx.find(PID, 'request', 0x7100_0000_0000)!;
    s.route = '/users/{id}';
    b.onResponse(response(4n, 0x7000_0000_0000, 3, 200, { task: 42 }));
    assert.equal(spans[0].name, 'GET /users/{id}');
    assert.equal(spans[0].attributes['http.route'], '/users/{id}');
    assert.equal(ctx.find(PID, 'request', 0x7100_0000_0000), undefined, 'closed after the span ended');
  });

  test('a claimed stream stays open past its response head until its protocol ends it', () => {
    const { spans, b, ctx } = setup();
    const seen: string[] = [];
    ctx.registerProtocol({
      library: 'grpc-lib',
      claims: (r) => r.contentTypeStart >= 0,
      start: (rec) => { rec.name = 'svc/M'; seen.push('start'); },
      responseHead: (_rec, res) => { seen.push(`head eos=${res.endOfStream}`); return res.endOfStream; },
      reset: () => { seen.push('reset'); },
    });
    b.onRequest(request(1n, 0x7000_0000_0000, 1, { ctype: 'application/grpc' }));
    b.onResponse(response(2n, 0x7000_0000_0000, 1, 200, { task: 9 }));
    assert.equal(spans.length, 0);
    const s = ctx.find(PID, 'stream', ServerSpanContext.streamKey(0x7000_0000_0000, 1))!;
    assert.equal(ctx.find(PID, 'task', 9), s, 'filed under its stream task from the response head on');
    s.finish(5n, (rec) => rec.addString(0, 'x'));
    assert.equal(spans.length, 1);
    assert.equal(spans[0].name, 'svc/M');
    assert.equal(spans[0].endTimeUnixNano, 5n);
    assert.deepEqual(seen, ['start', 'head eos=false']);
    assert.equal(b.stats().pending, 0);
  });
});
