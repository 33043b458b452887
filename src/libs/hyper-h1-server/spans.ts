// hyper HTTP/1 server events -> SERVER spans.
//
// A request event (parse entry) starts a pending request; the response event
// (encode entry, or encode's return with the fallback) of the same connection
// ends it. Pairing needs a connection identity that both events carry without
// knowing hyper's struct layouts: hyper passes `&mut conn.state.method` in
// both ParseContext (parse) and Encode (encode), so the same address appears
// among the raw words of both. The word positions are learned from the first
// unambiguous match and then used alone, so no unrelated pointer can pair two
// connections. Positions are learned per symbol instance (a binary can link
// hyper 0.14 and 1.x, whose structs differ). hyper's server handles one
// request at a time per connection (the dispatcher does not read the next head
// while a request is in flight), so a new request on a connection with one
// still pending means the old one was abandoned (client gone, handler panic).
// The connection's task (in the request event) names the request in the shared
// context (src/spans/context.ts): enrichers find it there (axum's route), and
// rustls' handshakes in that task make it https.
//
// This is the agent's hot path (one request and one response record per
// HTTP request): records are read straight from the ring, the head is copied
// once into the span record's own buffer and scanned in one pass, attributes
// point into it, and nothing else is allocated per request but the pending
// entry.
import type { SpanBuilder, SpanOutput } from '../library';
import type { ActiveServerSpan, ServerSpanContext } from '../../spans/context';
import { DecodeError, bytesOf, readU64Number } from '../../events/header';
import { acquireRecord, releaseRecord, attrKey, attrSet, SpanKind, StatusCode, type AttrSet, type SpanRecord } from '../../spans/record';
import { HeadScan, scanRequestHead, knownMethod, splitHostBytes, parseStatusLine, splitTarget, redactedQuery, redactQueryString } from '../../spans/http';
import { parseTraceParentBytes } from '../../spans/tracecontext';
import type { H1RequestEvent, H1ResponseEvent } from './decode';
import { H1_SERVER_LAYOUTS } from './layouts';

const { kinds: KIND, constants: C, structs: S } = H1_SERVER_LAYOUTS;
const REQ = S.h1_request_event;
const RES = S.h1_response_event;

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

const VERSIONS: Record<number, string> = { 10: '1.0', 11: '1.1' };

// Attribute sets most spans share, made once: the request line's method,
// scheme and version; the response status (with error.type for 5xx).
const SCHEMES = ['http', 'https', undefined] as const;
type SchemeIndex = 0 | 1 | 2;
const requestSets = new Map<string, AttrSet>();
function requestSet(method: string, original: boolean, version: number, scheme: SchemeIndex): AttrSet {
  const k = `${original ? '_' : ''}${method} ${version} ${scheme}`;
  let set = requestSets.get(k);
  if (!set) {
    const v = VERSIONS[version] ?? `${Math.floor(version / 10)}.${version % 10}`;
    const attrs: [number, string][] = [[K.method, original ? '_OTHER' : method], [K.version, v]];
    const sch = SCHEMES[scheme];
    if (sch !== undefined) attrs.push([K.scheme, sch]);
    set = attrSet(attrs);
    if (requestSets.size < 256) requestSets.set(k, set);
  }
  return set;
}
const requestSetsByMethod = new Map<string, AttrSet[]>();
function knownRequestSet(method: string, version: number, scheme: SchemeIndex): AttrSet {
  let byVersion = requestSetsByMethod.get(method);
  if (!byVersion) requestSetsByMethod.set(method, (byVersion = []));
  return byVersion[version * 3 + scheme] ??= requestSet(method, false, version, scheme);
}
const statusSets: AttrSet[] = [];
function statusSet(status: number): AttrSet {
  return statusSets[status] ??= attrSet(status >= 500
    ? [[K.status, status], [K.errorType, String(status)]]
    : [[K.status, status]]);
}
function latin1(b: Buffer, start: number, end: number): string {
  return b.toString('latin1', start, end);
}

/** A pending request; pooled (the context unfiles it before it is reused). */
class Pending implements ActiveServerSpan {
  /** Parse time, CLOCK_MONOTONIC ns, as 32-bit halves (exact) and as a number (for ages). */
  startLo = 0;
  startHi = 0;
  startMono = 0;
  pid = 0;
  /** The span being built. */
  rec!: SpanRecord;
  /** ParseContext words, kept until this instance's key word is known. */
  ctxWords: number[] | undefined = undefined;
  /** The connection entry this request is filed under (the first one, before the key word is known). */
  conn: Conn | undefined = undefined;
  /** The other entries, while the key word is not known. */
  moreConns: Conn[] | undefined = undefined;
  instance = 0; // parse symbol instance
  /** Handed to the output (which released it), so unfile() must not release it again. */
  emitted = false;
  /** Still waiting for its response (not yet emitted or dropped). */
  open = true;
  /** The route an enricher matched (axum), applied when the span ends. */
  route: string | undefined = undefined;
  /** The process's pending requests, oldest first (intrusive list: no allocation per request). */
  prev: Pending | undefined = undefined;
  next: Pending | undefined = undefined;

  constructor(private readonly owner: HyperH1ServerSpans) {}

  finish(tsNs: bigint, shape?: (rec: SpanRecord) => void): void {
    this.owner.finishEarly(this, tsNs, shape);
  }
}

/**
 * What the agent knows of one connection address (a word of ParseContext /
 * Encode). Entries stay while the connection is in use, so a keep-alive
 * connection costs no map insertion per request.
 */
interface Conn {
  addr: number;
  pending: Pending | undefined;
  /** Monotonic ns of the last request filed here. */
  lastUse: number;
  /** Another address with the same map key. */
  next: Conn | undefined;
}

export interface H1ServerStats {
  requests: number;
  /** Spans under the ids the parse probe made (src/propagation/context.h). */
  bpfIds?: number;
  /** An incoming traceparent the probe did not read (outside its capture): its parent link is dropped, the probe's ids kept. */
  bpfIdMismatch?: number;
  partialHeads: number;
  unparsable: number;
  spans: number;
  abandoned: number;
  unmatchedResponses: number;
  notSampled: number;
  /** Requests dropped unanswered after PENDING_MAX_AGE_NS, or beyond PENDING_MAX per process. */
  expired: number;
  /** Connections whose first bytes were the HTTP/2 preface (served by h2). */
  h2Prefaces: number;
}

/** "PRI * HTTP/2.0\r\n": the HTTP/2 connection preface, as hyper 0.14 hands it to its HTTP/1 parser first. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');
function isH2Preface(b: Buffer, start: number, end: number): boolean {
  return end - start >= PREFACE.length && b.compare(PREFACE, 0, PREFACE.length, start, start + PREFACE.length) === 0;
}

/** A response head sent later than this is not waited for (the client is gone). */
export const PENDING_MAX_AGE_NS = 600n * 1_000_000_000n;
const PENDING_MAX_AGE = Number(PENDING_MAX_AGE_NS);
/** At most this many requests wait for a response per process. */
export const PENDING_MAX = 65_536;
/** A connection entry with nothing pending is forgotten after this long unused. */
const CONN_IDLE_NS = 120e9;

/** hyper's Conn (its state, io buffers and the IO value) fits well within this. */
const CONN_WINDOW = 64 * 1024;

function pointerLike(w: number): boolean {
  return w >= 0x10000 && w < 0x800000000000 && w % 8 === 0;
}

/** A small-integer map key for an address (V8 hashes small integers fast, other numbers slowly). */
function addrKey(addr: number): number {
  return (addr / 8) % 1073741824;
}

class ProcessState {
  // Learned word indexes holding the connection address: per parse instance
  // (in ParseContext) and per encode instance (in Encode); -1 = not yet.
  ctxKey: number[] = [];
  msgKey: number[] = [];
  /** Per write_head instance (fat-LTO fallback): the distance from the Conn's
   * address to the ParseContext word that points into it (&mut conn.state.method). */
  connDelta = new Map<number, number>();
  /** The distance the last ambiguous response pointed to, per instance, while connDelta is being learned. */
  connVote = new Map<number, number>();
  conns = new Map<number, Conn>();
  /** ParseContext words seen in two requests in flight at once while the key
   * word was still being learned: not a connection's address (a pointer to
   * something connections share, e.g. on a current-thread runtime). */
  sharedWords = new Set<number>();
  /** Pending requests, oldest first. */
  head: Pending | undefined;
  tail: Pending | undefined;
  size = 0;

  conn(addr: number): Conn | undefined {
    let c = this.conns.get(addrKey(addr));
    while (c && c.addr !== addr) c = c.next;
    return c;
  }

  connOrNew(addr: number, now: number): Conn {
    const k = addrKey(addr);
    const first = this.conns.get(k);
    let c = first;
    while (c && c.addr !== addr) c = c.next;
    if (!c) {
      c = { addr, pending: undefined, lastUse: now, next: first };
      this.conns.set(k, c);
    }
    return c;
  }

  link(r: Pending): void {
    r.prev = this.tail;
    r.next = undefined;
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

  /** Drops connection entries with nothing pending that were not used since `before`. */
  sweep(before: number): void {
    for (const [k, first] of this.conns) {
      let keep: Conn | undefined;
      for (let c: Conn | undefined = first; c; ) {
        const next: Conn | undefined = c.next;
        if (c.pending || c.lastUse >= before) { c.next = keep; keep = c; }
        c = next;
      }
      if (keep) this.conns.set(k, keep); else this.conns.delete(k);
    }
  }
}

function learned(keys: number[], instance: number): number {
  const k = keys[instance];
  return k === undefined ? -1 : k;
}

export class HyperH1ServerSpans implements SpanBuilder {
  readonly counts: H1ServerStats = { requests: 0, bpfIds: 0, bpfIdMismatch: 0, partialHeads: 0, unparsable: 0, spans: 0, abandoned: 0, unmatchedResponses: 0, notSampled: 0, expired: 0, h2Prefaces: 0 };
  private procs = new Map<number, ProcessState>();
  private readonly scan = new HeadScan();
  private readonly ctxScratch: number[] = new Array<number>(C.H1_CTX_WORDS).fill(0);
  private readonly msgScratch: number[] = new Array<number>(C.H1_MSG_WORDS).fill(0);

  constructor(private readonly out: SpanOutput, private readonly scope: string, private readonly ctx?: ServerSpanContext) {}

  // ---- records straight from the ring (the hot path)

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind === KIND.H1_SERVER_REQUEST) {
      if (len < REQ.head) throw new DecodeError(`h1 request record too short (${len})`);
      const captured = dv.getUint32(off + REQ.captured, true);
      if (captured > C.H1_HEAD_CAPTURE || REQ.head + captured > len) throw new DecodeError('h1 request capture overflows record');
      const pid = dv.getUint32(off + 4, true);
      const instance = dv.getUint16(off + 14, true);
      const p = this.proc(pid);
      const key = learned(p.ctxKey, instance);
      const words = this.ctxScratch;
      if (key >= 0) words[key] = readU64Number(dv, off + REQ.ctx_words + key * 8);
      else for (let i = 0; i < C.H1_CTX_WORDS; i++) words[i] = readU64Number(dv, off + REQ.ctx_words + i * 8);
      const base = off + REQ.head;
      const ids = (dv.getUint32(off + REQ.ctx_flags, true) & C.H1_CTX_IDS) !== 0 ? off + REQ.trace_id : -1;
      this.request(p, pid, instance, dv.getUint32(off + 16, true), dv.getUint32(off + 20, true), bytesOf(dv), dv, base, base + captured,
        dv.getUint32(off + REQ.buf_len, true), words, key, readU64Number(dv, off + REQ.task_id), ids);
    } else if (kind === KIND.H1_SERVER_RESPONSE || kind === KIND.H1_SERVER_RESPONSE_CONN) {
      if (len < RES.status_line) throw new DecodeError(`h1 response record too short (${len})`);
      const captured = dv.getUint32(off + RES.captured, true);
      if (captured > C.H1_STATUS_CAPTURE || RES.status_line + captured > len) throw new DecodeError('h1 response capture overflows record');
      const pid = dv.getUint32(off + 4, true);
      const instance = dv.getUint16(off + 14, true);
      const p = this.proc(pid);
      const key = learned(p.msgKey, instance);
      const words = this.msgScratch;
      if (key >= 0) words[key] = readU64Number(dv, off + RES.msg_words + key * 8);
      else for (let i = 0; i < C.H1_MSG_WORDS; i++) words[i] = readU64Number(dv, off + RES.msg_words + i * 8);
      let status = dv.getUint16(off + RES.status, true);
      if (status === 0 && captured > 0) status = parseStatusLine(bytesOf(dv).subarray(off + RES.status_line, off + RES.status_line + captured))?.status ?? 0;
      if (kind === KIND.H1_SERVER_RESPONSE_CONN) {
        // write_head / encode_head (fat LTO): the first word is the Conn's address.
        words[0] = readU64Number(dv, off + RES.msg_words);
        this.response(p, instance, dv.getUint32(off + 16, true), dv.getUint32(off + 20, true), words, -1, status, this.matchConn(p, instance, words[0]));
      } else {
        this.response(p, instance, dv.getUint32(off + 16, true), dv.getUint32(off + 20, true), words, key, status);
      }
    } else {
      throw new DecodeError(`hyper-h1-server: unknown event kind ${kind}`);
    }
  }

  // ---- typed events (decode.ts; the unit tests drive these)

  onRequest(ev: H1RequestEvent): void {
    const p = this.proc(ev.hdr.pid);
    this.request(p, ev.hdr.pid, ev.hdr.instance, Number(ev.hdr.tsNs & 0xffffffffn), Number(ev.hdr.tsNs >> 32n), ev.head,
      new DataView(ev.head.buffer, ev.head.byteOffset, ev.head.length), 0, ev.head.length, ev.bufLen, ev.ctxWords, learned(p.ctxKey, ev.hdr.instance), ev.taskId);
  }

  /** `conn`: the event is write_head's / encode_head's (fat-LTO fallback): its first word is the Conn's address. */
  onResponse(ev: H1ResponseEvent, conn = false): void {
    const p = this.proc(ev.hdr.pid);
    const status = ev.status ? ev.status : parseStatusLine(ev.statusLine)?.status ?? 0;
    const tsLo = Number(ev.hdr.tsNs & 0xffffffffn), tsHi = Number(ev.hdr.tsNs >> 32n);
    if (conn) this.response(p, ev.hdr.instance, tsLo, tsHi, ev.msgWords, -1, status, this.matchConn(p, ev.hdr.instance, ev.msgWords[0]));
    else this.response(p, ev.hdr.instance, tsLo, tsHi, ev.msgWords, learned(p.msgKey, ev.hdr.instance), status);
  }

  // ---- span assembly

  /**
   * The head is b[start..end) (the ring itself on the hot path: scanned in
   * place, only the bytes attributes use are copied). `words` may be scratch:
   * only read during the call; with `key` >= 0 only words[key] is valid.
   */
  private request(p: ProcessState, pid: number, instance: number, tsLo: number, tsHi: number, b: Buffer, bv: DataView, start: number, end: number,
    bufLen: number, words: number[], key: number, taskId: number, ids = -1): void {
    if (isH2Preface(b, start, end)) {
      // hyper 0.14 with HTTP/2 enabled parses a connection's first bytes as
      // HTTP/1 before it switches to HTTP/2 on seeing the preface: no request.
      this.counts.h2Prefaces++;
      return;
    }
    const n = end - start;
    const truncated = bufLen > n && n >= C.H1_HEAD_CAPTURE;
    const sc = this.scan;
    if (!scanRequestHead(b, bv, start, end, truncated, sc)) {
      if (!sc.complete && !truncated) this.counts.partialHeads++;
      else this.counts.unparsable++;
      return;
    }
    this.counts.requests++;
    const rec = acquireRecord();
    rec.kind = SpanKind.SERVER;
    rec.pid = pid;
    rec.scope = this.scope;
    // TLS is told by the code path that served the connection (a handshake
    // in this task), never by the port; unknown is left out (context.ts rule 4).
    const scheme = this.ctx ? this.ctx.schemeFor(pid, taskId) : 'http';
    const si: SchemeIndex = scheme === 'http' ? 0 : scheme === 'https' ? 1 : 2;
    const method = knownMethod(b, start, sc.methodEnd);
    if (method) {
      rec.name = method;
      rec.addSet(knownRequestSet(method, sc.version, si));
    } else {
      rec.name = 'HTTP';
      rec.addSet(requestSet('', true, sc.version, si));
      rec.addBytesCopy(K.methodOriginal, bv, start, sc.methodEnd);
    }
    if (b[sc.targetStart] === 0x2f) {
      // origin-form: path up to '?' or '#', query up to '#'
      let q = sc.targetStart;
      while (q < sc.targetEnd && b[q] !== 0x3f && b[q] !== 0x23) q++;
      rec.addBytesCopy(K.path, bv, sc.targetStart, q);
      if (q < sc.targetEnd && b[q] === 0x3f) {
        let h = q + 1;
        while (h < sc.targetEnd && b[h] !== 0x23) h++;
        const red = redactedQuery(b, q + 1, h);
        if (red === undefined) rec.addBytesCopy(K.query, bv, q + 1, h); else rec.addString(K.query, red);
      }
    } else {
      // absolute-form (proxies) or '*': rare, the string helper does it
      const t = splitTarget(latin1(b, sc.targetStart, sc.targetEnd));
      rec.addString(K.path, t.path);
      if (t.query !== undefined) rec.addString(K.query, redactQueryString(t.query));
    }
    if (sc.hostStart >= 0) {
      const hp = splitHostBytes(b, sc.hostStart, sc.hostEnd);
      if (hp) {
        rec.addBytesCopy(K.address, bv, hp.addrStart, hp.addrEnd);
        if (hp.port >= 0) rec.addInt(K.port, hp.port);
        else if (scheme) rec.addInt(K.port, scheme === 'https' ? 443 : 80);
      }
    }
    if (sc.uaStart >= 0) rec.addBytesCopy(K.ua, bv, sc.uaStart, sc.uaEnd);

    const flags = sc.tpStart >= 0 ? parseTraceParentBytes(b, bv, sc.tpStart, sc.tpEnd, rec) : -1;
    if (flags >= 0) {
      rec.flags = flags;
      rec.parentRemote = true;
      if (sc.tsStart >= 0) rec.traceState = latin1(b, sc.tsStart, sc.tsEnd);
    } else {
      rec.newTraceId();
      rec.flags = 1;
    }
    rec.newSpanId();
    if (ids >= 0) {
      // The probe's ids (trace id from the same traceparent, or new): calls
      // this request makes carried them on the wire already.
      const t0 = bv.getUint32(ids, false), t1 = bv.getUint32(ids + 4, false), t2 = bv.getUint32(ids + 8, false), t3 = bv.getUint32(ids + 12, false);
      if (flags >= 0 && (t0 !== rec.t0 || t1 !== rec.t1 || t2 !== rec.t2 || t3 !== rec.t3)) {
        this.counts.bpfIdMismatch!++;
        rec.parentRemote = false;
        rec.p0 = rec.p1 = 0;
        rec.traceState = undefined;
      }
      rec.t0 = t0; rec.t1 = t1; rec.t2 = t2; rec.t3 = t3;
      rec.s0 = bv.getUint32(ids + 16, false); rec.s1 = bv.getUint32(ids + 20, false);
      this.counts.bpfIds!++;
    }

    const pend = this.newPending(pid, tsLo, tsHi, rec, instance);
    // The connection's task handles this request until its response head:
    // enrichers (axum's route) find it by task.
    this.ctx?.addKey(pend, 'task', taskId);
    if (key >= 0) {
      this.file(p, pend, words[key]);
    } else {
      pend.ctxWords = words.slice();
      for (let i = 0; i < words.length; i++) if (pointerLike(words[i]) && !p.sharedWords.has(words[i])) this.fileLearning(p, pend, words[i]);
    }
    p.link(pend);
    if (p.size > PENDING_MAX) {
      this.counts.expired++;
      this.unfile(p, p.head!);
    }
  }

  private readonly freePending: Pending[] = [];

  private newPending(pid: number, startLo: number, startHi: number, rec: SpanRecord, instance: number): Pending {
    const pd = this.freePending.pop() ?? new Pending(this);
    pd.startLo = startLo; pd.startHi = startHi; pd.startMono = startHi * 4294967296 + startLo; pd.pid = pid;
    pd.rec = rec; pd.ctxWords = undefined; pd.conn = undefined; pd.moreConns = undefined; pd.instance = instance; pd.emitted = false;
    pd.open = true; pd.route = undefined; pd.prev = pd.next = undefined;
    return pd;
  }

  private file(p: ProcessState, pend: Pending, w: number): void {
    const c = p.connOrNew(w, pend.startMono);
    const old = c.pending;
    if (old && old !== pend) { this.counts.abandoned++; this.unfile(p, old); }
    c.pending = pend;
    c.lastUse = pend.startMono;
    if (!pend.conn) pend.conn = c;
    else (pend.moreConns ??= []).push(c);
  }

  /**
   * Filing under a candidate word before the key word is known. A word that
   * already names another request in flight is not a connection's address
   * (hyper handles one request at a time per connection) unless the two
   * ParseContexts are identical (then the old request was abandoned): it is
   * shared, so neither request is filed under it, and nothing is abandoned. Abandoning
   * here lost concurrent requests on a current-thread runtime, whose
   * connections' ParseContexts share pointers.
   */
  private fileLearning(p: ProcessState, pend: Pending, w: number): void {
    const c = p.conn(w);
    const old = c?.pending;
    // The same ParseContext, word for word: the same connection's next request (the old one is abandoned, in file()).
    const sameConn = old !== undefined && old.ctxWords !== undefined && pend.ctxWords !== undefined &&
      old.ctxWords.length === pend.ctxWords.length && old.ctxWords.every((x, i) => x === pend.ctxWords![i]);
    if (c && old && old !== pend && old.open && !sameConn) {
      c.pending = undefined;
      if (p.sharedWords.size < 1024) p.sharedWords.add(w);
      return;
    }
    this.file(p, pend, w);
  }

  private unfile(p: ProcessState, req: Pending): void {
    if (req.conn && req.conn.pending === req) req.conn.pending = undefined;
    if (req.moreConns) for (const c of req.moreConns) if (c.pending === req) c.pending = undefined;
    req.conn = req.moreConns = undefined;
    p.unlink(req);
    this.ctx?.close(req);
    req.open = false;
    if (!req.emitted) releaseRecord(req.rec);
    req.ctxWords = undefined;
    if (this.freePending.length < 1024) this.freePending.push(req);
  }

  /** `words` may be scratch: only read during the call. With `key` >= 0 only words[key] is valid. */
  private response(p: ProcessState, instance: number, tsLo: number, tsHi: number, words: number[], key: number, status: number,
    byConn?: Pending | null): void {
    let req: Pending | undefined;
    if (byConn !== undefined) {
      req = byConn ?? undefined;
    } else if (key >= 0) {
      req = p.conn(words[key])?.pending;
    } else {
      // Learn which words carry the connection address: exactly one match.
      let matches = 0;
      let msgIdx = -1;
      for (let mi = 0; mi < words.length; mi++) {
        const w = words[mi];
        if (!pointerLike(w)) continue;
        const r = p.conn(w)?.pending;
        if (!r) continue;
        if (matches++ === 0) { req = r; msgIdx = mi; }
      }
      if (req && matches === 1) {
        p.msgKey[instance] = msgIdx;
        if (learned(p.ctxKey, req.instance) < 0 && req.ctxWords) {
          p.ctxKey[req.instance] = req.ctxWords.indexOf(words[msgIdx]);
          this.refile(p, req.instance);
        }
      }
    }
    if (!req) {
      this.counts.unmatchedResponses++;
      return;
    }
    const rec = req.rec;
    if ((rec.flags & 1) === 0) {
      // Parent-based sampling (the OpenTelemetry default): an unsampled caller
      // means no span here either.
      this.counts.notSampled++;
      this.unfile(p, req);
      return;
    }
    if (status >= 100 && status <= 999) {
      rec.addSet(statusSet(status));
      if (status >= 500) rec.statusCode = StatusCode.ERROR;
    }
    this.end(p, req, tsLo, tsHi);
  }

  /** A protocol ended the span before its response head (ActiveServerSpan.finish). */
  finishEarly(req: Pending, tsNs: bigint, shape?: (rec: SpanRecord) => void): void {
    const p = this.procs.get(req.pid);
    if (!req.open || !p) return;
    if ((req.rec.flags & 1) === 0) {
      this.counts.notSampled++;
      this.unfile(p, req);
      return;
    }
    shape?.(req.rec);
    this.end(p, req, Number(tsNs & 0xffffffffn), Number(tsNs >> 32n));
  }

  private end(p: ProcessState, req: Pending, tsLo: number, tsHi: number): void {
    const rec = req.rec;
    if (req.route !== undefined) {
      rec.name = `${rec.name} ${req.route}`;
      rec.addString(K.route, req.route);
    }
    const clock = this.out.clock;
    rec.setStartMono(req.startLo, req.startHi, clock);
    rec.setEndMono(tsLo, tsHi, clock);
    this.counts.spans++;
    req.emitted = true;
    this.unfile(p, req);
    try {
      this.out.emit(rec);
    } finally {
      releaseRecord(rec);
    }
  }

  /**
   * write_head / encode_head give the Conn's address S; the request's
   * ParseContext holds &mut conn.state.method (and other &mut into the same
   * Conn), a fixed distance D into it. Conns of other connections are other
   * objects that do not overlap this one, so no word of another request lies
   * in [S, S + D): among the waiting requests' words at or past S (and less
   * than CONN_WINDOW past it), the smallest distance is this connection's,
   * provided its request was seen. That distance is trusted at once when it
   * is unambiguous (one waiting request within reach), else when two
   * responses in a row agree on it; then it is used alone. null: no match.
   */
  private matchConn(p: ProcessState, instance: number, connAddr: number): Pending | null {
    const delta = p.connDelta.get(instance);
    if (delta !== undefined) return p.conn(connAddr + delta)?.pending ?? null;
    let bestD = -1, bestIdx = -1;
    let best: Pending | undefined;
    let within = 0;
    for (let r = p.head; r; r = r.next) {
      let seen = false;
      const consider = (w: number, i: number) => {
        if (!pointerLike(w) || w < connAddr || w - connAddr >= CONN_WINDOW) return;
        seen = true;
        if (bestD < 0 || w - connAddr < bestD) { bestD = w - connAddr; best = r; bestIdx = i; }
      };
      if (r.ctxWords) for (let i = 0; i < r.ctxWords.length; i++) consider(r.ctxWords[i], i);
      else if (r.conn) consider(r.conn.addr, -1);
      if (seen) within++;
    }
    if (!best) return null;
    if (within > 1 && p.connVote.get(instance) !== bestD) {
      p.connVote.set(instance, bestD);
      return null;
    }
    p.connDelta.set(instance, bestD);
    p.connVote.delete(instance);
    if (bestIdx >= 0 && learned(p.ctxKey, best.instance) < 0) {
      p.ctxKey[best.instance] = bestIdx;
      this.refile(p, best.instance);
    }
    return best;
  }

  /** Once a parse instance's key word is known, its pending requests are filed under that word only. */
  private refile(p: ProcessState, instance: number): void {
    const key = p.ctxKey[instance];
    for (let r = p.head; r; r = r.next) {
      if (r.instance !== instance || !r.ctxWords) continue;
      if (r.conn && r.conn.pending === r) r.conn.pending = undefined;
      if (r.moreConns) for (const c of r.moreConns) if (c.pending === r) c.pending = undefined;
      const c = p.connOrNew(r.ctxWords[key], r.startMono);
      r.conn = c;
      r.moreConns = undefined;
      c.pending = r;
      r.ctxWords = undefined;
    }
  }

  // ---- lifecycle

  stats(): Record<string, number> {
    return { ...this.counts, pending: this.pendingCount() };
  }

  private proc(pid: number): ProcessState {
    let p = this.procs.get(pid);
    if (!p) this.procs.set(pid, (p = new ProcessState()));
    return p;
  }

  forgetProcess(pid: number): number {
    const p = this.procs.get(pid);
    this.procs.delete(pid);
    return p ? p.size : 0;
  }

  /** Pids with state here, traced or not (exe mode can see short-lived ones). */
  pids(): number[] {
    return [...this.procs.keys()];
  }

  /** Drops requests that waited longer than PENDING_MAX_AGE_NS for a response. */
  expire(nowMono: bigint): void {
    const now = Number(nowMono);
    for (const p of this.procs.values()) {
      while (p.head && now - p.head.startMono >= PENDING_MAX_AGE) { // oldest first
        this.counts.expired++;
        this.unfile(p, p.head);
      }
      p.sweep(now - CONN_IDLE_NS);
    }
  }

  /** Requests still waiting for a response, per pid. */
  pendingCount(pid?: number): number {
    let n = 0;
    for (const [k, p] of this.procs) if (pid === undefined || k === pid) n += p.size;
    return n;
  }
}
