// h2 client events -> CLIENT spans, one per HTTP/2 stream.
//
// The request event (send_headers) opens a pending stream under
// (connection, stream id); the response head (recv_headers) ends an HTTP
// span; a gRPC call (request content-type application/grpc) ends with its
// status: from the trailers (recv_trailers), or from a head that ends the
// stream (trailers-only). A stream that gets no end within the client
// timeout (OTEL_RUST_AGENT_CLIENT_TIMEOUT_MS, default 30 s) ends ERROR with
// error.type `timeout`, and is counted, never kept.
//
// gRPC spans follow the RPC conventions as the server spans do
// (../tonic-server/grpc.ts): name = rpc.method, rpc.system.name, rpc.method,
// rpc.status_code (v1.45's name for v1.44's rpc.response.status_code),
// server.address, server.port; for a client every code but OK is an error
// (ERROR, error.type = the code's name, status message = grpc-message).
// HTTP spans: http.request.method, url.full, server.address, server.port,
// network.protocol.version "2", http.response.status_code; ERROR with
// error.type for 4xx/5xx.
//
// The request is sent by hyper's client dispatch task, not by the caller:
// the span's start and parent come from the call as the application made it
// (tonic-client's prepare_request, hyper-h1-client's reqwest
// execute_request), filed in the shared context (../../spans/context.ts rule
// 6); without one the span starts at send_headers and is a root.
import type { SpanBuilder, SpanOutput, SpanSettings } from '../library';
import type { ServerSpanContext } from '../../spans/context';
import { DecodeError, bytesOf, readU64Number } from '../../events/header';
import { acquireRecord, releaseRecord, attrKey, SpanKind, StatusCode, type SpanRecord } from '../../spans/record';
import { splitHostBytes } from '../../spans/http';
import { safeUrl } from '../hyper-h1-client/url';
import { GRPC_CODES, RST_TO_CODE, SCOPE as GRPC_SCOPE } from '../tonic-server/grpc';
import { H2_ERRORS } from '../h2-server/spans';
import { H2_CLIENT_LAYOUTS } from './layouts';

const { kinds: KIND, structs: S } = H2_CLIENT_LAYOUTS;
const REQ = S.h2_client_request_event;
const RES = S.h2_client_response_event;
const PR = S.h2c_propagation_event;
/** h2c_propagation_outcome (events.h) -> stats counter. */
const PROP_OUTCOMES: Record<number, keyof H2ClientPropagationStats> = {
  1: 'propInjected', 2: 'propNoContext', 3: 'propAmbiguous', 4: 'propPresent', 5: 'propSplit', 6: 'propContinuation',
  7: 'propPadded', 8: 'propTooLarge', 9: 'propPushFailed', 10: 'propStale', 11: 'propMulti', 12: 'propLostSync',
  13: 'propNotPlaintext', 14: 'propNoEntry',
};

/** What the socket program did with each request's HEADERS frame (src/propagation, h2c). */
export interface H2ClientPropagationStats {
  propInjected: number; propNoContext: number; propAmbiguous: number; propPresent: number; propSplit: number;
  propContinuation: number; propPadded: number; propTooLarge: number; propPushFailed: number; propStale: number;
  propMulti: number; propLostSync: number; propNotPlaintext: number; propNoEntry: number; propUnknown: number;
  /** Spans exported with the ids that went on the wire. */
  propSpans: number;
  /** Of the injected: tracestate carried / the span's entry evicted / the request had its own / it would not fit in the frame (traceparent alone). */
  propStateInjected: number; propStateLost: number; propStatePresent: number; propStateTooLarge: number;
}

interface Sent { t0: number; t1: number; t2: number; t3: number; p0: number; p1: number; flags: number }

const K = {
  method: attrKey('http.request.method'),
  methodOriginal: attrKey('http.request.method_original'),
  url: attrKey('url.full'),
  version: attrKey('network.protocol.version'),
  address: attrKey('server.address'),
  port: attrKey('server.port'),
  status: attrKey('http.response.status_code'),
  errorType: attrKey('error.type'),
  rpcSystem: attrKey('rpc.system.name'),
  rpcMethod: attrKey('rpc.method'),
  rpcStatus: attrKey('rpc.status_code'),
  oldSystem: attrKey('rpc.system'),
  oldService: attrKey('rpc.service'),
  oldStatus: attrKey('rpc.grpc.status_code'),
};

/** h2's method index (../h2-server/events.h H2_METHOD_*) -> name. */
const METHODS = ['', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY'];
const DEFAULT_TIMEOUT_MS = 30_000;
/** At most this many streams wait per process; beyond, the oldest is dropped (counted `overflow`). */
export const PENDING_MAX = 16_384;
const UNKNOWN = 2, UNAVAILABLE = 14;

/** An HTTP status without grpc-status -> gRPC code (grpc/doc/http-grpc-status-mapping.md). */
function codeFromHttp(status: number): number {
  switch (status) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return UNAVAILABLE;
    default: return UNKNOWN;
  }
}

function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  try { return decodeURIComponent(s); } catch { return s; }
}

interface Stream {
  key: string;
  startLo: number;
  startHi: number;
  startMono: number;
  method: string;
  methodOriginal: string | undefined;
  path: string;
  authority: string;
  scheme: string;
  grpc: boolean;
  /** HTTP status of a gRPC call's response head, waiting for its trailers (0: no head yet). */
  httpStatus: number;
  /** url.full of the call as the application gave it (reqwest), when matched. */
  url: string | undefined;
  /** Parent (the caller task's server span) when a caller event named it: trace id words and span id words. */
  t0: number; t1: number; t2: number; t3: number; p0: number; p1: number; flags: number;
  /** The span id send_headers made (the one a traceparent carries), as two words; 0, 0: none. */
  s0: number; s1: number;
}

class ProcessState {
  /** Open streams by `conn:stream`, in start order (Map iteration order). */
  streams = new Map<string, Stream>();
}

export interface H2ClientStats extends H2ClientPropagationStats {
  requests: number;
  spans: number;
  grpcSpans: number;
  /** Response heads / trailers for streams whose request event was not seen (attached mid-call, or not a stream of ours). */
  unmatchedResponses: number;
  unmatchedTrailers: number;
  /** gRPC calls that ended without grpc-status (UNKNOWN). */
  noGrpcStatus: number;
  timeouts: number;
  /** A new request on the same (connection, stream id) while one waited (a reused connection address): the old one ended `connection_closed`. */
  closed: number;
  overflow: number;
  /** RST_STREAM received for a waiting stream (ended ERROR), and for streams not ours (a server's, or already ended). */
  resets: number;
  unmatchedResets: number;
  /** Streams matched to their caller's call (tonic-client, reqwest), spans given its server span as parent, and matches whose parent was not used (calls from several tasks waiting). */
  callsMatched: number;
  parentHits: number;
  parentAmbiguous: number;
}

const GRPC = 'application/grpc';
function isGrpc(ct: string): boolean {
  if (!ct.toLowerCase().startsWith(GRPC) || ct.toLowerCase().startsWith('application/grpc-web')) return false;
  return ct.length === GRPC.length || ct[GRPC.length] === '+' || ct[GRPC.length] === ';';
}

export class H2ClientSpans implements SpanBuilder {
  readonly counts: H2ClientStats = {
    requests: 0, spans: 0, grpcSpans: 0, unmatchedResponses: 0, unmatchedTrailers: 0, noGrpcStatus: 0, timeouts: 0, closed: 0,
    overflow: 0, resets: 0, unmatchedResets: 0, callsMatched: 0, parentHits: 0, parentAmbiguous: 0,
    propInjected: 0, propNoContext: 0, propAmbiguous: 0, propPresent: 0, propSplit: 0, propContinuation: 0, propPadded: 0,
    propTooLarge: 0, propPushFailed: 0, propStale: 0, propMulti: 0, propLostSync: 0, propNotPlaintext: 0, propNoEntry: 0,
    propUnknown: 0, propSpans: 0, propStateInjected: 0, propStateLost: 0, propStatePresent: 0, propStateTooLarge: 0,
  };
  /** pid:span id -> the context injected for it (bounded). */
  private readonly sent = new Map<string, Sent>();
  private procs = new Map<number, ProcessState>();
  private readonly timeoutNs: number;

  constructor(private readonly out: SpanOutput, private readonly scope: string, private readonly ctx: ServerSpanContext | undefined,
    private readonly settings: SpanSettings) {
    const ms = Number(process.env.OTEL_RUST_AGENT_CLIENT_TIMEOUT_MS);
    this.timeoutNs = (Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_TIMEOUT_MS) * 1e6;
  }

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind === KIND.H2_CLIENT_REQUEST) {
      if (len < REQ.$size) throw new DecodeError(`h2 client request record too short (${len})`);
      this.request(dv, off);
    } else if (kind === KIND.H2_CLIENT_RESPONSE || kind === KIND.H2_CLIENT_TRAILERS) {
      if (len < RES.$size) throw new DecodeError(`h2 client response record too short (${len})`);
      this.received(dv, off, kind === KIND.H2_CLIENT_TRAILERS);
    } else if (kind === KIND.H2_CLIENT_RESET) {
      if (len < RES.$size) throw new DecodeError(`h2 client reset record too short (${len})`);
      this.reset(dv, off);
    } else if (kind === KIND.H2_CLIENT_PROPAGATION) {
      if (len < PR.$size) throw new DecodeError(`h2 client propagation record too short (${len})`);
      this.propagated(dv, off);
    } else {
      throw new DecodeError(`h2-client: unknown event kind ${kind}`);
    }
  }

  private propagated(dv: DataView, off: number): void {
    const name = PROP_OUTCOMES[dv.getUint8(off + PR.outcome)];
    if (name) this.counts[name]++; else this.counts.propUnknown++;
    if (name !== 'propInjected') return;
    const state = dv.getUint8(off + PR.state);
    if (state === 1) this.counts.propStateInjected++;
    else if (state === 2) this.counts.propStateLost++;
    else if (state === 3) this.counts.propStatePresent++;
    else if (state === 4) this.counts.propStateTooLarge++;
    if (this.sent.size >= 16384) this.sent.clear();
    const key = `${dv.getUint32(off + 4, true)}:${dv.getUint32(off + PR.span_id, false)}:${dv.getUint32(off + PR.span_id + 4, false)}`;
    this.sent.set(key, {
      t0: dv.getUint32(off + PR.trace_id, false), t1: dv.getUint32(off + PR.trace_id + 4, false),
      t2: dv.getUint32(off + PR.trace_id + 8, false), t3: dv.getUint32(off + PR.trace_id + 12, false),
      p0: dv.getUint32(off + PR.parent_id, false), p1: dv.getUint32(off + PR.parent_id + 4, false), flags: dv.getUint8(off + PR.flags),
    });
  }

  private proc(pid: number): ProcessState {
    let p = this.procs.get(pid);
    if (!p) this.procs.set(pid, (p = new ProcessState()));
    return p;
  }

  private request(dv: DataView, off: number): void {
    const b = bytesOf(dv);
    const pid = dv.getUint32(off + 4, true);
    const p = this.proc(pid);
    this.counts.requests++;
    const str = (field: number, lenField: number, cap: number): string =>
      b.toString('latin1', off + field, off + field + Math.min(dv.getUint16(off + lenField, true), cap));
    const key = `${readU64Number(dv, off + REQ.conn)}:${dv.getUint32(off + REQ.stream_id, true)}`;
    const mi = dv.getUint8(off + REQ.method);
    const ext = mi === 0 ? str(REQ.method_name, REQ.method_len, 32) : undefined;
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    const s: Stream = {
      key, startLo: tsLo, startHi: tsHi, startMono: tsHi * 4294967296 + tsLo,
      method: METHODS[mi] ?? '_OTHER', methodOriginal: ext,
      path: str(REQ.path, REQ.path_len, 512), authority: str(REQ.authority, REQ.authority_len, 128),
      scheme: str(REQ.scheme, REQ.scheme_len, 8) || 'http', grpc: isGrpc(str(REQ.ctype, REQ.ctype_len, 64)), httpStatus: 0, url: undefined,
      t0: 0, t1: 0, t2: 0, t3: 0, p0: 0, p1: 0, flags: 1,
      s0: dv.getUint32(off + REQ.span_id, false), s1: dv.getUint32(off + REQ.span_id + 4, false),
    };
    if (dv.getUint8(off + REQ.prop) === 13) this.counts.propNotPlaintext++;
    if (s.method === '') s.method = '_OTHER';
    // The call as the application made it (context rule 6): a gRPC call
    // filed by tonic-client under its :path, a reqwest call filed by
    // hyper-h1-client under its authority and target.
    const m = this.ctx?.takeClientCall(pid, s.grpc ? `grpc ${s.path}` : `http ${s.authority} ${s.path}`, s.startMono);
    if (m) {
      this.counts.callsMatched++;
      s.startLo = m.call.tsLo; s.startHi = m.call.tsHi;
      s.url = m.call.url;
      if (m.ambiguous) this.counts.parentAmbiguous++;
      else if (m.call.parent) {
        const c = m.call;
        s.t0 = c.t0; s.t1 = c.t1; s.t2 = c.t2; s.t3 = c.t3; s.p0 = c.s0; s.p1 = c.s1; s.flags = c.flags;
      }
    }
    const old = p.streams.get(key);
    if (old) {
      p.streams.delete(key);
      this.end(pid, old, tsLo, tsHi, (rec) => this.failed(rec, old, 'connection_closed'));
      this.counts.closed++;
    }
    p.streams.set(key, s);
    if (p.streams.size > PENDING_MAX) {
      const first = p.streams.keys().next().value as string;
      p.streams.delete(first);
      this.counts.overflow++;
    }
  }

  private received(dv: DataView, off: number, trailers: boolean): void {
    const pid = dv.getUint32(off + 4, true);
    const p = this.procs.get(pid);
    const key = `${readU64Number(dv, off + RES.conn)}:${dv.getUint32(off + RES.stream_id, true)}`;
    const s = p?.streams.get(key);
    if (!p || !s) {
      if (trailers) this.counts.unmatchedTrailers++; else this.counts.unmatchedResponses++;
      return;
    }
    const status = dv.getUint16(off + RES.status, true);
    const endStream = dv.getUint8(off + RES.end_stream) !== 0;
    const grpcStatus = dv.getInt16(off + RES.grpc_status, true);
    const n = Math.min(dv.getUint16(off + RES.grpc_message_len, true), 128);
    const msg = n ? bytesOf(dv).toString('utf8', off + RES.grpc_message, off + RES.grpc_message + n) : undefined;
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    if (!s.grpc) {
      if (trailers) { this.counts.unmatchedTrailers++; return; }
      p.streams.delete(key);
      this.end(pid, s, tsLo, tsHi, (rec) => {
        rec.addInt(K.status, status);
        if (status >= 400) {
          rec.statusCode = StatusCode.ERROR;
          rec.addString(K.errorType, String(status));
        }
      });
      return;
    }
    if (!trailers && !endStream) { s.httpStatus = status; return; } // the status comes with the trailers
    p.streams.delete(key);
    let code = grpcStatus;
    if (code < 0) {
      const http = trailers ? s.httpStatus : status;
      if (http !== 200 && http !== 0) code = codeFromHttp(http);
      else { code = UNKNOWN; this.counts.noGrpcStatus++; }
    }
    this.end(pid, s, tsLo, tsHi, (rec) => this.grpcStatus(rec, code, msg));
  }

  /** RST_STREAM for an open stream: ERROR with the RFC 9113 error name; a gRPC call with the code gRPC maps it to (CANCEL: CANCELLED, REFUSED_STREAM: UNAVAILABLE, ...). */
  private reset(dv: DataView, off: number): void {
    const pid = dv.getUint32(off + 4, true);
    const key = `${readU64Number(dv, off + RES.conn)}:${dv.getUint32(off + RES.stream_id, true)}`;
    const p = this.procs.get(pid);
    const s = p?.streams.get(key);
    if (!p || !s) { this.counts.unmatchedResets++; return; } // a server's stream, or one already ended
    p.streams.delete(key);
    this.counts.resets++;
    const code = dv.getUint32(off + RES.reset_code, true);
    const name = H2_ERRORS[code] ?? `0x${code.toString(16)}`;
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    this.end(pid, s, tsLo, tsHi, (rec) => {
      const grpc = s.grpc ? RST_TO_CODE[name] : undefined;
      if (grpc !== undefined) this.grpcStatus(rec, grpc, undefined);
      else this.failed(rec, s, name);
    });
  }

  private grpcStatus(rec: SpanRecord, code: number, wireMessage: string | undefined): void {
    const name = GRPC_CODES[code] ?? String(code);
    rec.addString(K.rpcStatus, name);
    if (this.settings.rpcDup) rec.addInt(K.oldStatus, code);
    if (code !== 0) {
      rec.statusCode = StatusCode.ERROR;
      rec.addString(K.errorType, name);
      const m = wireMessage && percentDecode(wireMessage);
      if (m) rec.statusMessage = m;
    }
  }

  private failed(rec: SpanRecord, _s: Stream, errorType: string): void {
    rec.statusCode = StatusCode.ERROR;
    rec.addString(K.errorType, errorType);
  }

  /** Emits the span of `s`, ended at (endLo, endHi), after `shape` added the end's attributes. */
  private end(pid: number, s: Stream, endLo: number, endHi: number, shape: (rec: SpanRecord) => void): void {
    const rec = acquireRecord();
    try {
      rec.kind = SpanKind.CLIENT;
      rec.pid = pid;
      if (s.p0 !== 0 || s.p1 !== 0) {
        rec.t0 = s.t0; rec.t1 = s.t1; rec.t2 = s.t2; rec.t3 = s.t3; rec.p0 = s.p0; rec.p1 = s.p1; rec.flags = s.flags;
        this.counts.parentHits++;
      } else {
        rec.newTraceId();
        rec.flags = 1;
      }
      rec.newSpanId();
      // The id send_headers made, and what went on the wire with it (src/propagation):
      // the exported span says what the server saw.
      if ((s.s0 | s.s1) !== 0) {
        rec.s0 = s.s0; rec.s1 = s.s1;
        const key = `${pid}:${s.s0}:${s.s1}`;
        const w = this.sent.get(key);
        if (w) {
          this.sent.delete(key);
          rec.t0 = w.t0; rec.t1 = w.t1; rec.t2 = w.t2; rec.t3 = w.t3; rec.p0 = w.p0; rec.p1 = w.p1; rec.flags = w.flags;
          this.counts.propSpans++;
        }
      }
      const hp = s.authority ? splitHostBytes(Buffer.from(s.authority, 'latin1'), 0, s.authority.length) : undefined;
      const address = hp ? s.authority.slice(hp.addrStart, hp.addrEnd) : undefined;
      if (s.grpc) {
        rec.scope = GRPC_SCOPE;
        const m = s.path.length > 1 && s.path[0] === '/' ? s.path.slice(1) : '';
        rec.name = m || 'grpc';
        rec.addString(K.rpcSystem, 'grpc');
        rec.addString(K.rpcMethod, m || '_OTHER');
        if (address) rec.addString(K.address, address);
        if (hp) rec.addInt(K.port, hp.port >= 0 ? hp.port : s.scheme === 'https' ? 443 : 80);
        if (this.settings.rpcDup) {
          rec.addString(K.oldSystem, 'grpc');
          const slash = m.lastIndexOf('/');
          if (slash > 0) rec.addString(K.oldService, m.slice(0, slash));
        }
        this.counts.grpcSpans++;
      } else {
        rec.scope = this.scope;
        rec.name = s.method === '_OTHER' ? 'HTTP' : s.method;
        rec.addString(K.method, s.method);
        if (s.methodOriginal !== undefined) rec.addString(K.methodOriginal, s.methodOriginal);
        rec.addString(K.url, s.url ?? safeUrl(s.scheme, s.authority, s.path || '/'));
        if (address) rec.addString(K.address, address);
        if (hp) rec.addInt(K.port, hp.port >= 0 ? hp.port : s.scheme === 'https' ? 443 : 80);
        rec.addString(K.version, '2');
      }
      shape(rec);
      const clock = this.out.clock;
      rec.setStartMono(s.startLo, s.startHi, clock);
      rec.setEndMono(endLo, endHi, clock);
      this.counts.spans++;
      this.out.emit(rec);
    } finally {
      releaseRecord(rec);
    }
  }

  forgetProcess(pid: number): number {
    const p = this.procs.get(pid);
    this.procs.delete(pid);
    return p ? p.streams.size : 0;
  }

  pids(): number[] {
    return [...this.procs.keys()];
  }

  expire(nowMono: bigint): void {
    const now = Number(nowMono);
    this.ctx?.expireClientCalls(now, this.timeoutNs);
    for (const [pid, p] of this.procs) {
      for (const [k, s] of p.streams) {
        if (now - s.startMono < this.timeoutNs) break; // start order
        p.streams.delete(k);
        this.counts.timeouts++;
        const end = s.startMono + this.timeoutNs;
        this.end(pid, s, end % 4294967296, Math.floor(end / 4294967296), (rec) => this.failed(rec, s, 'timeout'));
      }
    }
  }

  stats(): Record<string, number> {
    let pending = 0;
    for (const p of this.procs.values()) pending += p.streams.size;
    return { ...this.counts, pending };
  }
}
