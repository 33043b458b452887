// hyper HTTP/1 client events -> CLIENT spans, one per request on the wire.
//
// A request event (encode entry) files a pending call under the pointer words
// of hyper's Encode; the response event (parse entry) carries the ParseContext
// word that found the call in BPF (`&mut conn.state.method`, one address per
// connection), the call's start time, thread and task, and both heads: the
// request head still in the connection's write buffer and the response bytes.
// So a response event alone makes the span; the pending table is only there so
// that a request that never gets a response head ends, with error.type, and is
// counted, instead of being forgotten.
//
// Redirects: a 3xx response with a Location remembers the resolved URL for a
// short while; the next request in the same process for exactly that URL,
// started after that response, is its resend (http.request.resend_count =
// the previous hop's + 1). hyper itself never follows redirects: whoever does
// (reqwest, tower-http) sends the next hop as a new request, which is a new
// span here.
//
// TLS is not visible at this layer (the heads are plaintext on both sides of
// rustls): url.full says http unless the connection is known to be TLS; see
// README.md.
import type { SpanBuilder, SpanOutput } from '../library';
import type { ServerSpanContext, ClientCall } from '../../spans/context';
import { DecodeError, bytesOf, readU64Number } from '../../events/header';
import { acquireRecord, releaseRecord, attrKey, attrSet, SpanKind, StatusCode, type AttrSet, type SpanRecord } from '../../spans/record';
import { HeadScan, scanRequestHead, knownMethod, splitHostBytes } from '../../spans/http';
import { H1_CLIENT_LAYOUTS } from './layouts';
import { safeUrl, resolveLocation } from './url';
import { ProcessMemory } from '../../targets/memory';

const { kinds: KIND, constants: C, structs: S } = H1_CLIENT_LAYOUTS;
const REQ = S.h1c_request_event;
const RES = S.h1c_response_event;
const RQ = S.reqwest_call_event;
const PR = S.h1c_propagation_event;
const RE = S.reqwest_error_event;

/**
 * error.type of a connect failure (reqwest_request_error): the OS error of a
 * "tcp connect error", by errno; a low-cardinality name for the common ones,
 * `connect_error` for the rest (and for a non-OS cause, e.g. reqwest's
 * connect_timeout wrapping a TimedOut).
 */
const CONNECT_ERRNO: Record<number, string> = {
  111: 'connection_refused', // ECONNREFUSED
  110: 'timeout', // ETIMEDOUT: the kernel gave up on the handshake
  113: 'host_unreachable', // EHOSTUNREACH
  101: 'network_unreachable', // ENETUNREACH
  104: 'connection_reset', // ECONNRESET
};
export function connectErrorType(what: number, os: number): string | undefined {
  if (what === C.RQE_DNS) return 'dns_error';
  if (what !== C.RQE_TCP_CONNECT) return undefined;
  return CONNECT_ERRNO[os] ?? 'connect_error';
}
/** h1c_propagation_outcome (events.h) -> stats counter. */
const PROP_OUTCOMES: Record<number, keyof PropagationStats> = {
  1: 'propInjected', 2: 'propNotPlaintext', 3: 'propSplitHead', 4: 'propNoContext', 5: 'propAmbiguous', 6: 'propPresent', 7: 'propPushFailed', 8: 'propStale',
};

/** What the socket program did with each request head (src/propagation). */
export interface PropagationStats {
  propInjected: number; propNotPlaintext: number; propSplitHead: number; propNoContext: number;
  propAmbiguous: number; propPresent: number; propPushFailed: number; propStale: number; propUnknown: number;
  /** Spans exported under the trace id / parent that went on the wire. */
  propSpans: number;
  /** The incoming request's tracestate: inserted after the traceparent; lost (its BPF entry evicted: traceparent alone); the request had its own (left alone). */
  propStateInjected: number; propStateLost: number; propStatePresent: number;
}

/** The context a request carried on the wire, by client span id. */
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
  resend: attrKey('http.request.resend_count'),
};

/** A request that got no response head within this long is ended as `timeout` (OTEL_RUST_AGENT_CLIENT_TIMEOUT_MS). */
const DEFAULT_TIMEOUT_MS = 30_000;
/** At most this many calls wait for a response per process; beyond, the oldest is ended (counted `overflow`). */
export const PENDING_MAX = 16_384;
/** A redirect's next hop is expected within this long. */
const REDIRECT_WINDOW_NS = 30e9;
/** Calls waiting longer than this get their request head read from the process (readHeads). */
const HEAD_READ_AFTER_NS = 20e6;
const HEAD_READ_TICK_MS = 25;

const methodSets = new Map<string, AttrSet>();
function methodSet(method: string, version: number): AttrSet {
  const k = `${method} ${version}`;
  let s = methodSets.get(k);
  if (!s) {
    const v = version === 11 ? '1.1' : version === 10 ? '1.0' : `${Math.floor(version / 10)}.${version % 10}`;
    s = attrSet([[K.method, method], [K.version, v]]);
    if (methodSets.size < 64) methodSets.set(k, s);
  }
  return s;
}
const statusSets: AttrSet[] = [];
function statusSet(status: number): AttrSet {
  // Client side: 4xx and 5xx are errors (semconv HTTP client spans).
  return statusSets[status] ??= attrSet(status >= 400
    ? [[K.status, status], [K.errorType, String(status)]]
    : [[K.status, status]]);
}

interface Pending {
  pid: number;
  startMono: number;
  startLo: number;
  startHi: number;
  tid: number;
  taskId: number;
  words: number[];
  open: boolean;
  /** The connection's head buffer (Vec<u8>) and its ptr/cap word indexes. */
  dstAddr: number;
  vecPtrIdx: number;
  vecCapIdx: number;
  /** The request head, read from the process while it waits (slow calls only), for a span that ends unanswered. */
  head: Buffer | undefined;
  headTried: boolean;
  prev: Pending | undefined;
  next: Pending | undefined;
}

/** Parent and caller facts a redirect hop inherits from the hop before it. */
interface Lineage {
  count: number;
  at: number;
  scheme: string;
  task: number;
  /** Trace id words and parent span id words (p0 = p1 = 0: root). */
  t0: number; t1: number; t2: number; t3: number; p0: number; p1: number; flags: number;
}

/** A reqwest::blocking call on its calling thread, with the parent found then (none: p = false). */
interface BlockingCall {
  tsLo: number; tsHi: number; mono: number;
  parent: boolean;
  t0: number; t1: number; t2: number; t3: number; s0: number; s1: number; flags: number;
}

function sameParent(a: BlockingCall, b: BlockingCall): boolean {
  return a.parent === b.parent && (!a.parent || (a.s0 === b.s0 && a.s1 === b.s1 && a.t0 === b.t0 && a.t1 === b.t1 && a.t2 === b.t2 && a.t3 === b.t3));
}

/** reqwest::blocking names its runtime thread "reqwest-internal-sync-runtime"; the kernel keeps 15 bytes. Read in BPF (the thread may be gone when the agent reads the event). */
const SYNC_RUNTIME_COMM = Buffer.from('reqwest-interna', 'latin1');
function isSyncRuntimeComm(dv: DataView, at: number): boolean {
  for (let i = 0; i < SYNC_RUNTIME_COMM.length; i++) if (dv.getUint8(at + i) !== SYNC_RUNTIME_COMM[i]) return false;
  return true;
}

class ProcessState {
  /** reqwest::blocking calls by url.full, oldest first, waiting for the async call reqwest's runtime thread makes for them. */
  blockingCalls = new Map<string, BlockingCall[]>();
  blockingCount = 0;
  /** Pending calls by Encode word (only pointer-shaped words are filed). */
  byWord = new Map<number, Pending>();
  head: Pending | undefined;
  tail: Pending | undefined;
  size = 0;
  /** Encode word index that holds the connection key, per encode instance (-1: not yet known). */
  keyWord: number[] = [];
  /** Resolved Location of recent 3xx responses -> (resend count of that hop, response time). */
  redirects = new Map<string, Lineage>();

  link(r: Pending): void {
    r.prev = this.tail; r.next = undefined;
    if (this.tail) this.tail.next = r; else this.head = r;
    this.tail = r;
    this.size++;
  }

  unlink(r: Pending): void {
    if (r.prev) r.prev.next = r.next; else this.head = r.next;
    if (r.next) r.next.prev = r.prev; else this.tail = r.prev;
    r.prev = r.next = undefined;
    this.size--;
  }
}

function pointerLike(w: number): boolean {
  return w >= 0x10000 && w < 0x800000000000 && w % 8 === 0;
}

export interface H1ClientStats extends PropagationStats {
  requests: number;
  spans: number;
  partialResponses: number;
  unparsableResponses: number;
  /** Response events whose request head no longer parsed (overwritten before the response came). */
  requestHeadLost: number;
  /** Responses whose request event was not seen (attached mid-call): spans made from the response alone. */
  unmatchedResponses: number;
  timeouts: number;
  /** A new request on a connection whose previous request had no response: that one ended as connection_closed. */
  closed: number;
  overflow: number;
  redirectsFollowed: number;
  informational: number;
  /** reqwest calls seen (execute_request), and those matched to their first wire request. */
  calls: number;
  callsMatched: number;
  /** Calls whose URL could not be read or parsed. */
  callsUnparsable: number;
  /** Parents: spans given the caller task's server span / calls whose task had no open server span / spans left without one because calls for the same URL from several tasks were waiting. */
  parentHits: number;
  parentMisses: number;
  /** reqwest::blocking calls seen (calling thread), and async calls of reqwest's runtime thread matched to one (by exact URL). */
  blockingCalls: number;
  blockingMatched: number;
  /** Runtime-thread calls left without the blocking call's parent: several blocking calls for the URL with different parents were waiting. */
  blockingAmbiguous: number;
  /** reqwest::blocking calls whose URL could not be read whole (no hand-over possible: the runtime thread's call is a root). */
  blockingUnparsable: number;
  /** Calls on reqwest::blocking's runtime thread that found no waiting blocking call for their URL (roots). */
  blockingUnmatched: number;
  parentAmbiguous: number;
  /** reqwest calls made inside a confirmed manual (OpenTelemetry SDK) span, parented to it; reads of the SDK's current span left unused: trace id never sighted, RefCell being written, failed read. */
  manualParents: number;
  manualUnconfirmed: number;
  manualBusy: number;
  manualBadRead: number;
  /** reqwest calls parented to the OTEP 4947 thread-context record of their thread; records unusable (valid byte, no ids) / unreadable. */
  threadCtxParents: number;
  threadCtxInvalid: number;
  threadCtxBadRead: number;
  /** Request heads read from the process for calls still waiting after 20 ms. */
  headReads: number;
  /** Unanswered calls ended without a readable request head (no method/URL on the span). */
  unansweredWithoutHead: number;
  /** reqwest_request_error hits: all / connect failures made spans / not a connect error (no span: not named without guessing) / no call of that task waiting / calls of that task under several keys or parents waiting. */
  requestErrors: number;
  connectFailures: number;
  requestErrorsOther: number;
  requestErrorsUnmatched: number;
  requestErrorsAmbiguous: number;
}

/** Status line at b[p..end): 'HTTP/d.d SP ddd'; returns the status or -1. */
function statusAt(b: Uint8Array, p: number, end: number): number {
  if (end - p < 12 || b[p] !== 0x48 || b[p + 1] !== 0x54 || b[p + 2] !== 0x54 || b[p + 3] !== 0x50 || b[p + 4] !== 0x2f || b[p + 8] !== 0x20) return -1;
  let v = 0;
  for (let i = 9; i < 12; i++) {
    const d = b[p + i] - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Index just past the CRLFCRLF ending the head that starts at p, or -1. */
function headEnd(b: Buffer, p: number, end: number): number {
  const i = b.indexOf('\r\n\r\n', p, 'latin1');
  return i < 0 || i + 4 > end ? -1 : i + 4;
}

/** The Location header's value in the head b[p..e), or undefined. */
function locationIn(b: Buffer, p: number, e: number): string | undefined {
  let ls = b.indexOf('\r\n', p, 'latin1') + 2;
  while (ls > 1 && ls < e) {
    const le = b.indexOf('\r\n', ls, 'latin1');
    if (le < 0 || le > e || le === ls) return undefined;
    if (le - ls > 9 && (b[ls] | 0x20) === 0x6c && b[ls + 8] === 0x3a && b.toString('latin1', ls, ls + 8).toLowerCase() === 'location') {
      return b.toString('latin1', ls + 9, le).trim();
    }
    ls = le + 2;
  }
  return undefined;
}

/** scheme, authority (without userinfo) and origin-form target of an http(s) URL as reqwest serializes it. */
function splitUrl(u: string): { scheme: 'http' | 'https'; authority: string; target: string } | undefined {
  const scheme = u.startsWith('https://') ? 'https' : u.startsWith('http://') ? 'http' : undefined;
  if (!scheme) return undefined;
  const s = scheme.length + 3;
  let e = s;
  while (e < u.length && u[e] !== '/' && u[e] !== '?' && u[e] !== '#') e++;
  let authority = u.slice(s, e);
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  let target = u.slice(e);
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  if (!target.startsWith('/')) target = `/${target}`;
  return { scheme, authority, target };
}

export class HyperH1ClientSpans implements SpanBuilder {
  readonly counts: H1ClientStats = {
    requests: 0, spans: 0, partialResponses: 0, unparsableResponses: 0, requestHeadLost: 0, unmatchedResponses: 0,
    timeouts: 0, closed: 0, overflow: 0, redirectsFollowed: 0, informational: 0, headReads: 0, unansweredWithoutHead: 0,
    calls: 0, callsMatched: 0, callsUnparsable: 0, parentHits: 0, parentMisses: 0, parentAmbiguous: 0,
    manualParents: 0, manualUnconfirmed: 0, manualBusy: 0, manualBadRead: 0, threadCtxParents: 0, threadCtxInvalid: 0, threadCtxBadRead: 0,
    blockingCalls: 0, blockingMatched: 0, blockingAmbiguous: 0, blockingUnparsable: 0, blockingUnmatched: 0,
    requestErrors: 0, connectFailures: 0, requestErrorsOther: 0, requestErrorsUnmatched: 0, requestErrorsAmbiguous: 0,
    propInjected: 0, propNotPlaintext: 0, propSplitHead: 0, propNoContext: 0, propAmbiguous: 0, propPresent: 0, propPushFailed: 0,
    propStale: 0, propUnknown: 0, propSpans: 0, propStateInjected: 0, propStateLost: 0, propStatePresent: 0,
  };
  /** pid:span id -> the context injected for it (bounded). */
  private readonly sent = new Map<string, Sent>();
  private procs = new Map<number, ProcessState>();
  private readonly scan = new HeadScan();
  private readonly timeoutNs: number;

  constructor(private readonly out: SpanOutput, private readonly scope: string, private readonly ctx?: ServerSpanContext) {
    const ms = Number(process.env.OTEL_RUST_AGENT_CLIENT_TIMEOUT_MS);
    this.timeoutNs = (Number.isFinite(ms) && ms > 0 ? ms : DEFAULT_TIMEOUT_MS) * 1e6;
  }

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind === KIND.H1_CLIENT_REQUEST) {
      if (len < REQ.$size) throw new DecodeError(`h1 client request record too short (${len})`);
      this.request(dv, off);
    } else if (kind === KIND.H1_CLIENT_RESPONSE) {
      if (len < RES.$size) throw new DecodeError(`h1 client response record too short (${len})`);
      this.response(dv, off);
    } else if (kind === KIND.REQWEST_BLOCKING_CALL) {
      if (len < RQ.$size) throw new DecodeError(`reqwest blocking call record too short (${len})`);
      this.blockingCall(dv, off);
    } else if (kind === KIND.REQWEST_CALL) {
      if (len < RQ.$size) throw new DecodeError(`reqwest call record too short (${len})`);
      this.call(dv, off);
    } else if (kind === KIND.REQWEST_ERROR) {
      if (len < RE.$size) throw new DecodeError(`reqwest error record too short (${len})`);
      this.requestError(dv, off);
    } else if (kind === KIND.H1_CLIENT_PROPAGATION) {
      if (len < PR.$size) throw new DecodeError(`h1 client propagation record too short (${len})`);
      this.propagated(dv, off);
    } else {
      throw new DecodeError(`hyper-h1-client: unknown event kind ${kind}`);
    }
  }

  private propagated(dv: DataView, off: number): void {
    const outcome = dv.getUint8(off + PR.outcome);
    const name = PROP_OUTCOMES[outcome];
    if (name) this.counts[name]++; else this.counts.propUnknown++;
    if (name !== 'propInjected') return;
    const state = dv.getUint8(off + PR.state);
    if (state === 1) this.counts.propStateInjected++;
    else if (state === 2) this.counts.propStateLost++;
    else if (state === 3) this.counts.propStatePresent++;
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

  private call(dv: DataView, off: number): void {
    const pid = dv.getUint32(off + 4, true);
    this.proc(pid);
    this.counts.calls++;
    const len = dv.getUint32(off + RQ.url_len, true);
    const captured = Math.min(dv.getUint32(off + RQ.captured, true), C.RQ_URL_CAPTURE);
    const parts = captured === len ? splitUrl(bytesOf(dv).toString('latin1', off + RQ.url, off + RQ.url + captured)) : undefined;
    if (!parts) { this.counts.callsUnparsable++; return; }
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    if (!this.ctx) return;
    // Filed in the shared context (rule 6): the wire request may be HTTP/1
    // (taken here) or HTTP/2 (taken by h2-client). The caller's server span
    // is looked up now, while it is surely open.
    // reqwest::blocking's runtime thread takes its parent from the blocking
    // call it serves (fromBlocking), never from its own thread key.
    const task = readU64Number(dv, off + RQ.task_id);
    const syncRuntime = task === 0 && isSyncRuntimeComm(dv, off + RQ.comm);
    const c = this.ctx.fileClientCall(pid, `http ${parts.authority} ${parts.target}`, {
      tsLo, tsHi, mono: tsHi * 4294967296 + tsLo, task, tid: syncRuntime ? 0 : dv.getUint32(off + 8, true),
      scheme: parts.scheme, url: safeUrl(parts.scheme, parts.authority, parts.target),
    });
    if (this.manualParent(dv, off, c)) return;
    if (!c.parent && c.task !== 0) this.counts.parentMisses++;
    if (syncRuntime) this.fromBlocking(this.proc(pid), c);
  }

  /**
   * The application's own OpenTelemetry span current on the calling thread
   * (read in BPF, src/libs/otel-sdk/current.h), when its trace id is one the
   * SDK's sampler probe saw this process give a span: the call's parent, in
   * that span's trace (`manualParents`). It wins over the server span of the
   * caller's task: the manual span is nested inside it (or the application
   * started it elsewhere on purpose). With the OTLP relay on, the relay then
   * moves the manual trace, this span included, into the agent's trace.
   * Reads that found no span, or could not be confirmed, are counted and
   * leave the parent as it was.
   */
  private manualParent(dv: DataView, off: number, c: { parent: boolean; t0: number; t1: number; t2: number; t3: number; s0: number; s1: number; flags: number }): boolean {
    const st = dv.getUint8(off + RQ.sdk_state);
    if (st !== C.OTEL_CX_OK) {
      if (st === C.OTEL_CX_UNSEEN) this.counts.manualUnconfirmed++;
      else if (st === C.OTEL_CX_BUSY) this.counts.manualBusy++;
      else if (st !== C.OTEL_CX_OFF && st !== C.OTEL_CX_NONE) this.counts.manualBadRead++;
      return this.threadCtxParent(dv, off, c);
    }
    const hi = off + RQ.sdk_trace_hi, lo = off + RQ.sdk_trace_lo, sp = off + RQ.sdk_span_id;
    c.parent = true;
    c.t0 = dv.getUint32(hi + 4, true); c.t1 = dv.getUint32(hi, true);
    c.t2 = dv.getUint32(lo + 4, true); c.t3 = dv.getUint32(lo, true);
    c.s0 = dv.getUint32(sp + 4, true); c.s1 = dv.getUint32(sp, true);
    c.flags = 1;
    this.counts.manualParents++;
    return true;
  }

  /**
   * OTEP 4947: the Thread-Local Context Record the process published on the
   * calling thread (otel_thread_ctx_v1, read in BPF): its span is the call's
   * parent (`threadCtxParents`) when the SDK's current span is not confirmed.
   * The SDK's wins when both exist: it is checked against the spans the SDK
   * really made and is re-attached for every poll of the task it belongs to,
   * while a thread record is only as current as its writer keeps it across
   * the async tasks that share the thread.
   */
  private threadCtxParent(dv: DataView, off: number, c: { parent: boolean; t0: number; t1: number; t2: number; t3: number; s0: number; s1: number; flags: number }): boolean {
    const st = dv.getUint8(off + RQ.tctx_state);
    if (st !== C.TCTX_OK) {
      if (st === C.TCTX_INVALID) this.counts.threadCtxInvalid++;
      else if (st === C.TCTX_FAULT) this.counts.threadCtxBadRead++;
      return false;
    }
    const t = off + RQ.tctx_trace_id, s = off + RQ.tctx_span_id;
    c.parent = true;
    c.t0 = dv.getUint32(t, false); c.t1 = dv.getUint32(t + 4, false); c.t2 = dv.getUint32(t + 8, false); c.t3 = dv.getUint32(t + 12, false);
    c.s0 = dv.getUint32(s, false); c.s1 = dv.getUint32(s + 4, false);
    c.flags = 1;
    this.counts.threadCtxParents++;
    return true;
  }

  /** A reqwest::blocking call on its calling thread: waits (with its parent, found now) for the async call it hands over. */
  private blockingCall(dv: DataView, off: number): void {
    const pid = dv.getUint32(off + 4, true);
    const p = this.proc(pid);
    this.counts.blockingCalls++;
    const len = dv.getUint32(off + RQ.url_len, true);
    const captured = Math.min(dv.getUint32(off + RQ.captured, true), C.RQ_URL_CAPTURE);
    const parts = captured === len ? splitUrl(bytesOf(dv).toString('latin1', off + RQ.url, off + RQ.url + captured)) : undefined;
    if (!parts) { this.counts.blockingUnparsable++; return; }
    if (!this.ctx) return;
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    const b: BlockingCall = { tsLo, tsHi, mono: tsHi * 4294967296 + tsLo, parent: false, t0: 0, t1: 0, t2: 0, t3: 0, s0: 0, s1: 0, flags: 1 };
    const srv = this.ctx.parentFor(pid, readU64Number(dv, off + RQ.task_id), dv.getUint32(off + 8, true));
    if (!this.manualParent(dv, off, b) && srv) {
      const r = srv.rec;
      b.parent = true;
      b.t0 = r.t0; b.t1 = r.t1; b.t2 = r.t2; b.t3 = r.t3; b.s0 = r.s0; b.s1 = r.s1; b.flags = r.flags;
    }
    const url = safeUrl(parts.scheme, parts.authority, parts.target);
    const l = p.blockingCalls.get(url);
    if (l) l.push(b); else p.blockingCalls.set(url, [b]);
    if (++p.blockingCount > 16_384) {
      // Oldest first out.
      let oldK: string | undefined, old = Infinity;
      for (const [k, x] of p.blockingCalls) if (x[0].mono < old) { old = x[0].mono; oldK = k; }
      if (oldK !== undefined) { const x = p.blockingCalls.get(oldK)!; x.shift(); if (!x.length) p.blockingCalls.delete(oldK); p.blockingCount--; }
    }
  }

  /**
   * An async call made outside any task on reqwest::blocking's runtime
   * thread is the one a blocking call handed over: the oldest blocking call
   * for exactly this url.full, made before it. Its parent is taken only when
   * every blocking call for that URL waiting then has the same parent.
   */
  private fromBlocking(p: ProcessState, c: ClientCall): void {
    const url = c.url;
    if (url === undefined) return;
    const l = p.blockingCalls.get(url);
    if (!l || l[0].mono > c.mono) { this.counts.blockingUnmatched++; return; }
    const b = l[0];
    let ambiguous = false;
    for (let i = 1; i < l.length && l[i].mono <= c.mono; i++) if (!sameParent(l[i], b)) { ambiguous = true; break; }
    l.shift();
    if (l.length === 0) p.blockingCalls.delete(url);
    p.blockingCount--;
    this.counts.blockingMatched++;
    if (ambiguous) { this.counts.blockingAmbiguous++; return; }
    c.tsLo = b.tsLo; c.tsHi = b.tsHi;
    c.parent = b.parent;
    c.t0 = b.t0; c.t1 = b.t1; c.t2 = b.t2; c.t3 = b.t3; c.s0 = b.s0; c.s1 = b.s1; c.flags = b.flags;
  }

  /**
   * The reqwest call a wire request (Host `authority`, `target`, encoded at
   * `encMono`) belongs to: the oldest one for the same authority and target
   * handed over before it. `ambiguous` when calls for that URL from more than
   * one task were waiting: FIFO order between tasks is not known, so the
   * caller's task (the parent) is not used then.
   */
  private takeCall(pid: number, authority: string, target: string, encMono: number): { call: ClientCall; ambiguous: boolean } | undefined {
    const m = this.ctx?.takeClientCall(pid, `http ${authority} ${target}`, encMono);
    if (m) this.counts.callsMatched++;
    return m;
  }

  /** Parent = the server span that was open in the caller's task when it made the call (context key `task`); counted. */
  private parentFrom(rec: SpanRecord, c: ClientCall): void {
    if (!c.parent) return;
    rec.t0 = c.t0; rec.t1 = c.t1; rec.t2 = c.t2; rec.t3 = c.t3;
    rec.p0 = c.s0; rec.p1 = c.s1;
    rec.flags = c.flags;
    this.counts.parentHits++;
  }

  private request(dv: DataView, off: number): void {
    const pid = dv.getUint32(off + 4, true);
    const instance = dv.getUint16(off + 14, true);
    const p = this.proc(pid);
    this.counts.requests++;
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    const words: number[] = [];
    for (let i = 0; i < C.H1C_MSG_WORDS; i++) words.push(readU64Number(dv, off + REQ.msg_words + i * 8));
    const pend: Pending = {
      pid, startLo: tsLo, startHi: tsHi, startMono: tsHi * 4294967296 + tsLo, tid: dv.getUint32(off + 8, true),
      taskId: readU64Number(dv, off + REQ.task_id), words, open: true, prev: undefined, next: undefined,
      dstAddr: readU64Number(dv, off + REQ.dst_addr), vecPtrIdx: dv.getUint32(off + REQ.vec_ptr_idx, true),
      vecCapIdx: dv.getUint32(off + REQ.vec_cap_idx, true), head: undefined, headTried: false,
    };
    this.armHeadReads();
    const key = p.keyWord[instance] ?? -1;
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (!pointerLike(w) || (key >= 0 && i !== key)) continue;
      const old = p.byWord.get(w);
      // A new request on the same connection while the last one is still
      // pending: hyper sends one request at a time per HTTP/1 connection, so
      // the old one will get no response (its connection was closed and this
      // address reused).
      if (old && old.open && key >= 0) this.endUnanswered(p, old, 'connection_closed', tsLo, tsHi);
      p.byWord.set(w, pend);
    }
    p.link(pend);
    if (p.size > PENDING_MAX) {
      this.counts.overflow++;
      this.drop(p, p.head!);
    }
  }

  private response(dv: DataView, off: number): void {
    const pid = dv.getUint32(off + 4, true);
    const instance = dv.getUint16(off + 14, true);
    const p = this.proc(pid);
    const b = bytesOf(dv);
    const key = readU64Number(dv, off + RES.key);
    const resCaptured = Math.min(dv.getUint32(off + RES.res_captured, true), C.H1C_RES_CAPTURE);
    const reqCaptured = Math.min(dv.getUint32(off + RES.req_captured, true), C.H1C_REQ_CAPTURE);
    const rs = off + RES.res_head, re = rs + resCaptured;

    // The response head; 1xx heads before it are skipped (hyper's parse loops over them).
    let hs = rs;
    let status = -1;
    let he = -1;
    for (;;) {
      status = statusAt(b, hs, re);
      if (status < 0) { this.counts.unparsableResponses++; return; }
      he = headEnd(b, hs, re);
      if (he < 0) {
        if (resCaptured < C.H1C_RES_CAPTURE) { this.counts.partialResponses++; return; } // hyper parses again when more arrives
        break; // a head longer than the capture: the status line is enough
      }
      if (status >= 200 || status === 101) break;
      this.counts.informational++;
      hs = he;
    }

    const pend = p.byWord.get(key);
    if (pend && pend.open) {
      // Learn which Encode word is the connection's (for this instance).
      if ((p.keyWord[instance] ?? -1) < 0) {
        const i = pend.words.indexOf(key);
        if (i >= 0) p.keyWord[instance] = i;
      }
      this.drop(p, pend);
    } else {
      this.counts.unmatchedResponses++;
    }

    const qs = off + RES.req_head, qe = qs + reqCaptured;
    const sc = this.scan;
    if (!scanRequestHead(b, dv, qs, qe, reqCaptured >= C.H1C_REQ_CAPTURE, sc)) {
      this.counts.requestHeadLost++;
      return;
    }
    const rec = acquireRecord();
    try {
      rec.kind = SpanKind.CLIENT;
      rec.pid = pid;
      rec.scope = this.scope;
      const method = knownMethod(b, qs, sc.methodEnd);
      if (method) {
        rec.name = method;
        rec.addSet(methodSet(method, sc.version));
      } else {
        rec.name = 'HTTP';
        rec.addSet(methodSet('_OTHER', sc.version));
        rec.addBytesCopy(K.methodOriginal, dv, qs, sc.methodEnd);
      }
      let authority = '';
      if (sc.hostStart >= 0) authority = b.toString('latin1', sc.hostStart, sc.hostEnd);
      const target = b.toString('latin1', sc.targetStart, sc.targetEnd);
      const startLo0 = dv.getUint32(off + RES.req_ts_ns, true), startHi0 = dv.getUint32(off + RES.req_ts_ns + 4, true);
      const encMono = startHi0 * 4294967296 + startLo0;
      const m = this.takeCall(pid, authority, target, encMono);
      let scheme = m?.call.scheme ?? 'http';
      let url = m?.call.url ?? safeUrl(scheme, authority, target);
      const hop = m ? undefined : p.redirects.get(url) ?? p.redirects.get(safeUrl('https', authority, target));
      if (hop) { scheme = hop.scheme === 'https' ? 'https' : 'http'; url = safeUrl(scheme, authority, target); }
      if (sc.hostStart >= 0) {
        const hp = splitHostBytes(b, sc.hostStart, sc.hostEnd);
        if (hp) {
          rec.addBytesCopy(K.address, dv, hp.addrStart, hp.addrEnd);
          rec.addInt(K.port, hp.port >= 0 ? hp.port : scheme === 'https' ? 443 : 80);
        }
      }
      rec.addString(K.url, url);
      // Start: when the application handed the call to reqwest (first hop),
      // else when hyper encoded the head.
      const startLo = m ? m.call.tsLo : startLo0, startHi = m ? m.call.tsHi : startHi0;
      rec.newTraceId();
      rec.flags = 1;
      let task = 0;
      if (m) {
        task = m.call.task;
        if (m.ambiguous) this.counts.parentAmbiguous++;
        else this.parentFrom(rec, m.call);
      }
      if (hop) {
        p.redirects.delete(url);
        if (encMono >= hop.at && encMono - hop.at < REDIRECT_WINDOW_NS) {
          rec.addInt(K.resend, hop.count + 1);
          this.counts.redirectsFollowed++;
          task = hop.task;
          if (hop.p0 !== 0 || hop.p1 !== 0) {
            rec.t0 = hop.t0; rec.t1 = hop.t1; rec.t2 = hop.t2; rec.t3 = hop.t3; rec.p0 = hop.p0; rec.p1 = hop.p1; rec.flags = hop.flags;
          }
        }
      }
      rec.addSet(statusSet(status));
      if (status >= 400) rec.statusCode = StatusCode.ERROR;
      if (status >= 300 && status < 400 && he > 0) {
        const loc = locationIn(b, hs, he);
        const next = loc ? resolveLocation(url, loc) : undefined;
        if (next) {
          const endMono = dv.getUint32(off + 20, true) * 4294967296 + dv.getUint32(off + 16, true);
          if (p.redirects.size > 1024) p.redirects.clear();
          p.redirects.set(next, {
            count: hop ? hop.count + 1 : 0, at: endMono, scheme: next.startsWith('https:') ? 'https' : 'http', task,
            t0: rec.t0, t1: rec.t1, t2: rec.t2, t3: rec.t3, p0: rec.p0, p1: rec.p1, flags: rec.flags,
          });
        }
      }
      rec.newSpanId();
      // The id encode made (the one a traceparent carried), and what went
      // on the wire with it: the exported span says what the server saw.
      const b0 = dv.getUint32(off + RES.span_id, false), b1 = dv.getUint32(off + RES.span_id + 4, false);
      if ((b0 | b1) !== 0) {
        rec.s0 = b0; rec.s1 = b1;
        const key = `${dv.getUint32(off + 4, true)}:${b0}:${b1}`;
        const w = this.sent.get(key);
        if (w) {
          this.sent.delete(key);
          rec.t0 = w.t0; rec.t1 = w.t1; rec.t2 = w.t2; rec.t3 = w.t3; rec.p0 = w.p0; rec.p1 = w.p1; rec.flags = w.flags;
          this.counts.propSpans++;
        }
      }
      const clock = this.out.clock;
      rec.setStartMono(startLo, startHi, clock);
      rec.setEndMono(dv.getUint32(off + 16, true), dv.getUint32(off + 20, true), clock);
      this.counts.spans++;
      if (rec.p0 === 0 && rec.p1 === 0) this.ctx?.countUnparented();
      this.out.emit(rec);
    } finally {
      releaseRecord(rec);
    }
  }

  /**
   * A reqwest call failed in hyper-util (reqwest::error::request, in the
   * caller's task). A connect failure (refused, another OS error, DNS) means
   * no request reached the wire: the call waiting in that task is ended here
   * with error.type, at the moment the error was made. Anything else (an
   * error after the request went out) is only counted: its wire request, if
   * any, ends through the pending table as before.
   */
  private requestError(dv: DataView, off: number): void {
    const pid = dv.getUint32(off + 4, true);
    this.counts.requestErrors++;
    const errorType = connectErrorType(dv.getUint8(off + RE.what), dv.getUint32(off + RE.os_error, true));
    if (errorType === undefined) { this.counts.requestErrorsOther++; return; }
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    const task = readU64Number(dv, off + RE.task_id);
    const m = this.ctx?.takeTaskCall(pid, task, tsHi * 4294967296 + tsLo, 'http ');
    if (m === 'ambiguous') { this.counts.requestErrorsAmbiguous++; return; }
    if (!m || m.call.url === undefined) { this.counts.requestErrorsUnmatched++; return; }
    this.counts.connectFailures++;
    // key: `http <authority> <target>` (fileClientCall in call()).
    const authority = m.key.slice(5, m.key.indexOf(' ', 5));
    const scheme = m.call.scheme ?? 'http';
    const rec = acquireRecord();
    try {
      rec.kind = SpanKind.CLIENT;
      rec.pid = pid;
      rec.scope = this.scope;
      // No request head was written: the method is not known at this layer.
      rec.name = 'HTTP';
      rec.newTraceId();
      rec.flags = 1;
      rec.addString(K.url, m.call.url);
      const ab = Buffer.from(authority, 'latin1');
      const hp = splitHostBytes(ab, 0, ab.length);
      if (hp) {
        rec.addString(K.address, ab.toString('latin1', hp.addrStart, hp.addrEnd));
        rec.addInt(K.port, hp.port >= 0 ? hp.port : scheme === 'https' ? 443 : 80);
      }
      rec.addString(K.errorType, errorType);
      rec.statusCode = StatusCode.ERROR;
      this.parentFrom(rec, m.call);
      rec.newSpanId();
      const clock = this.out.clock;
      rec.setStartMono(m.call.tsLo, m.call.tsHi, clock);
      rec.setEndMono(tsLo, tsHi, clock);
      this.counts.spans++;
      if (rec.p0 === 0 && rec.p1 === 0) this.ctx?.countUnparented();
      this.out.emit(rec);
    } finally {
      releaseRecord(rec);
    }
  }

  /** Removes a pending call from the tables (its span is made elsewhere, or not at all). */
  private drop(p: ProcessState, r: Pending): void {
    if (!r.open) return;
    r.open = false;
    for (const w of r.words) if (p.byWord.get(w) === r) p.byWord.delete(w);
    p.unlink(r);
  }

  /**
   * A request that never got a response head: an ERROR span with what the
   * request event carries (its head was not yet readable then), ended when
   * the agent knew.
   */
  private endUnanswered(p: ProcessState, r: Pending, errorType: string, endLo: number, endHi: number): void {
    this.drop(p, r);
    if (errorType === 'timeout') this.counts.timeouts++; else this.counts.closed++;
    const rec = acquireRecord();
    try {
      rec.kind = SpanKind.CLIENT;
      rec.pid = r.pid;
      rec.scope = this.scope;
      rec.name = 'HTTP';
      rec.newTraceId();
      rec.flags = 1;
      if (!r.head || !this.requestAttrs(p, r, rec, r.head)) this.counts.unansweredWithoutHead++;
      rec.addString(K.errorType, errorType);
      rec.statusCode = StatusCode.ERROR;
      rec.newSpanId();
      const clock = this.out.clock;
      rec.setStartMono(r.startLo, r.startHi, clock);
      rec.setEndMono(endLo, endHi, clock);
      this.counts.spans++;
      if (rec.p0 === 0 && rec.p1 === 0) this.ctx?.countUnparented();
      this.out.emit(rec);
    } finally {
      releaseRecord(rec);
    }
  }

  private readonly mem = new ProcessMemory();
  private headTimer: NodeJS.Timeout | undefined;

  /**
   * A call still waiting after HEAD_READ_AFTER_NS has its request head read
   * from the process (two preads, /proc/PID/mem): encode has long finished
   * writing it, and the connection is still alive, so the buffer holds it.
   * Fast calls (nearly all) never pay this; a call that then ends unanswered
   * (timeout, dropped future, closed connection) keeps its method and URL.
   */
  private armHeadReads(): void {
    if (this.headTimer) return;
    this.headTimer = setTimeout(() => { this.headTimer = undefined; this.readHeads(); }, HEAD_READ_TICK_MS);
    this.headTimer.unref();
  }

  private readHeads(): void {
    const now = Number(process.hrtime.bigint());
    let waiting = false;
    for (const [pid, p] of this.procs) {
      for (let r = p.head; r; r = r.next) {
        if (r.headTried) continue;
        if (now - r.startMono < HEAD_READ_AFTER_NS) { waiting = true; continue; }
        r.headTried = true;
        const w = this.mem.read(pid, r.dstAddr, 24);
        if (!w || r.vecPtrIdx > 2 || r.vecCapIdx > 2) continue;
        const ptr = readU64Number(new DataView(w.buffer, w.byteOffset, 24), r.vecPtrIdx * 8);
        const cap = readU64Number(new DataView(w.buffer, w.byteOffset, 24), r.vecCapIdx * 8);
        r.head = this.mem.read(pid, ptr, Math.min(cap, C.H1C_REQ_CAPTURE)) ?? this.mem.read(pid, ptr, Math.min(cap, 4096 - (ptr % 4096)));
        this.counts.headReads++;
      }
    }
    if (waiting) this.armHeadReads();
  }

  stats(): Record<string, number> {
    let pending = 0;
    for (const p of this.procs.values()) pending += p.size;
    return { ...this.counts, pending };
  }

  forgetProcess(pid: number): number {
    this.mem.forget(pid);
    const p = this.procs.get(pid);
    this.procs.delete(pid);
    return p ? p.size : 0;
  }

  pids(): number[] {
    return [...this.procs.keys()];
  }

  expire(nowMono: bigint): void {
    const now = Number(nowMono);
    // Calls that never reached the wire (connect failure, error before sending): counted by the context (clientCallsDropped).
    this.ctx?.expireClientCalls(now, this.timeoutNs);
    for (const p of this.procs.values()) {
      while (p.head && now - p.head.startMono >= this.timeoutNs) {
        const end = p.head.startMono + this.timeoutNs;
        this.endUnanswered(p, p.head, 'timeout', end % 4294967296, Math.floor(end / 4294967296));
      }
      for (const [u, h] of p.redirects) if (now - h.at > REDIRECT_WINDOW_NS) p.redirects.delete(u);
      for (const [k, l] of p.blockingCalls) {
        while (l.length && now - l[0].mono >= this.timeoutNs) { l.shift(); p.blockingCount--; }
        if (l.length === 0) p.blockingCalls.delete(k);
      }
    }
  }

  /** Request attributes from a head read while waiting (readHeads); false when there is none that parses. */
  private requestAttrs(p: ProcessState, r: Pending, rec: SpanRecord, b: Buffer): boolean {
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    const sc = this.scan;
    if (!scanRequestHead(b, dv, 0, b.length, b.length >= C.H1C_REQ_CAPTURE, sc)) return false;
    const method = knownMethod(b, 0, sc.methodEnd);
    rec.name = method ?? 'HTTP';
    rec.addSet(methodSet(method ?? '_OTHER', sc.version));
    if (!method) rec.addBytesCopy(K.methodOriginal, dv, 0, sc.methodEnd);
    const authority = sc.hostStart >= 0 ? b.toString('latin1', sc.hostStart, sc.hostEnd) : '';
    const target = b.toString('latin1', sc.targetStart, sc.targetEnd);
    const m = this.takeCall(r.pid, authority, target, r.startMono);
    const scheme = m?.call.scheme ?? 'http';
    if (sc.hostStart >= 0) {
      const hp = splitHostBytes(b, sc.hostStart, sc.hostEnd);
      if (hp) {
        rec.addBytesCopy(K.address, dv, hp.addrStart, hp.addrEnd);
        rec.addInt(K.port, hp.port >= 0 ? hp.port : scheme === 'https' ? 443 : 80);
      }
    }
    rec.addString(K.url, m?.call.url ?? safeUrl(scheme, authority, target));
    if (m) {
      r.startLo = m.call.tsLo; r.startHi = m.call.tsHi;
      if (m.ambiguous) this.counts.parentAmbiguous++;
      else this.parentFrom(rec, m.call);
    }
    return true;
  }
}
