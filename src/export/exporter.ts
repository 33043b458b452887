// Export stage: AgentSpan -> OTLP (gRPC or HTTP/protobuf) through the official
// OpenTelemetry exporters, and/or the trace-tree printer on stdout.
//
// The OTLP pipeline is our own small batch processor (not BatchSpanProcessor):
//  - a BOUNDED queue (maxQueueSpans, counting the batch being sent): beyond
//    it new spans are dropped and counted, with a throttled warning;
//  - batches of at most batchSize spans and ~3 MiB (gRPC's default message
//    limit is 4 MiB at the collector), sent every flushIntervalMs or as soon
//    as a full batch is ready;
//  - ONE export in flight at a time (the exporters throw "Concurrent export
//    limit reached" otherwise);
//  - when an export fails with a retryable error (collector down), the batch
//    is kept and retried forever with capped exponential backoff while new
//    spans queue up to the bound; one warning when the collector becomes
//    unreachable, one info line when it is back;
//  - non-retryable rejections drop the batch (as the OTLP spec says); a batch
//    rejected as too large is split in halves;
//  - never throws, never prints stack traces;
//  - shutdown() drains with a deadline and reports what was lost.
//
// Spans are handed to the exporters as plain ReadableSpan-shaped objects:
// one Resource object per process (the exporters group by object identity),
// one InstrumentationScope object per scope name, sampled trace flags, and
// `parentSpanContext` (the 2.x name) carrying isRemote.

import type { Attributes as OtelAttributes, HrTime, SpanContext } from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { AgentSpan, Attributes, ProcessResource, SpanKindName } from '../spans/types';
import type { SpanRecord } from '../spans/record';
import { log, warnEvery } from '../util/log';
import { ConsoleTreePrinter, type TextOutput } from './console';
import { agentVersion } from '../util/paths';

export type ExporterKind = 'otlp' | 'console' | 'none';
export type OtlpProtocol = 'grpc' | 'http/protobuf';

export interface ExportConfig {
  exporter: ExporterKind;
  protocol: OtlpProtocol;
  /**
   * OTEL_EXPORTER_OTLP_ENDPOINT. For http/protobuf a base URL to which
   * "/v1/traces" is appended; for grpc used as is. undefined = the default
   * (http://localhost:4317 for grpc, http://localhost:4318 for http/protobuf).
   */
  endpoint?: string;
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: full URL, used as is; wins over `endpoint`. */
  tracesEndpoint?: string;
  /** Already parsed (config stage). Sent as HTTP headers or gRPC metadata. */
  headers: Record<string, string>;
  /** Spans held at most (queued + being sent). Default 8192. */
  maxQueueSpans?: number;
  /** Spans per export request at most. Default 512. */
  batchSize?: number;
  /** Batch size used while more than two such batches are queued (default 2048, or batchSize when that is set). */
  backlogBatchSize?: number;
  /** A partial batch is sent after this long. Default 1000 ms. */
  flushIntervalMs?: number;
  /** Also print the trace tree on stdout (OTEL_STDOUT=true). */
  stdoutTree?: boolean;

  /** Per-request timeout given to the OTLP exporter (default: its own, OTEL_EXPORTER_OTLP_TIMEOUT or 10 s). */
  timeoutMillis?: number;
  /** How long shutdown() keeps trying to export what is left. Default 3000 ms. */
  shutdownTimeoutMs?: number;
  /** Retry backoff after a failed export: first delay and cap. Default 250 ms and 5000 ms. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Upper bound on the estimated size of one export request. Default 3 MiB. */
  maxBatchBytes?: number;
  /** Version reported in the instrumentation scope. Default: this package's version. */
  agentVersion?: string;
  /** Trace-tree printer settings. */
  consoleOut?: TextOutput;
  consoleQuietMs?: number;
  consoleColor?: boolean;
}

export type SpanSinkStats = {
  /** Spans handed to submit(). */
  submitted: number;
  /** Spans accepted by the collector (or printed, for the console exporter). */
  exported: number;
  /** Spans lost: queue full, rejected by the collector, or left at shutdown. */
  dropped: number;
  /** Export requests that failed (each retry counts). */
  failedExports: number;
  /** Spans held right now (queued + being sent / waiting for retry). */
  queued: number;
};

export interface SpanSink {
  /** A finished span. The record is pooled: copy what is needed now, keep no reference. */
  submit(span: SpanRecord, resource: ProcessResource): void;
  /** Exports / prints everything submitted so far. Resolves early if the collector is unreachable. */
  flush(): Promise<void>;
  /** Drains with a deadline, then releases the exporter. Never rejects. */
  shutdown(): Promise<void>;
  stats(): SpanSinkStats;
}

// ---------------------------------------------------------------------------
// Small public helpers

export const DEFAULT_GRPC_ENDPOINT = 'http://localhost:4317';
export const DEFAULT_HTTP_ENDPOINT = 'http://localhost:4318';

/** The URL the exporter will send to, following the OTLP exporter spec. */
export function resolveOtlpUrl(protocol: OtlpProtocol, endpoint?: string, tracesEndpoint?: string): string {
  const signal = tracesEndpoint?.trim();
  if (signal) return signal;
  const base = endpoint?.trim();
  if (protocol === 'grpc') return base || DEFAULT_GRPC_ENDPOINT;
  return (base || DEFAULT_HTTP_ENDPOINT).replace(/\/+$/, '') + '/v1/traces';
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;



// ---------------------------------------------------------------------------
// AgentSpan -> ReadableSpan

// @opentelemetry/api enums, inlined so this module loads without pulling them at runtime.
const KIND: Record<SpanKindName, number> = { INTERNAL: 0, SERVER: 1, CLIENT: 2, PRODUCER: 3, CONSUMER: 4 };
const STATUS: Record<'UNSET' | 'OK' | 'ERROR', number> = { UNSET: 0, OK: 1, ERROR: 2 };
const SAMPLED = 1;

const NS_PER_S = 1_000_000_000n;

/** [start, end, duration] as HrTime tuples, with a single BigInt division. */
function hrTimes(start: bigint, end: bigint): [HrTime, HrTime, HrTime] {
  const q = start / NS_PER_S;
  const s0 = Number(q);
  const f0 = Number(start - q * NS_PER_S);
  const d = end > start ? Number(end - start) : 0; // exact below 2^53 ns (104 days)
  const e = f0 + d;
  const carry = Math.floor(e / 1e9);
  return [[s0, f0], [s0 + carry, e - carry * 1e9], [Math.floor(d / 1e9), d % 1e9]];
}

interface Scope { name: string; version: string }

/** Converts spans, reusing one Resource per process and one scope object per name. */
export class SpanConverter {
  private readonly resources = new Map<number, { src: ProcessResource; res: Resource }>();
  private readonly scopes = new Map<string, Scope>();
  private resourceFromAttributes: ((a: OtelAttributes) => Resource) | undefined;
  private TraceState: (new (s: string) => unknown) | undefined;

  constructor(private readonly version: string = agentVersion()) {}

  resourceFor(r: ProcessResource): Resource {
    const hit = this.resources.get(r.pid);
    if (hit && (hit.src === r || sameAttributes(hit.src.attributes, r.attributes))) {
      hit.src = r;
      return hit.res;
    }
    if (!this.resourceFromAttributes) {
      this.resourceFromAttributes = (require('@opentelemetry/resources') as typeof import('@opentelemetry/resources'))
        .resourceFromAttributes;
    }
    const res = this.resourceFromAttributes({ ...r.attributes });
    if (!hit && this.resources.size >= 4096) {
      this.resources.delete(this.resources.keys().next().value as number);
    }
    this.resources.set(r.pid, { src: r, res });
    return res;
  }

  scopeFor(name: string): Scope {
    let s = this.scopes.get(name);
    if (!s) this.scopes.set(name, (s = { name, version: this.version }));
    return s;
  }

  convert(s: AgentSpan, resource: ProcessResource): ReadableSpan {
    const traceFlags = (s.traceFlags & 0xff) | SAMPLED;
    const ctx: SpanContext = { traceId: s.traceId, spanId: s.spanId, traceFlags };
    if (s.traceState) {
      if (!this.TraceState) this.TraceState = (require('@opentelemetry/core') as typeof import('@opentelemetry/core')).TraceState;
      (ctx as { traceState?: unknown }).traceState = new this.TraceState(s.traceState);
    }
    const [startTime, endTime, duration] = hrTimes(s.startTimeUnixNano, s.endTimeUnixNano);
    const status: { code: number; message?: string } = { code: STATUS[s.status.code] ?? 0 };
    if (s.status.message) status.message = s.status.message;
    const span = {
      name: s.name,
      kind: KIND[s.kind] ?? 0,
      spanContext: () => ctx,
      parentSpanContext: s.parentSpanId
        ? { traceId: s.traceId, spanId: s.parentSpanId, traceFlags, isRemote: s.parentIsRemote === true }
        : undefined,
      startTime,
      endTime,
      duration,
      ended: true,
      status,
      attributes: s.attributes,
      links: [],
      events: [],
      resource: this.resourceFor(resource),
      instrumentationScope: this.scopeFor(s.scope),
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
    return span as unknown as ReadableSpan;
  }
}

function sameAttributes(a: Attributes, b: Attributes): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

/** Rough size of a span in an OTLP request (only to keep batches under the gRPC limit). */
function estimateBytes(s: AgentSpan): number {
  let n = 110 + s.name.length + (s.traceState?.length ?? 0) + (s.status.message?.length ?? 0);
  for (const k in s.attributes) {
    const v = s.attributes[k];
    n += 14 + k.length + (typeof v === 'string' ? v.length : 9);
  }
  return n;
}

// ---------------------------------------------------------------------------
// The OTLP pipeline

/** What we need from an OTLP exporter (also lets tests inject a fake one). */
export interface SpanExporterLike {
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

/** Drops headers Node or gRPC would refuse (they would make every export fail). */
function validHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (HEADER_NAME.test(k) && HEADER_VALUE.test(v)) out[k] = v;
    else log.warn(`OTLP header "${k.replace(/[^\x20-\x7e]/g, '?')}" has an invalid name or value; ignored`);
  }
  return out;
}

function createOtlpExporter(protocol: OtlpProtocol, url: string, rawHeaders: Record<string, string>,
  timeoutMillis: number | undefined, userAgent: string): SpanExporterLike {
  const headers = validHeaders(rawHeaders);
  if (protocol === 'grpc') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc') as
      typeof import('@opentelemetry/exporter-trace-otlp-grpc');
    let metadata: import('@grpc/grpc-js').Metadata | undefined;
    if (Object.keys(headers).length > 0) {
      // @grpc/grpc-js is a dependency of the gRPC exporter; the same (hoisted) copy.
      const { Metadata } = require('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
      metadata = new Metadata();
      for (const [k, v] of Object.entries(headers)) {
        try {
          const key = k.toLowerCase();
          if (key.endsWith('-bin')) metadata.set(key, Buffer.from(v));
          else metadata.set(key, v);
        } catch (e) {
          log.warn(`OTLP header "${k}" cannot be sent as gRPC metadata (${describe(e)}); ignored`);
        }
      }
    }
    return new OTLPTraceExporter({
      url,
      userAgent,
      ...(metadata ? { metadata } : {}),
      ...(timeoutMillis ? { timeoutMillis } : {}),
    });
  }
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto') as
    typeof import('@opentelemetry/exporter-trace-otlp-proto');
  return new OTLPTraceExporter({
    url,
    userAgent,
    headers: { ...headers },
    ...(timeoutMillis ? { timeoutMillis } : {}),
  });
}

interface Entry { rs: ReadableSpan; bytes: number; seq: number }

/** FIFO of entries with O(1) push/shift and unshift of a few. */
class Fifo {
  private a: Entry[] = [];
  private h = 0;
  get length(): number { return this.a.length - this.h; }
  push(e: Entry): void { this.a.push(e); }
  peek(): Entry | undefined { return this.a[this.h]; }
  shift(): Entry | undefined {
    if (this.h >= this.a.length) return undefined;
    const e = this.a[this.h];
    (this.a as unknown as (Entry | undefined)[])[this.h] = undefined;
    this.h++;
    if (this.h > 1024 && this.h * 2 > this.a.length) { this.a = this.a.slice(this.h); this.h = 0; }
    return e;
  }
  unshiftMany(es: Entry[]): void {
    if (es.length <= this.h) {
      this.h -= es.length;
      for (let i = 0; i < es.length; i++) this.a[this.h + i] = es[i];
    } else {
      this.a = es.concat(this.a.slice(this.h));
      this.h = 0;
    }
  }
  clear(): Entry[] { const r = this.a.slice(this.h); this.a = []; this.h = 0; return r; }
}

type FailureKind = 'retry' | 'too-large' | 'reject';

// gRPC status codes (numbers, so that this module need not load grpc-js).
const GRPC_RETRYABLE = new Set([1 /* CANCELLED */, 4 /* DEADLINE_EXCEEDED */, 10 /* ABORTED */,
  11 /* OUT_OF_RANGE */, 14 /* UNAVAILABLE */, 15 /* DATA_LOSS */]);
const GRPC_RESOURCE_EXHAUSTED = 8;

function classify(protocol: OtlpProtocol, err: unknown): FailureKind {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'number') return 'retry'; // network errors, timeouts, exhausted 5xx retries
  if (protocol === 'grpc') {
    if (GRPC_RETRYABLE.has(code)) return 'retry';
    if (code === GRPC_RESOURCE_EXHAUSTED) {
      const msg = String((err as Error).message ?? '');
      return /larger than max|message length|too large/i.test(msg) ? 'too-large' : 'retry';
    }
    return 'reject';
  }
  if (code === 413) return 'too-large';
  if (code === 408 || code === 429 || code >= 500) return 'retry';
  return 'reject';
}

function describe(err: unknown): string {
  if (!err) return 'unknown error';
  const e = err as { message?: unknown; code?: unknown };
  let msg = typeof e.message === 'string' && e.message ? e.message : String(err);
  msg = msg.split('\n')[0]
    .replace(/^\d+ (?=[A-Z_]+:)/, '')          // grpc-js: "14 UNAVAILABLE: ..."
    .replace(/\s*Resolution note:\s*$/, '')
    .replace(/Last error: Error: /, 'last error: ');
  if (msg.length > 200) msg = msg.slice(0, 200) + '...';
  return msg;
}

const RECYCLE_MS = 15_000;

interface DrainTarget { seq: number; resolve: () => void; untilDeadline: boolean }

let sinkIds = 0;

export class OtlpSpanSink implements SpanSink {
  readonly url: string;
  /** Distinguishes the throttling keys of several sinks in one process. */
  private readonly id = ++sinkIds;
  private readonly protocol: OtlpProtocol;
  private readonly max: number;
  private readonly batchSize: number;
  /** Batch size while a backlog builds: one export is in flight at a time, so
   * throughput is batch size / round trip; bigger batches keep up with bursts. */
  private readonly backlogBatchSize: number;
  private readonly flushIntervalMs: number;
  private readonly maxBatchBytes: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly shutdownTimeoutMs: number;
  private readonly timeoutMillis: number | undefined;
  private readonly converter: SpanConverter;
  private exporter: SpanExporterLike | undefined;
  private exporterCreatedAt = 0;
  private generation = 0;
  private readonly exporterFactory: (generation: number) => SpanExporterLike;

  private readonly queue = new Fifo();
  private inflight: Entry[] | null = null;
  private sending = false;
  private sendToken = 0;
  private nextSeq = 1;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private timerDue = false;
  private targets: DrainTarget[] = [];
  private closing = false;
  private closed = false;
  private shutdownPromise: Promise<void> | undefined;

  private down = false;
  private downSince = 0;
  private downReason = '';
  private recoveryTarget = false;
  private exportedSinceRecovery = 0;

  private readonly counters = { submitted: 0, exported: 0, dropped: 0, failedExports: 0 };

  constructor(cfg: ExportConfig, exporterFactory?: (generation: number) => SpanExporterLike) {
    this.protocol = cfg.protocol;
    this.url = resolveOtlpUrl(cfg.protocol, cfg.endpoint, cfg.tracesEndpoint);
    this.max = Math.max(1, cfg.maxQueueSpans ?? 8192);
    this.batchSize = Math.max(1, cfg.batchSize ?? 512);
    this.backlogBatchSize = Math.max(this.batchSize, cfg.backlogBatchSize ?? (cfg.batchSize === undefined ? 2048 : this.batchSize));
    this.flushIntervalMs = Math.max(1, cfg.flushIntervalMs ?? 1000);
    this.maxBatchBytes = cfg.maxBatchBytes ?? 3 * 1024 * 1024;
    this.retryInitialMs = cfg.retryInitialMs ?? 250;
    this.retryMaxMs = Math.max(this.retryInitialMs, cfg.retryMaxMs ?? 5000);
    this.shutdownTimeoutMs = cfg.shutdownTimeoutMs ?? 3000;
    this.timeoutMillis = cfg.timeoutMillis;
    this.backoffMs = this.retryInitialMs;
    const version = cfg.agentVersion ?? agentVersion();
    this.converter = new SpanConverter(version);
    const headers = { ...cfg.headers };
    this.exporterFactory = exporterFactory ??
      ((gen) => createOtlpExporter(this.protocol, this.url, headers, this.timeoutMillis,
        `otel-rust-agent/${version}${gen > 0 ? ` (reconnect ${gen})` : ''}`));
  }

  submit(rec: SpanRecord, resource: ProcessResource): void {
    this.counters.submitted++;
    const span = rec.toAgentSpan();
    if (this.closed) { this.counters.dropped++; return; }
    if (this.held() >= this.max) {
      this.counters.dropped++;
      warnEvery(`export.queue-full.${this.id}`, 10_000,
        `span queue full (${this.max} spans${this.down ? ', collector unreachable' : ''}); ` +
        `dropping new spans (${this.counters.dropped} dropped so far)`);
      return;
    }
    let rs: ReadableSpan;
    try {
      rs = this.converter.convert(span, resource);
    } catch (e) {
      this.counters.dropped++;
      warnEvery('export.convert', 10_000, `cannot convert span "${span.name}": ${describe(e)}; dropped`);
      return;
    }
    this.queue.push({ rs, bytes: estimateBytes(span), seq: this.nextSeq++ });
    if (this.queue.length >= this.batchSize) this.pump();
    else this.armFlushTimer();
  }

  flush(): Promise<void> {
    if (this.closed && !this.closing) return Promise.resolve();
    return this.drainTo(this.nextSeq - 1, false);
  }

  shutdown(): Promise<void> {
    if (!this.shutdownPromise) this.shutdownPromise = this.doShutdown();
    return this.shutdownPromise;
  }

  stats(): SpanSinkStats {
    return { ...this.counters, queued: this.held() };
  }

  // -- internals ------------------------------------------------------------

  private held(): number {
    return this.queue.length + (this.inflight?.length ?? 0);
  }

  private getExporter(): SpanExporterLike {
    if (!this.exporter) {
      this.exporter = this.exporterFactory(this.generation);
      this.exporterCreatedAt = Date.now();
    }
    return this.exporter;
  }

  /**
   * grpc-js backs off reconnecting exponentially up to 120 s, and its
   * subchannels are shared process-wide, so after a long outage a collector
   * that is back can stay unused for up to two minutes. While the collector
   * is unreachable, replace the gRPC exporter every RECYCLE_MS: the new one
   * (distinct user agent = distinct channel options) gets a fresh subchannel
   * whose backoff starts over.
   */
  private maybeRecycleExporter(): void {
    if (this.protocol !== 'grpc' || !this.exporter || this.sending) return;
    if (Date.now() - this.exporterCreatedAt < RECYCLE_MS) return;
    const old = this.exporter;
    this.exporter = undefined;
    this.generation++;
    Promise.resolve().then(() => old.shutdown()).catch(() => undefined);
  }

  private armFlushTimer(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.timerDue = true;
      this.pump();
    }, this.flushIntervalMs);
    this.flushTimer.unref();
  }

  /** Resolves when every span with seq <= `seq` is exported or dropped (or, unless untilDeadline, an export fails). */
  private drainTo(seq: number, untilDeadline: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const t: DrainTarget = { seq, resolve, untilDeadline };
      if (this.targetDone(t)) { resolve(); return; }
      this.targets.push(t);
      if (this.retryTimer) {
        // Skip the remaining backoff: try right away.
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      this.pump();
    });
  }

  private targetDone(t: DrainTarget): boolean {
    const first = this.inflight?.[0] ?? this.queue.peek();
    return first === undefined || first.seq > t.seq;
  }

  private settleTargets(failed: boolean): void {
    if (this.targets.length === 0) return;
    const keep: DrainTarget[] = [];
    for (const t of this.targets) {
      if (this.targetDone(t) || (failed && !t.untilDeadline)) t.resolve();
      else keep.push(t);
    }
    this.targets = keep;
  }

  private takeBatch(): Entry[] {
    const batch: Entry[] = [];
    let bytes = 0;
    const limit = this.queue.length >= 2 * this.backlogBatchSize ? this.backlogBatchSize : this.batchSize;
    while (batch.length < limit) {
      const e = this.queue.peek();
      if (!e) break;
      if (batch.length > 0 && bytes + e.bytes > this.maxBatchBytes) break;
      this.queue.shift();
      batch.push(e);
      bytes += e.bytes;
    }
    return batch;
  }

  private pump(): void {
    if (this.sending || this.retryTimer) return;
    if (!this.inflight) {
      if (this.queue.length === 0) { this.timerDue = false; this.settleTargets(false); return; }
      const urgent = this.timerDue || this.targets.length > 0 || this.closing;
      if (this.queue.length < this.batchSize && !urgent) { this.armFlushTimer(); return; }
      this.timerDue = false;
      this.inflight = this.takeBatch();
    }
    this.send(this.inflight);
  }

  private send(batch: Entry[]): void {
    this.sending = true;
    const token = ++this.sendToken;
    let settled = false;
    const finish = (r: ExportResult) => {
      if (settled || token !== this.sendToken) return;
      settled = true;
      if (watchdog) clearTimeout(watchdog);
      this.sending = false;
      this.onResult(batch, r);
    };
    // Safety net: a callback that never comes must not wedge the pipeline.
    const watchdogMs = (this.timeoutMillis ?? 10_000) + 15_000;
    const watchdog: NodeJS.Timeout | undefined = setTimeout(
      () => finish({ code: 1, error: new Error(`no export result after ${watchdogMs} ms`) }), watchdogMs);
    watchdog.unref();
    try {
      this.getExporter().export(batch.map((e) => e.rs), (r) => {
        // Defer: some failure paths call back synchronously.
        setImmediate(() => finish(r));
      });
    } catch (e) {
      setImmediate(() => finish({ code: 1, error: e as Error }));
    }
  }

  private onResult(batch: Entry[], r: ExportResult): void {
    if (r.code === 0 /* SUCCESS */) {
      this.inflight = null;
      this.counters.exported += batch.length;
      this.backoffMs = this.retryInitialMs;
      if (this.down) {
        this.down = false;
        this.exportedSinceRecovery = 0;
        if (!this.recoveryTarget) {
          // Log once the backlog queued during the outage is out.
          this.recoveryTarget = true;
          const secs = ((Date.now() - this.downSince) / 1000).toFixed(1);
          this.drainTo(this.nextSeq - 1, false).then(() => {
            this.recoveryTarget = false;
            if (!this.down) {
              log.info(`collector reachable again (${this.url}, after ${secs} s), ` +
                `exported ${this.exportedSinceRecovery} queued spans`);
            }
          });
        }
      }
      this.exportedSinceRecovery += batch.length;
      this.settleTargets(false);
      this.pump();
      return;
    }

    this.counters.failedExports++;
    const kind = classify(this.protocol, r.error);
    if (kind === 'too-large' && batch.length > 1) {
      // Split: send the first half now, put the rest back at the head of the queue.
      const half = Math.ceil(batch.length / 2);
      this.queue.unshiftMany(batch.slice(half));
      this.inflight = batch.slice(0, half);
      this.pump();
      return;
    }
    if (kind !== 'retry') {
      this.inflight = null;
      this.counters.dropped += batch.length;
      warnEvery(`export.rejected.${this.id}`, 10_000,
        `collector at ${this.url} rejected ${batch.length} spans (${describe(r.error)}); they are dropped`);
      this.settleTargets(false);
      this.pump();
      return;
    }

    // Retryable: keep the batch, back off, try again.
    if (!this.down) {
      this.down = true;
      this.downSince = Date.now();
      this.downReason = describe(r.error);
      warnEvery(`export.down.${this.id}`, 60_000,
        `cannot export spans to ${this.url} (${this.downReason}); ` +
        `retrying, keeping up to ${this.max} spans queued`);
    }
    this.settleTargets(true);
    this.maybeRecycleExporter();
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.retryMaxMs, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
    if (!this.closing) this.retryTimer.unref();
  }

  private async doShutdown(): Promise<void> {
    this.closing = true;
    this.closed = true;
    if (this.flushTimer) { clearTimeout(this.flushTimer); this.flushTimer = undefined; }
    const t0 = Date.now();
    const deadline = t0 + this.shutdownTimeoutMs;
    let deadlineTimer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      // Ref'd on purpose: keeps the process alive until the drain is over.
      deadlineTimer = setTimeout(() => resolve('timeout'), this.shutdownTimeoutMs);
    });
    try {
      if (this.held() > 0) {
        // During shutdown, retry quickly rather than with the long backoff.
        this.backoffMs = Math.min(this.backoffMs, this.retryInitialMs);
        if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
        await Promise.race([this.drainTo(this.nextSeq - 1, true), timedOut]);
      }
      const lost = this.held();
      if (lost > 0) {
        this.counters.dropped += lost;
        this.queue.clear();
        this.inflight = null;
        this.sendToken++; // ignore a late result of the export still in flight
        this.sending = false;
        log.warn(`could not export ${lost} span${lost === 1 ? '' : 's'} to ${this.url} within ` +
          `${(this.shutdownTimeoutMs / 1000).toFixed(1)} s at shutdown` +
          (this.down ? ` (collector unreachable: ${this.downReason})` : '') + '; they are lost');
      }
      if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
      for (const t of this.targets) t.resolve();
      this.targets = [];
      if (this.exporter) {
        // Bounded by the deadline: an export still in flight (e.g. the HTTP
        // exporter's own retries against a dead collector) is abandoned.
        const left = Math.max(20, deadline - Date.now());
        const exp = this.exporter;
        await Promise.race([
          Promise.resolve().then(() => exp.shutdown()).catch(() => undefined),
          new Promise((r) => setTimeout(r, left).unref()),
        ]);
      }
    } catch (e) {
      log.debug(`export shutdown: ${describe(e)}`);
    } finally {
      if (deadlineTimer) clearTimeout(deadlineTimer);
      this.closing = false;
    }
  }
}

// ---------------------------------------------------------------------------
// Console and composite sinks

export class ConsoleSpanSink implements SpanSink {
  readonly printer: ConsoleTreePrinter;
  private submitted = 0;
  private closed = false;

  constructor(opts: { out?: TextOutput; quietMs?: number; color?: boolean } = {}) {
    this.printer = new ConsoleTreePrinter({ out: opts.out, quietMs: opts.quietMs, color: opts.color });
  }

  submit(span: SpanRecord, resource: ProcessResource): void {
    this.submitted++;
    try {
      this.printer.add(span.toAgentSpan(), resource);
    } catch (e) {
      warnEvery('export.console', 10_000, `cannot print span "${span.name}": ${describe(e)}`);
    }
  }

  async flush(): Promise<void> {
    this.printer.flush();
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.printer.close();
  }

  stats(): SpanSinkStats {
    const queued = this.printer.bufferedSpans;
    return { submitted: this.submitted, exported: this.printer.printed, dropped: 0, failedExports: 0, queued };
  }
}

class NullSink implements SpanSink {
  private submitted = 0;
  submit(): void { this.submitted++; }
  async flush(): Promise<void> { /* nothing */ }
  async shutdown(): Promise<void> { /* nothing */ }
  stats(): SpanSinkStats { return { submitted: this.submitted, exported: 0, dropped: 0, failedExports: 0, queued: 0 }; }
}

class TeeSink implements SpanSink {
  constructor(private readonly primary: SpanSink, private readonly others: SpanSink[]) {}
  submit(span: SpanRecord, resource: ProcessResource): void {
    this.primary.submit(span, resource);
    for (const o of this.others) o.submit(span, resource);
  }
  async flush(): Promise<void> {
    await Promise.all([this.primary, ...this.others].map((s) => s.flush().catch(() => undefined)));
  }
  async shutdown(): Promise<void> {
    await Promise.all([this.primary, ...this.others].map((s) => s.shutdown().catch(() => undefined)));
  }
  /** Counts of the primary (OTLP) sink. */
  stats(): SpanSinkStats { return this.primary.stats(); }
}

/**
 * Builds the export stage: OTLP when exporter = 'otlp', the stdout trace tree
 * when exporter = 'console' or stdoutTree is set, both when both apply.
 * stats() reports the OTLP pipeline when there is one, else the printer.
 */
export function createSpanExporter(cfg: ExportConfig): SpanSink {
  const wantTree = cfg.exporter === 'console' || cfg.stdoutTree === true;
  const tree = wantTree
    ? new ConsoleSpanSink({ out: cfg.consoleOut, quietMs: cfg.consoleQuietMs, color: cfg.consoleColor })
    : undefined;
  if (cfg.exporter === 'otlp') {
    const otlp = new OtlpSpanSink(cfg);
    return tree ? new TeeSink(otlp, [tree]) : otlp;
  }
  return tree ?? new NullSink();
}
