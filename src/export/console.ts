// Trace-tree printer for OTEL_STDOUT=true and the 'console' exporter.
//
// Spans are buffered per trace until the trace has been quiet for `quietMs`
// (no new span), then printed as a tree:
//
//   trace 4bf92f3577b34da6a3ce929d0e0e4736  checkout pid=4242  3 spans
//     SERVER   GET /users/{id}  12.345 ms  GET /users/42?page=2 -> 200  route=/users/{id}
//       INTERNAL load_user  3.000 ms
//       CLIENT   GET  1.500 ms  GET http://price/api -> 503  error.type=503  ERROR: upstream unavailable
//
// Children sit under their parent (by parentSpanId); siblings are sorted by
// start time. A span whose parent is not in the buffer prints at top level
// with "(remote parent <id>)" (or "(parent <id>)" when the parent is a local
// span that had not ended yet). When a buffered span waits for a local parent
// that has not ended, the trace is held longer (up to `maxHoldMs`) so that a
// slow request prints as one tree. Colors only when the output is a TTY.

import type { AgentSpan, Attributes, ProcessResource } from '../spans/types';

export interface TextOutput {
  write(s: string): unknown;
  isTTY?: boolean;
}

export interface ConsoleTreeOptions {
  /** Where to print (default process.stdout). */
  out?: TextOutput;
  /** Quiet period after the last span of a trace before printing it (default 300 ms). */
  quietMs?: number;
  /** Longest time a trace is held while waiting for a local parent span (default 5000 ms). */
  maxHoldMs?: number;
  /** Spans buffered at most; beyond it the oldest trace is printed at once (default 10000). */
  maxBufferedSpans?: number;
  /** ANSI colors (default: only when `out.isTTY` and NO_COLOR is unset). */
  color?: boolean;
}

interface Pending {
  traceId: string;
  spans: AgentSpan[];
  resources: Map<number, ProcessResource>;
  firstAt: number;
  lastAt: number;
  timer: NodeJS.Timeout | undefined;
}

const KIND_WIDTH = 8; // "INTERNAL", "CONSUMER", "PRODUCER"

interface Style {
  header(s: string): string;
  kind(s: string): string;
  dim(s: string): string;
  error(s: string): string;
}
const PLAIN: Style = { header: (s) => s, kind: (s) => s, dim: (s) => s, error: (s) => s };
const ANSI: Style = {
  header: (s) => `\x1b[1m${s}\x1b[0m`,
  kind: (s) => `\x1b[36m${s}\x1b[0m`,
  dim: (s) => `\x1b[2m${s}\x1b[0m`,
  error: (s) => `\x1b[1;31m${s}\x1b[0m`,
};

export class ConsoleTreePrinter {
  private readonly out: TextOutput;
  private readonly quietMs: number;
  private readonly maxHoldMs: number;
  private readonly maxBuffered: number;
  private readonly style: Style;
  private readonly pending = new Map<string, Pending>(); // insertion order = oldest first
  private buffered = 0;
  private printedTraces = new Set<string>();
  private closed = false;
  /** Spans printed so far. */
  printed = 0;

  constructor(opts: ConsoleTreeOptions = {}) {
    this.out = opts.out ?? process.stdout;
    this.quietMs = opts.quietMs ?? 300;
    this.maxHoldMs = opts.maxHoldMs ?? 5000;
    this.maxBuffered = opts.maxBufferedSpans ?? 10000;
    const color = opts.color ?? (this.out.isTTY === true && !process.env.NO_COLOR);
    this.style = color ? ANSI : PLAIN;
  }

  /** Spans waiting to be printed. */
  get bufferedSpans(): number { return this.buffered; }

  add(span: AgentSpan, resource?: ProcessResource): void {
    if (this.closed) {
      this.printTrace({ traceId: span.traceId, spans: [span], resources: resMap(resource), firstAt: 0, lastAt: 0, timer: undefined });
      return;
    }
    const now = Date.now();
    let p = this.pending.get(span.traceId);
    if (!p) {
      p = { traceId: span.traceId, spans: [], resources: new Map(), firstAt: now, lastAt: now, timer: undefined };
      this.pending.set(span.traceId, p);
    }
    p.spans.push(span);
    p.lastAt = now;
    if (resource) p.resources.set(resource.pid, resource);
    this.buffered++;
    this.arm(p, this.quietMs);
    while (this.buffered > this.maxBuffered && this.pending.size > 0) {
      const oldest = this.pending.values().next().value as Pending;
      this.emit(oldest);
    }
  }

  /** Prints everything pending now. */
  flush(): void {
    for (const p of [...this.pending.values()]) this.emit(p);
  }

  /** Prints everything pending; later spans print immediately, one line group each. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private arm(p: Pending, ms: number): void {
    if (p.timer) {
      clearTimeout(p.timer);
    }
    p.timer = setTimeout(() => this.onQuiet(p), Math.max(1, ms));
    p.timer.unref();
  }

  private onQuiet(p: Pending): void {
    p.timer = undefined;
    if (this.pending.get(p.traceId) !== p) return;
    const age = Date.now() - p.firstAt;
    if (age < this.maxHoldMs && waitsForLocalParent(p.spans)) {
      this.arm(p, Math.min(this.quietMs, this.maxHoldMs - age));
      return;
    }
    this.emit(p);
  }

  private emit(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    this.pending.delete(p.traceId);
    this.buffered -= p.spans.length;
    this.printTrace(p);
  }

  private printTrace(p: Pending): void {
    const text = formatTraceTree(p.traceId, p.spans, p.resources, {
      continued: this.printedTraces.has(p.traceId),
      style: this.style,
    });
    this.printed += p.spans.length;
    this.printedTraces.add(p.traceId);
    if (this.printedTraces.size > 4096) {
      // Remember only recent traces (for the "(continued)" marker).
      const keep = [...this.printedTraces].slice(-2048);
      this.printedTraces = new Set(keep);
    }
    try {
      this.out.write(text);
    } catch {
      // stdout closed (EPIPE): nothing sensible to do.
    }
  }
}

function resMap(r?: ProcessResource): Map<number, ProcessResource> {
  const m = new Map<number, ProcessResource>();
  if (r) m.set(r.pid, r);
  return m;
}

function waitsForLocalParent(spans: AgentSpan[]): boolean {
  const ids = new Set(spans.map((s) => s.spanId));
  return spans.some((s) => s.parentSpanId && !s.parentIsRemote && !ids.has(s.parentSpanId));
}

/** Duration in ms with 3 decimals, computed exactly from ns. */
export function formatDurationMs(startNs: bigint, endNs: bigint): string {
  let d = endNs - startNs;
  if (d < 0n) d = 0n;
  const us = (d + 500n) / 1000n;
  return `${us / 1000n}.${(us % 1000n).toString().padStart(3, '0')} ms`;
}

function attrString(a: Attributes, k: string): string | undefined {
  const v = a[k];
  return v === undefined || v === '' ? undefined : String(v);
}

/** The key-attribute part of a span line (HTTP request summary, route, error.type). */
export function keyAttributes(a: Attributes): string[] {
  const parts: string[] = [];
  const method = attrString(a, 'http.request.method');
  const target = attrString(a, 'url.path') ?? attrString(a, 'url.full');
  const query = attrString(a, 'url.query');
  const code = attrString(a, 'http.response.status_code');
  let req = [method, target !== undefined ? target + (query !== undefined ? `?${query}` : '') : undefined]
    .filter((x) => x !== undefined).join(' ');
  if (code !== undefined) req = req ? `${req} -> ${code}` : `-> ${code}`;
  if (req) parts.push(req);
  const route = attrString(a, 'http.route');
  if (route !== undefined) parts.push(`route=${route}`);
  const errType = attrString(a, 'error.type');
  if (errType !== undefined) parts.push(`error.type=${errType}`);
  return parts;
}

function compareSpans(x: AgentSpan, y: AgentSpan): number {
  if (x.startTimeUnixNano !== y.startTimeUnixNano) return x.startTimeUnixNano < y.startTimeUnixNano ? -1 : 1;
  if (x.endTimeUnixNano !== y.endTimeUnixNano) return x.endTimeUnixNano > y.endTimeUnixNano ? -1 : 1;
  return x.spanId < y.spanId ? -1 : x.spanId > y.spanId ? 1 : 0;
}

/** Formats one trace as text (header + one line per span, newline-terminated). */
export function formatTraceTree(
  traceId: string,
  spans: AgentSpan[],
  resources: Map<number, ProcessResource> = new Map(),
  opts: { continued?: boolean; style?: Style } = {},
): string {
  const st = opts.style ?? PLAIN;
  const byId = new Map<string, AgentSpan>();
  for (const s of spans) byId.set(s.spanId, s);
  const children = new Map<string, AgentSpan[]>();
  const roots: AgentSpan[] = [];
  for (const s of spans) {
    if (s.parentSpanId && s.parentSpanId !== s.spanId && byId.has(s.parentSpanId)) {
      let c = children.get(s.parentSpanId);
      if (!c) children.set(s.parentSpanId, (c = []));
      c.push(s);
    } else {
      roots.push(s);
    }
  }

  const pids = [...new Set(spans.map((s) => s.pid))];
  const head: string[] = [`trace ${traceId}`];
  if (opts.continued) head[0] += ' (continued)';
  if (pids.length === 1) {
    const svc = resources.get(pids[0])?.attributes['service.name'];
    head.push(svc !== undefined ? `${svc} pid=${pids[0]}` : `pid=${pids[0]}`);
  } else {
    head.push(`${pids.length} processes`);
  }
  head.push(`${spans.length} span${spans.length === 1 ? '' : 's'}`);
  const lines: string[] = [st.header(head.join('  '))];

  const multiPid = pids.length > 1;
  const seen = new Set<AgentSpan>();
  const walk = (s: AgentSpan, depth: number) => {
    if (seen.has(s)) return; // defensive: malformed parent links forming a cycle
    seen.add(s);
    const parts: string[] = [
      `${'  '.repeat(depth + 1)}${st.kind(s.kind.padEnd(KIND_WIDTH))} ${s.name}`,
      st.dim(formatDurationMs(s.startTimeUnixNano, s.endTimeUnixNano)),
      ...keyAttributes(s.attributes),
    ];
    if (multiPid) parts.push(`pid=${s.pid}`);
    if (s.status.code === 'ERROR') parts.push(st.error(s.status.message ? `ERROR: ${s.status.message}` : 'ERROR'));
    if (depth === 0 && s.parentSpanId) {
      parts.push(st.dim(`(${s.parentIsRemote ? 'remote ' : ''}parent ${s.parentSpanId})`));
    }
    lines.push(parts.join('  '));
    for (const c of (children.get(s.spanId) ?? []).sort(compareSpans)) walk(c, depth + 1);
  };
  for (const r of roots.sort(compareSpans)) walk(r, 0);
  // Anything unreachable (cycle) still gets printed.
  for (const s of spans.slice().sort(compareSpans)) if (!seen.has(s)) walk(s, 0);
  return lines.join('\n') + '\n';
}
