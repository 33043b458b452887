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
import type { H1RequestEvent, H1ResponseEvent } from '../events/decode';
import type { AgentSpan, Attributes } from './types';
import { parseRequestHead, parseStatusLine, normalizeMethod, splitTarget, splitHost } from './http1';
import { parseTraceParent, newSpanId, newTraceId } from './tracecontext';
import { CONSTANTS } from '../events/layouts';

export interface SpanContextOut {
  toUnixNano(monoNs: bigint): bigint;
  emit(span: AgentSpan): void;
}

interface Pending {
  startMono: bigint;
  name: string;
  attributes: Attributes;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceFlags: number;
  traceState?: string;
  ctxWords: bigint[];
  keyIdx: number[]; // ctx word indexes this request is filed under
  instance: number; // parse symbol instance
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
}

/** A response head sent later than this is not waited for (the client is gone). */
export const PENDING_MAX_AGE_NS = 600n * 1_000_000_000n;
/** At most this many requests wait for a response per process. */
export const PENDING_MAX = 65_536;

function pointerLike(w: bigint): boolean {
  return w >= 0x10000n && w < 0x800000000000n && (w & 7n) === 0n;
}

class ProcessState {
  // Learned word indexes holding the connection address: per parse instance
  // (in ParseContext) and per encode instance (in Encode).
  ctxKey = new Map<number, number>();
  msgKey = new Map<number, number>();
  pending = new Map<bigint, Pending>();
  /** Distinct pending requests, oldest first (Map keeps insertion order). */
  order = new Set<Pending>();
}

export class HyperH1ServerSpans {
  readonly stats: H1ServerStats = { requests: 0, partialHeads: 0, unparsable: 0, spans: 0, abandoned: 0, unmatchedResponses: 0, notSampled: 0, expired: 0 };
  private procs = new Map<number, ProcessState>();

  constructor(private readonly out: SpanContextOut, private readonly scope: string) {}

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
        this.stats.expired++;
        this.unfile(p, r);
      }
    }
  }

  onRequest(ev: H1RequestEvent): void {
    const truncated = ev.bufLen > ev.head.length && ev.head.length >= CONSTANTS.H1_HEAD_CAPTURE;
    const head = parseRequestHead(ev.head, truncated);
    if (!head) {
      if (ev.head.indexOf('\r\n\r\n') < 0 && !truncated) this.stats.partialHeads++;
      else this.stats.unparsable++;
      return;
    }
    this.stats.requests++;
    const p = this.proc(ev.hdr.pid);

    const { method, original } = normalizeMethod(head.method);
    const { path, query } = splitTarget(head.target);
    const attributes: Attributes = {
      'http.request.method': method,
      'url.path': path,
      'url.scheme': 'http',
      'network.protocol.version': head.version,
    };
    if (original) attributes['http.request.method_original'] = original;
    if (query !== undefined) attributes['url.query'] = query;
    const host = head.headers.get('host');
    const hp = host ? splitHost(host, 80) : undefined;
    if (hp) {
      attributes['server.address'] = hp.address;
      attributes['server.port'] = hp.port;
    }
    const ua = head.headers.get('user-agent');
    if (ua !== undefined) attributes['user_agent.original'] = ua;

    const parent = parseTraceParent(head.headers.get('traceparent'));
    const pend: Pending = {
      startMono: ev.hdr.tsNs,
      name: method === '_OTHER' ? 'HTTP' : method,
      attributes,
      traceId: parent?.traceId ?? newTraceId(),
      spanId: newSpanId(),
      parentSpanId: parent?.spanId,
      traceFlags: parent ? parent.flags : 1,
      traceState: parent ? head.headers.get('tracestate') : undefined,
      ctxWords: ev.ctxWords,
      keyIdx: [],
      instance: ev.hdr.instance,
    };
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
      this.stats.expired++;
      this.unfile(p, oldest);
    }
  }

  private abandon(p: ProcessState, old: Pending): void {
    this.stats.abandoned++;
    this.unfile(p, old);
  }

  private unfile(p: ProcessState, req: Pending): void {
    for (const i of req.keyIdx) {
      const w = req.ctxWords[i];
      if (p.pending.get(w) === req) p.pending.delete(w);
    }
    p.order.delete(req);
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
      this.stats.unmatchedResponses++;
      return;
    }
    this.unfile(p, req);

    if ((req.traceFlags & 1) === 0) {
      // Parent-based sampling (the OpenTelemetry default): an unsampled caller
      // means no span here either.
      this.stats.notSampled++;
      return;
    }
    const attributes = req.attributes;
    const st = ev.status ? { status: ev.status } : parseStatusLine(ev.statusLine);
    let status: AgentSpan['status'] = { code: 'UNSET' };
    if (st) {
      attributes['http.response.status_code'] = st.status;
      if (st.status >= 500) {
        status = { code: 'ERROR' };
        attributes['error.type'] = String(st.status);
      }
    }
    this.stats.spans++;
    this.out.emit({
      traceId: req.traceId,
      spanId: req.spanId,
      parentSpanId: req.parentSpanId,
      parentIsRemote: req.parentSpanId !== undefined ? true : undefined,
      traceFlags: req.traceFlags,
      traceState: req.traceState,
      name: req.name,
      kind: 'SERVER',
      startTimeUnixNano: this.out.toUnixNano(req.startMono),
      endTimeUnixNano: this.out.toUnixNano(ev.hdr.tsNs),
      attributes,
      status,
      pid: ev.hdr.pid,
      scope: this.scope,
    });
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
