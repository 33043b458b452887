// hyper HTTP/1 server events -> SERVER spans.
//
// A request event (parse entry) starts a pending request; the response event
// (encode return) of the same connection ends it. Pairing needs a connection
// identity that both events carry without knowing hyper's struct layouts:
// hyper passes `&mut conn.state.method` in both ParseContext (parse) and Encode
// (encode), so the same address appears among the raw words of both. The word
// positions are learned from the first unambiguous match and then used alone,
// so no unrelated pointer can pair two connections. Positions are learned per
// symbol instance (a binary can link hyper 0.14 and 1.x, whose structs differ).
// hyper's server handles one
// request at a time per connection (the dispatcher does not read the next head
// while a request is in flight), so a new request on a connection with one
// still pending means the old one was abandoned (client gone, handler panic).
import type { SpanBuilder, SpanOutput } from '../library';
import type { ActiveServerSpan, ServerSpanContext } from '../../spans/context';
import { DecodeError } from '../../events/header';
import { acquireRecord, releaseRecord, attrKey, SpanKind, StatusCode, type SpanRecord } from '../../spans/record';
import { HeadScan, scanRequestHead, knownMethod, splitHostBytes, parseStatusLine, splitTarget } from '../../spans/http';
import { parseTraceParentBytes } from '../../spans/tracecontext';
import { decodeRequest, decodeResponse, type H1RequestEvent, type H1ResponseEvent } from './decode';
import { H1_SERVER_LAYOUTS } from './layouts';

const { kinds: KIND, constants: C } = H1_SERVER_LAYOUTS;

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
const STATUS_STRINGS = new Map<number, string>();
function statusString(n: number): string {
  let s = STATUS_STRINGS.get(n);
  if (s === undefined) STATUS_STRINGS.set(n, (s = String(n)));
  return s;
}

class Pending implements ActiveServerSpan {
  route: string | undefined = undefined;
  /** Handed to the output (which released it), so unfile() must not release it again. */
  emitted = false;
  /** Unfiled without a span (abandoned, expired, unsampled). */
  dropped = false;
  constructor(
    private readonly owner: HyperH1ServerSpans,
    readonly pid: number,
    readonly startMono: bigint,
    /** The span being built; its attributes point into the request head it holds. */
    readonly rec: SpanRecord,
    readonly ctxWords: number[],
    public keyIdx: number[], // ctx word indexes this request is filed under
    readonly instance: number, // parse symbol instance
  ) {}

  get open(): boolean {
    return !this.emitted && !this.dropped;
  }

  finish(tsNs: bigint, shape?: (rec: SpanRecord) => void): void {
    this.owner.finishEarly(this, tsNs, shape);
  }
}

export interface H1ServerStats {
  requests: number;
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

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');
function isH2Preface(b: Buffer): boolean {
  return b.length >= PREFACE.length && b.compare(PREFACE, 0, PREFACE.length, 0, PREFACE.length) === 0;
}

/** A response head sent later than this is not waited for (the client is gone). */
export const PENDING_MAX_AGE_NS = 600n * 1_000_000_000n;
/** At most this many requests wait for a response per process. */
export const PENDING_MAX = 65_536;

function pointerLike(w: number): boolean {
  return w >= 0x10000 && w < 0x800000000000 && w % 8 === 0;
}

class ProcessState {
  // Learned word indexes holding the connection address: per parse instance
  // (in ParseContext) and per encode instance (in Encode).
  ctxKey = new Map<number, number>();
  msgKey = new Map<number, number>();
  pending = new Map<number, Pending>();
  /** Distinct pending requests, oldest first (Map keeps insertion order). */
  order = new Set<Pending>();
}

export class HyperH1ServerSpans implements SpanBuilder {
  readonly counts: H1ServerStats = { requests: 0, partialHeads: 0, unparsable: 0, spans: 0, abandoned: 0, unmatchedResponses: 0, notSampled: 0, expired: 0, h2Prefaces: 0 };
  private procs = new Map<number, ProcessState>();
  private readonly scan = new HeadScan();

  constructor(private readonly out: SpanOutput, private readonly scope: string, private readonly ctx?: ServerSpanContext) {}

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind === KIND.H1_SERVER_REQUEST) this.onRequest(decodeRequest(dv, off, len));
    else if (kind === KIND.H1_SERVER_RESPONSE) this.onResponse(decodeResponse(dv, off, len));
    else throw new DecodeError(`hyper-h1-server: unknown event kind ${kind}`);
  }

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
    return p ? p.order.size : 0;
  }

  /** Pids with state here, traced or not (exe mode can see short-lived ones). */
  pids(): number[] {
    return [...this.procs.keys()];
  }

  /** Drops requests that waited longer than PENDING_MAX_AGE_NS for a response. */
  expire(nowMono: bigint): void {
    for (const p of this.procs.values()) {
      for (const r of p.order) {
        if (nowMono - r.startMono < PENDING_MAX_AGE_NS) break; // oldest first
        this.counts.expired++;
        this.unfile(p, r);
      }
    }
  }

  onRequest(ev: H1RequestEvent): void {
    const head = ev.head;
    if (isH2Preface(head)) {
      // hyper 0.14 with HTTP/2 enabled parses a connection's first bytes as
      // HTTP/1 before it switches to HTTP/2 on seeing the preface: no request.
      this.counts.h2Prefaces++;
      return;
    }
    const truncated = ev.bufLen > head.length && head.length >= C.H1_HEAD_CAPTURE;
    const sc = this.scan;
    if (!scanRequestHead(head, head.length, truncated, sc)) {
      if (!sc.complete && !truncated) this.counts.partialHeads++;
      else this.counts.unparsable++;
      return;
    }
    this.counts.requests++;
    const p = this.proc(ev.hdr.pid);

    const rec = acquireRecord();
    rec.src = head;
    rec.kind = SpanKind.SERVER;
    rec.pid = ev.hdr.pid;
    rec.scope = this.scope;
    const method = knownMethod(head, sc.methodEnd);
    if (method) {
      rec.name = method;
      rec.addString(K.method, method);
    } else {
      rec.name = 'HTTP';
      rec.addString(K.method, '_OTHER');
      rec.addBytes(K.methodOriginal, 0, sc.methodEnd);
    }
    if (head[sc.targetStart] === 0x2f) {
      // origin-form: path up to '?' or '#', query up to '#'
      let q = sc.targetStart;
      while (q < sc.targetEnd && head[q] !== 0x3f && head[q] !== 0x23) q++;
      rec.addBytes(K.path, sc.targetStart, q);
      if (q < sc.targetEnd && head[q] === 0x3f) {
        let h = q + 1;
        while (h < sc.targetEnd && head[h] !== 0x23) h++;
        rec.addBytes(K.query, q + 1, h);
      }
    } else {
      // absolute-form (proxies) or '*': rare, the string helper does it
      const t = splitTarget(head.toString('latin1', sc.targetStart, sc.targetEnd));
      rec.addString(K.path, t.path);
      if (t.query !== undefined) rec.addString(K.query, t.query);
    }
    // TLS is told by the code path that served the connection (a handshake
    // in this task), never by the port; unknown is left out (context.ts rule 4).
    const scheme = this.ctx ? this.ctx.schemeFor(ev.hdr.pid, ev.taskId) : 'http';
    if (scheme) rec.addString(K.scheme, scheme);
    rec.addString(K.version, VERSIONS[sc.version] ?? `${Math.floor(sc.version / 10)}.${sc.version % 10}`);
    if (sc.hostStart >= 0) {
      const hp = splitHostBytes(head, sc.hostStart, sc.hostEnd);
      if (hp) {
        rec.addBytes(K.address, hp.addrStart, hp.addrEnd);
        if (hp.port >= 0) rec.addInt(K.port, hp.port);
        else if (scheme) rec.addInt(K.port, scheme === 'https' ? 443 : 80);
      }
    }
    if (sc.uaStart >= 0) rec.addBytes(K.ua, sc.uaStart, sc.uaEnd);

    const flags = sc.tpStart >= 0 ? parseTraceParentBytes(head, sc.tpStart, sc.tpEnd, rec) : -1;
    if (flags >= 0) {
      rec.flags = flags;
      rec.parentRemote = true;
      if (sc.tsStart >= 0) rec.traceState = head.toString('latin1', sc.tsStart, sc.tsEnd);
    } else {
      rec.newTraceId();
      rec.flags = 1;
    }
    rec.newSpanId();

    const pend = new Pending(this, ev.hdr.pid, ev.hdr.tsNs, rec, ev.ctxWords, [], ev.hdr.instance);
    // The connection's task handles this request until its response head:
    // enrichers (axum's route) find it by task.
    this.ctx?.addKey(pend, 'task', ev.taskId);
    const known = p.ctxKey.get(pend.instance);
    const idx = known !== undefined ? [known] : ev.ctxWords.map((w, i) => (pointerLike(w) ? i : -1)).filter((i) => i >= 0);
    for (const i of idx) {
      const w = ev.ctxWords[i];
      const old = p.pending.get(w);
      if (old && old !== pend) this.abandon(p, old);
      p.pending.set(w, pend);
      pend.keyIdx.push(i);
    }
    p.order.add(pend);
    if (p.order.size > PENDING_MAX) {
      const oldest = p.order.values().next().value as Pending;
      this.counts.expired++;
      this.unfile(p, oldest);
    }
  }

  private abandon(p: ProcessState, old: Pending): void {
    this.counts.abandoned++;
    this.unfile(p, old);
  }

  private unfile(p: ProcessState, req: Pending): void {
    for (const i of req.keyIdx) {
      const w = req.ctxWords[i];
      if (p.pending.get(w) === req) p.pending.delete(w);
    }
    p.order.delete(req);
    this.ctx?.close(req);
    if (!req.emitted) {
      req.dropped = true;
      releaseRecord(req.rec);
    }
  }

  onResponse(ev: H1ResponseEvent): void {
    const p = this.proc(ev.hdr.pid);
    let req: Pending | undefined;
    const msgIdx = p.msgKey.get(ev.hdr.instance);
    if (msgIdx !== undefined) {
      req = p.pending.get(ev.msgWords[msgIdx]);
    } else {
      // Learn which words carry the connection address: exactly one match.
      const matches: { msg: number; req: Pending; ctx: number }[] = [];
      ev.msgWords.forEach((w, mi) => {
        if (!pointerLike(w)) return;
        const r = p.pending.get(w);
        if (r) matches.push({ msg: mi, req: r, ctx: r.ctxWords.indexOf(w) });
      });
      if (matches.length >= 1) {
        req = matches[0].req;
        if (matches.length === 1) {
          p.msgKey.set(ev.hdr.instance, matches[0].msg);
          if (!p.ctxKey.has(req.instance)) {
            p.ctxKey.set(req.instance, matches[0].ctx);
            this.refile(p, req.instance, req);
          }
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
    const status = ev.status ? ev.status : parseStatusLine(ev.statusLine)?.status;
    if (status !== undefined) {
      rec.addInt(K.status, status);
      if (status >= 500) {
        rec.statusCode = StatusCode.ERROR;
        rec.addString(K.errorType, statusString(status));
      }
    }
    this.end(p, req, ev.hdr.tsNs);
  }

  private end(p: ProcessState, req: Pending, tsNs: bigint): void {
    const rec = req.rec;
    if (req.route !== undefined) {
      rec.name = `${rec.name} ${req.route}`;
      rec.addString(K.route, req.route);
    }
    rec.startUnixNano = this.out.toUnixNano(req.startMono);
    rec.endUnixNano = this.out.toUnixNano(tsNs);
    this.counts.spans++;
    req.emitted = true;
    this.unfile(p, req);
    try {
      this.out.emit(rec);
    } finally {
      releaseRecord(rec);
    }
  }

  /** A protocol ended the span before its response head (ActiveServerSpan.finish). */
  finishEarly(req: Pending, tsNs: bigint, shape?: (rec: SpanRecord) => void): void {
    if (!req.open) return;
    const p = this.procs.get(req.pid);
    if (!p) return;
    if ((req.rec.flags & 1) === 0) {
      this.counts.notSampled++;
      this.unfile(p, req);
      return;
    }
    shape?.(req.rec);
    this.end(p, req, tsNs);
  }

  /** Once a parse instance's key word is known, its pending requests are filed under that word only. */
  private refile(p: ProcessState, instance: number, skip: Pending): void {
    const key = p.ctxKey.get(instance)!;
    for (const r of p.order) {
      if (r === skip || r.instance !== instance) continue;
      for (const i of r.keyIdx) if (p.pending.get(r.ctxWords[i]) === r) p.pending.delete(r.ctxWords[i]);
      r.keyIdx = [key];
      p.pending.set(r.ctxWords[key], r);
    }
  }

  /** Requests still waiting for a response, per pid. */
  pendingCount(pid?: number): number {
    let n = 0;
    for (const [k, p] of this.procs) if (pid === undefined || k === pid) n += p.order.size;
    return n;
  }
}
