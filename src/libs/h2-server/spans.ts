// h2 server events -> SERVER spans, one per stream.
//
// A request event (recv_headers, in the connection's task) opens a stream
// span; the response event (send_response, in the stream's task) of the same
// (connection, stream id) ends it, as HTTP/1 spans end at their response
// head. The connection is the address of h2's per-connection stream state,
// computed by both probes from their own arguments (probes.bpf.c), so
// streams of different connections never meet even though their ids repeat.
//
// Each open stream is filed in the shared context (src/spans/context.ts)
// under its stream key, under its request's header storage (which moves with
// the request into the handler: axum finds the span by it), and, from its
// response head on, under its task. A protocol carried over HTTP/2 (gRPC,
// tonic-server) claims the request at start, shapes the span, and may keep
// it open past the response head to end it with its own event (trailers).
//
// A stream reset by the client before the span ended (RST_STREAM) ends it
// with status ERROR and error.type the RFC 9113 error name (CANCEL, ...).
// Streams that never answer are dropped after PENDING_MAX_AGE_NS.
import type { SpanBuilder, SpanOutput } from '../library';
import { DecodeError } from '../../events/header';
import { acquireRecord, releaseRecord, attrKey, SpanKind, StatusCode, type SpanRecord } from '../../spans/record';
import { splitHostBytes, redactedQuery } from '../../spans/http';
import { parseTraceParentBytes } from '../../spans/tracecontext';
import { ServerSpanContext, type ActiveServerSpan, type HttpRequestFacts, type ServerProtocol } from '../../spans/context';
import { decodeRequest, decodeResponse, decodeReset, type H2RequestEvent, type H2ResponseEvent, type H2ResetEvent } from './decode';
import { H2_SERVER_LAYOUTS } from './layouts';

const { kinds: KIND, constants: C } = H2_SERVER_LAYOUTS;

const K = {
  method: attrKey('http.request.method'),
  methodOriginal: attrKey('http.request.method_original'),
  path: attrKey('url.path'),
  query: attrKey('url.query'),
  scheme: attrKey('url.scheme'),
  version: attrKey('network.protocol.version'),
  address: attrKey('server.address'),
  port: attrKey('server.port'),
  ua: attrKey('user_agent.original'),
  status: attrKey('http.response.status_code'),
  errorType: attrKey('error.type'),
  route: attrKey('http.route'),
};

/** H2_METHOD_* index -> name. */
const METHODS = ['', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY'];
/** RFC 9113 §7 error codes. */
export const H2_ERRORS = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED',
  'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];

const STATUS_STRINGS = new Map<number, string>();
function statusString(n: number): string {
  let s = STATUS_STRINGS.get(n);
  if (s === undefined) STATUS_STRINGS.set(n, (s = String(n)));
  return s;
}

/** A stream reset later than this after its last event is not waited for. */
export const PENDING_MAX_AGE_NS = 600n * 1_000_000_000n;
/** At most this many streams wait per process. */
export const PENDING_MAX = 65_536;

export interface H2ServerStats {
  requests: number;
  spans: number;
  unmatchedResponses: number;
  resets: number;
  unmatchedResets: number;
  abandoned: number;
  notSampled: number;
  expired: number;
  /** Requests a protocol (gRPC) claimed. */
  claimed: number;
}

class Stream implements ActiveServerSpan {
  route: string | undefined = undefined;
  emitted = false;
  dropped = false;
  /** The response head went out and a protocol keeps the span open for its own end. */
  responded = false;
  constructor(
    private readonly owner: H2ServerSpans,
    readonly pid: number,
    readonly key: string,
    readonly startMono: bigint,
    readonly rec: SpanRecord,
    /** The request method as the span name's first word. */
    readonly methodWord: string,
    readonly protocol: ServerProtocol | undefined,
  ) {}

  get open(): boolean {
    return !this.emitted && !this.dropped;
  }

  finish(tsNs: bigint, shape?: (rec: SpanRecord) => void): void {
    this.owner.finishStream(this, tsNs, shape);
  }
}

class ProcessState {
  streams = new Map<string, Stream>();
}

export class H2ServerSpans implements SpanBuilder {
  readonly counts: H2ServerStats = {
    requests: 0, spans: 0, unmatchedResponses: 0, resets: 0, unmatchedResets: 0, abandoned: 0, notSampled: 0, expired: 0, claimed: 0,
  };
  private procs = new Map<number, ProcessState>();
  /** Every open stream, oldest first. */
  private order = new Set<Stream>();

  constructor(private readonly out: SpanOutput, private readonly scope: string, private readonly ctx: ServerSpanContext) {}

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind === KIND.H2_SERVER_REQUEST) this.onRequest(decodeRequest(dv, off, len));
    else if (kind === KIND.H2_SERVER_RESPONSE) this.onResponse(decodeResponse(dv, off, len));
    else if (kind === KIND.H2_SERVER_RESET) this.onReset(decodeReset(dv, off, len));
    else throw new DecodeError(`h2-server: unknown event kind ${kind}`);
  }

  stats(): Record<string, number> {
    return { ...this.counts, pending: this.order.size };
  }

  private proc(pid: number): ProcessState {
    let p = this.procs.get(pid);
    if (!p) this.procs.set(pid, (p = new ProcessState()));
    return p;
  }

  forgetProcess(pid: number): number {
    const p = this.procs.get(pid);
    if (!p) return 0;
    const n = p.streams.size;
    for (const s of p.streams.values()) this.drop(s);
    this.procs.delete(pid);
    return n;
  }

  pids(): number[] {
    return [...this.procs.keys()];
  }

  expire(nowMono: bigint): void {
    for (const s of this.order) {
      if (nowMono - s.startMono < PENDING_MAX_AGE_NS) break;
      this.counts.expired++;
      this.drop(s);
    }
  }

  onRequest(ev: H2RequestEvent): void {
    this.counts.requests++;
    const pid = ev.hdr.pid;
    const p = this.proc(pid);
    const b = ev.src;
    const rec = acquireRecord();
    rec.src = b;
    rec.kind = SpanKind.SERVER;
    rec.pid = pid;
    rec.scope = this.scope;

    // :path is origin-form ("/p?q"); url.path ends at '?'.
    let q = ev.path.start;
    if (q >= 0) while (q < ev.path.end && b[q] !== 0x3f) q++;
    const facts: HttpRequestFacts = {
      src: b,
      pathStart: ev.path.start, pathEnd: q >= 0 ? q : -1,
      authorityStart: ev.authority.start >= 0 ? ev.authority.start : ev.host.start,
      authorityEnd: ev.authority.start >= 0 ? ev.authority.end : ev.host.end,
      contentTypeStart: ev.ctype.start, contentTypeEnd: ev.ctype.end,
    };
    const protocol = this.ctx.protocolFor(pid, facts);
    const known = METHODS[ev.method] || undefined;
    const methodWord = known ?? 'HTTP';
    if (protocol) {
      this.counts.claimed++;
      protocol.start(rec, facts);
    } else {
      rec.name = methodWord;
      if (known) rec.addString(K.method, known);
      else {
        rec.addString(K.method, '_OTHER');
        if (ev.methodName.start >= 0) rec.addBytes(K.methodOriginal, ev.methodName.start, ev.methodName.end);
      }
      if (ev.path.start >= 0) {
        rec.addBytes(K.path, ev.path.start, q);
        if (q < ev.path.end) {
          const red = redactedQuery(b, q + 1, ev.path.end);
          if (red === undefined) rec.addBytes(K.query, q + 1, ev.path.end); else rec.addString(K.query, red);
        }
      }
      // TLS from the code path that served the connection (context.ts rule
      // 4); when that cannot tell, the :scheme the client sent.
      let scheme: string | undefined = this.ctx.schemeFor(pid, ev.taskId);
      if (!scheme && ev.scheme.start >= 0) scheme = b.toString('latin1', ev.scheme.start, ev.scheme.end);
      if (scheme) rec.addString(K.scheme, scheme);
      if (facts.authorityStart >= 0) {
        const hp = splitHostBytes(b, facts.authorityStart, facts.authorityEnd);
        if (hp) {
          rec.addBytes(K.address, hp.addrStart, hp.addrEnd);
          if (hp.port >= 0) rec.addInt(K.port, hp.port);
          else if (scheme === 'https' || scheme === 'http') rec.addInt(K.port, scheme === 'https' ? 443 : 80);
        }
      }
      if (ev.ua.start >= 0) rec.addBytes(K.ua, ev.ua.start, ev.ua.end);
      rec.addString(K.version, '2');
    }

    const flags = ev.traceparent.start >= 0 ? parseTraceParentBytes(b, new DataView(b.buffer, b.byteOffset, b.length), ev.traceparent.start, ev.traceparent.end, rec) : -1;
    if (flags >= 0) {
      rec.flags = flags;
      rec.parentRemote = true;
      if (ev.tracestate.start >= 0) rec.traceState = b.toString('latin1', ev.tracestate.start, ev.tracestate.end);
    } else {
      rec.newTraceId();
      rec.flags = 1;
    }
    rec.newSpanId();

    const key = ServerSpanContext.streamKey(ev.conn, ev.streamId);
    const old = p.streams.get(key);
    if (old) {
      // Stream ids never repeat on a connection: the old connection is gone
      // and its state's address reused.
      this.counts.abandoned++;
      this.drop(old);
    }
    const s = new Stream(this, pid, key, ev.hdr.tsNs, rec, methodWord, protocol);
    p.streams.set(key, s);
    this.order.add(s);
    this.ctx.addKey(s, 'stream', key);
    if (ev.requestId >= 0x10000) this.ctx.addKey(s, 'request', ev.requestId);
    if (this.order.size > PENDING_MAX) {
      this.counts.expired++;
      this.drop(this.order.values().next().value as Stream);
    }
  }

  onResponse(ev: H2ResponseEvent): void {
    const s = this.procs.get(ev.hdr.pid)?.streams.get(ServerSpanContext.streamKey(ev.conn, ev.streamId));
    if (!s || s.responded) {
      this.counts.unmatchedResponses++;
      return;
    }
    // From here on the stream's own task names it (tonic's status, issue-8 client spans).
    this.ctx.addKey(s, 'task', ev.taskId);
    const rec = s.rec;
    if (s.protocol) {
      const done = s.protocol.responseHead(rec, { status: ev.status, endOfStream: ev.endStream, grpcStatus: ev.grpcStatus, grpcMessage: ev.grpcMessage });
      if (!done) {
        s.responded = true;
        return;
      }
    } else {
      rec.addInt(K.status, ev.status);
      if (ev.status >= 500) {
        rec.statusCode = StatusCode.ERROR;
        rec.addString(K.errorType, statusString(ev.status));
      }
    }
    this.end(s, ev.hdr.tsNs);
  }

  onReset(ev: H2ResetEvent): void {
    const s = this.procs.get(ev.hdr.pid)?.streams.get(ServerSpanContext.streamKey(ev.conn, ev.streamId));
    if (!s) {
      this.counts.unmatchedResets++; // already answered, or never a request of ours
      return;
    }
    this.counts.resets++;
    const errorType = H2_ERRORS[ev.errorCode] ?? `h2_error_${ev.errorCode}`;
    if (s.protocol) s.protocol.reset(s.rec, errorType);
    else {
      s.rec.statusCode = StatusCode.ERROR;
      s.rec.addString(K.errorType, errorType);
    }
    this.end(s, ev.hdr.tsNs);
  }

  /** A protocol ends its span with its own event (ActiveServerSpan.finish). */
  finishStream(s: Stream, tsNs: bigint, shape?: (rec: SpanRecord) => void): void {
    if (!s.open) return;
    shape?.(s.rec);
    this.end(s, tsNs);
  }

  private end(s: Stream, tsNs: bigint): void {
    const rec = s.rec;
    if ((rec.flags & 1) === 0) {
      // Parent-based sampling: an unsampled caller means no span here either.
      this.counts.notSampled++;
      this.drop(s);
      return;
    }
    if (s.route !== undefined && !s.protocol) {
      rec.name = `${s.methodWord} ${s.route}`;
      rec.addString(K.route, s.route);
    }
    rec.startUnixNano = this.out.toUnixNano(s.startMono);
    rec.endUnixNano = this.out.toUnixNano(tsNs);
    this.counts.spans++;
    s.emitted = true;
    this.unfile(s);
    try {
      this.out.emit(rec);
    } finally {
      releaseRecord(rec);
    }
  }

  private unfile(s: Stream): void {
    const p = this.procs.get(s.pid);
    if (p?.streams.get(s.key) === s) p.streams.delete(s.key);
    this.order.delete(s);
    this.ctx.close(s);
  }

  private drop(s: Stream): void {
    if (!s.open) return;
    s.dropped = true;
    this.unfile(s);
    releaseRecord(s.rec);
  }
}


