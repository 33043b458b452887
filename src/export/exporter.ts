// Export stage: SpanRecord -> OTLP (gRPC or HTTP/protobuf), and/or the
// trace-tree printer on stdout.
//
// The OTLP pipeline encodes each span into protobuf as it is submitted
// (otlp/encode.ts: no per-span object graph, ids as bytes, resource and scope
// encoded once) and keeps a BOUNDED queue of encoded requests:
//  - at most maxQueueSpans spans are held (the open batch, sealed requests
//    waiting, and those in flight); beyond that new spans are dropped and
//    counted, with a throttled warning;
//  - a batch is sealed at batchSize spans or maxBatchBytes, or after
//    flushIntervalMs; up to `concurrency` requests are in flight;
//  - a retryable failure (collector down, 429/502/503/504, UNAVAILABLE...)
//    puts the request back at the head of the queue and retries forever with
//    capped exponential backoff (or the delay the collector asked for), one
//    request at a time while the collector is unreachable; one warning when it
//    goes away, one info line when it is back;
//  - a request too large is split in two; other rejections drop it (the OTLP
//    spec says not to retry them); spans a collector rejects in a partial
//    success are counted as rejected;
//  - never throws, never prints stack traces; shutdown() drains with a
//    deadline and reports what was lost.
// Every span is accounted for: submitted = exported + dropped (queue full)
// + rejected + lost at shutdown + still queued.

import type { ProcessResource } from '../spans/types';
import type { SpanRecord } from '../spans/record';
import { log, warnEvery } from '../util/log';
import { ConsoleTreePrinter, type TextOutput } from './console';
import { agentVersion } from '../util/paths';
import { SpanBatchEncoder, splitRequest, countSpans } from './otlp/encode';
import { createTransport, type Compression, type TlsFiles, type Transport, type TransportOptions, type SendResult } from './otlp/transport';

export type ExporterKind = 'otlp' | 'console' | 'none';
export type OtlpProtocol = 'grpc' | 'http/protobuf';
export type { Compression, TlsFiles } from './otlp/transport';

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
  /** OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION. Default none. */
  compression?: Compression;
  /** OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE / CLIENT_KEY / CLIENT_CERTIFICATE / INSECURE, files already read. */
  tls?: TlsFiles;
  /** Spans held at most (open batch + queued + being sent). Default 65536. */
  maxQueueSpans?: number;
  /** Spans per export request at most. Default 2048. */
  batchSize?: number;
  /** A partial batch is sent after this long. Default 500 ms. */
  flushIntervalMs?: number;
  /** Export requests in flight at once (while the collector answers). Default 2. */
  concurrency?: number;
  /** Stop adding spans to a request past this size. Default 3 MiB (gRPC's default limit at collectors is 4 MiB). */
  maxBatchBytes?: number;
  /** Stdout trace tree as well (OTEL_STDOUT=true). */
  stdoutTree?: boolean;
  /** Time limit of one export request (OTEL_EXPORTER_OTLP_TIMEOUT). Default 10 s. */
  timeoutMillis?: number;
  /** How long shutdown() keeps trying to export what is left. Default 3000 ms. */
  shutdownTimeoutMs?: number;
  /** Retry backoff after a failed export: first delay and cap. Default 250 ms and 5000 ms. */
  retryInitialMs?: number;
  retryMaxMs?: number;
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
  /** Spans lost, all causes: droppedQueueFull + rejected + lostAtShutdown. */
  dropped: number;
  /** Spans dropped because the queue was full. */
  droppedQueueFull: number;
  /** Spans the collector rejected (non-retryable errors, partial success). */
  rejected: number;
  /** Spans still queued when shutdown's deadline passed. */
  lostAtShutdown: number;
  /** Export requests that failed (each retry counts). */
  failedExports: number;
  /** Export requests sent successfully. */
  requests: number;
  /** Spans held right now (open batch + queued + being sent). */
  queued: number;
};

export interface SpanSink {
  /** A finished span. The record is pooled: copy what is needed now, keep no reference. */
  submit(span: SpanRecord, resource: ProcessResource): void;
  /** Exports / prints everything submitted so far. Resolves early if the collector is unreachable. */
  flush(): Promise<void>;
  /** Drains with a deadline, then releases the transport. Never rejects. */
  shutdown(): Promise<void>;
  stats(): SpanSinkStats;
  /**
   * A sink that takes spans from elsewhere too (the OTLP relay) and must see
   * the events already in the ring first is given the agent's drain here.
   */
  useEventDrain?(drain: () => void): void;
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

/** Drops headers Node or gRPC would refuse (they would make every export fail). */
function validHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (HEADER_NAME.test(k) && HEADER_VALUE.test(v)) out[k] = v;
    else log.warn(`OTLP header "${k.replace(/[^\x20-\x7e]/g, '?')}" has an invalid name or value; ignored`);
  }
  return out;
}

function short(msg: string): string {
  const m = msg.split('\n')[0].replace(/\s*Resolution note:\s*$/, '');
  return m.length > 200 ? m.slice(0, 200) + '...' : m;
}

// ---------------------------------------------------------------------------
// The OTLP pipeline

interface Request {
  body: Buffer;
  spans: number;
  /** Submission order of the last span in it (flush targets wait for it). */
  lastSeq: number;
}

interface DrainTarget { seq: number; resolve: () => void; untilDeadline: boolean }

let sinkIds = 0;

export class OtlpSpanSink implements SpanSink {
  readonly url: string;
  /** Distinguishes the throttling keys of several sinks in one process. */
  private readonly id = ++sinkIds;
  private readonly max: number;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly maxBatchBytes: number;
  private readonly concurrency: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly shutdownTimeoutMs: number;
  private readonly encoder: SpanBatchEncoder;
  private transport: Transport | undefined;
  private readonly transportFactory: () => Transport;

  private readonly queue: Request[] = [];
  private queueHead = 0;
  private queuedSpans = 0;
  private inflight = new Set<Request>();
  private inflightSpans = 0;
  private nextSeq = 1;
  /** seq of the first span in the open batch. */
  private openFirstSeq = 1;
  private flushTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private targets: DrainTarget[] = [];
  private closing = false;
  private closed = false;
  private shutdownPromise: Promise<void> | undefined;

  private down = false;
  private downSince = 0;
  private downReason = '';
  private exportedSinceRecovery = 0;
  private recovering = false;

  private readonly counters = {
    submitted: 0, exported: 0, droppedQueueFull: 0, rejected: 0, lostAtShutdown: 0, failedExports: 0, requests: 0,
  };

  constructor(cfg: ExportConfig, transportFactory?: (opts: TransportOptions) => Transport) {
    this.url = resolveOtlpUrl(cfg.protocol, cfg.endpoint, cfg.tracesEndpoint);
    this.max = Math.max(1, cfg.maxQueueSpans ?? 65_536);
    this.batchSize = Math.max(1, cfg.batchSize ?? 2048);
    this.flushIntervalMs = Math.max(1, cfg.flushIntervalMs ?? 500);
    this.maxBatchBytes = cfg.maxBatchBytes ?? 3 * 1024 * 1024;
    this.concurrency = Math.max(1, cfg.concurrency ?? 2);
    this.retryInitialMs = cfg.retryInitialMs ?? 250;
    this.retryMaxMs = Math.max(this.retryInitialMs, cfg.retryMaxMs ?? 5000);
    this.shutdownTimeoutMs = cfg.shutdownTimeoutMs ?? 3000;
    this.backoffMs = this.retryInitialMs;
    const version = cfg.agentVersion ?? agentVersion();
    this.encoder = new SpanBatchEncoder(version);
    const opts: TransportOptions = {
      url: this.url,
      headers: validHeaders(cfg.headers),
      timeoutMs: cfg.timeoutMillis ?? 10_000,
      compression: cfg.compression ?? 'none',
      tls: cfg.tls ?? {},
      userAgent: `otel-rust-agent/${version}`,
      concurrency: this.concurrency,
    };
    this.transportFactory = () => (transportFactory ?? ((o) => createTransport(cfg.protocol, o)))(opts);
  }

  submit(rec: SpanRecord, resource: ProcessResource): void {
    this.counters.submitted++;
    if (this.closed) { this.counters.lostAtShutdown++; return; }
    if (this.held() >= this.max) {
      this.counters.droppedQueueFull++;
      warnEvery(`export.queue-full.${this.id}`, 10_000,
        `span queue full (${this.max} spans${this.down ? ', collector unreachable' : ''}); ` +
        `dropping new spans (${this.counters.droppedQueueFull} dropped so far)`);
      return;
    }
    try {
      this.encoder.add(rec, resource);
    } catch (e) {
      this.counters.rejected++;
      warnEvery('export.encode', 10_000, `cannot encode span "${rec.name}": ${(e as Error).message}; dropped`);
      return;
    }
    this.nextSeq++;
    if (this.encoder.count >= this.batchSize || this.encoder.bytes >= this.maxBatchBytes) {
      this.seal();
      this.pump();
    } else {
      this.armFlushTimer();
    }
  }

  /**
   * An ExportTraceServiceRequest already encoded (the OTLP relay: spans the
   * application's SDK sent, or agent spans it held back), holding `spans`
   * spans. It joins the same bounded queue as a request of its own: false
   * (and counted as dropped) when it does not fit.
   */
  submitEncoded(body: Buffer, spans: number): boolean {
    this.counters.submitted += spans;
    if (this.closed) { this.counters.lostAtShutdown += spans; return false; }
    if (this.held() + spans > this.max) {
      this.counters.droppedQueueFull += spans;
      warnEvery(`export.queue-full.${this.id}`, 10_000,
        `span queue full (${this.max} spans${this.down ? ', collector unreachable' : ''}); ` +
        `dropping new spans (${this.counters.droppedQueueFull} dropped so far)`);
      return false;
    }
    // After the open batch, so spans keep their submission order.
    this.seal();
    this.nextSeq += spans;
    this.queue.push({ body, spans, lastSeq: this.nextSeq - 1 });
    this.queuedSpans += spans;
    this.openFirstSeq = this.nextSeq;
    this.pump();
    return true;
  }

  /** Whether `spans` more spans fit in the queue now. */
  hasRoomFor(spans: number): boolean {
    return !this.closed && this.held() + spans <= this.max;
  }

  flush(): Promise<void> {
    if (this.closed && !this.closing) return Promise.resolve();
    this.seal();
    return this.drainTo(this.nextSeq - 1, false);
  }

  shutdown(): Promise<void> {
    if (!this.shutdownPromise) this.shutdownPromise = this.doShutdown();
    return this.shutdownPromise;
  }

  stats(): SpanSinkStats {
    const c = this.counters;
    return { ...c, dropped: c.droppedQueueFull + c.rejected + c.lostAtShutdown, queued: this.held() };
  }

  // -- internals ------------------------------------------------------------

  private held(): number {
    return this.encoder.count + this.queuedSpans + this.inflightSpans;
  }

  private getTransport(): Transport {
    return (this.transport ??= this.transportFactory());
  }

  /** Moves the open batch to the queue as one encoded request. */
  private seal(): void {
    if (this.flushTimer) { clearTimeout(this.flushTimer); this.flushTimer = undefined; }
    if (this.encoder.count === 0) return;
    const spans = this.encoder.count;
    this.queue.push({ body: this.encoder.finish(), spans, lastSeq: this.nextSeq - 1 });
    this.queuedSpans += spans;
    this.openFirstSeq = this.nextSeq;
  }

  private armFlushTimer(): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.seal();
      this.pump();
    }, this.flushIntervalMs);
    this.flushTimer.unref();
  }

  private queueLength(): number {
    return this.queue.length - this.queueHead;
  }

  private shift(): Request | undefined {
    if (this.queueHead >= this.queue.length) return undefined;
    const r = this.queue[this.queueHead];
    (this.queue as (Request | undefined)[])[this.queueHead++] = undefined;
    if (this.queueHead > 256 && this.queueHead * 2 > this.queue.length) { this.queue.splice(0, this.queueHead); this.queueHead = 0; }
    this.queuedSpans -= r.spans;
    return r;
  }

  private unshift(r: Request): void {
    if (this.queueHead > 0) this.queue[--this.queueHead] = r;
    else this.queue.unshift(r);
    this.queuedSpans += r.spans;
  }

  /** Oldest seq still held (open batch included), or Infinity. */
  private oldestHeld(): number {
    let oldest = Infinity;
    for (const r of this.inflight) oldest = Math.min(oldest, r.lastSeq - r.spans + 1);
    const q = this.queue[this.queueHead];
    if (q) oldest = Math.min(oldest, q.lastSeq - q.spans + 1);
    if (this.encoder.count > 0) oldest = Math.min(oldest, this.openFirstSeq);
    return oldest;
  }

  /** Resolves when every span with seq <= `seq` is exported or dropped (or, unless untilDeadline, an export fails). */
  private drainTo(seq: number, untilDeadline: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const t: DrainTarget = { seq, resolve, untilDeadline };
      if (this.oldestHeld() > seq) { resolve(); return; }
      this.targets.push(t);
      if (this.retryTimer) {
        // Skip the remaining backoff: try right away.
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      this.pump();
    });
  }

  private settleTargets(failed: boolean): void {
    if (this.targets.length === 0) return;
    const oldest = this.oldestHeld();
    const keep: DrainTarget[] = [];
    for (const t of this.targets) {
      if (oldest > t.seq || (failed && !t.untilDeadline)) t.resolve();
      else keep.push(t);
    }
    this.targets = keep;
  }

  private pump(): void {
    if (this.retryTimer) return;
    // While the collector is unreachable, one request probes it at a time.
    const limit = this.down ? 1 : this.concurrency;
    while (this.inflight.size < limit) {
      const r = this.shift();
      if (!r) break;
      this.send(r);
    }
    if (this.inflight.size === 0 && this.queueLength() === 0) this.settleTargets(false);
  }

  private send(r: Request): void {
    this.inflight.add(r);
    this.inflightSpans += r.spans;
    let result: Promise<SendResult>;
    try {
      result = this.getTransport().send(r.body);
    } catch (e) {
      result = Promise.resolve({ kind: 'retry', error: (e as Error).message });
    }
    result.catch((e: Error): SendResult => ({ kind: 'retry', error: e.message })).then((res) => {
      this.inflight.delete(r);
      this.inflightSpans -= r.spans;
      this.onResult(r, res);
    });
  }

  private onResult(r: Request, res: SendResult): void {
    if (res.kind === 'ok') {
      const rejected = Math.min(r.spans, res.rejected);
      this.counters.requests++;
      this.counters.exported += r.spans - rejected;
      if (rejected > 0) {
        this.counters.rejected += rejected;
        warnEvery(`export.partial.${this.id}`, 10_000,
          `collector at ${this.url} rejected ${rejected} of ${r.spans} spans${res.message ? ` (${short(res.message)})` : ''}`);
      }
      this.backoffMs = this.retryInitialMs;
      this.exportedSinceRecovery += r.spans - rejected;
      if (this.down) {
        this.down = false;
        this.exportedSinceRecovery = r.spans - rejected;
        const secs = ((Date.now() - this.downSince) / 1000).toFixed(1);
        if (!this.recovering) {
          // Log once the backlog queued during the outage is out.
          this.recovering = true;
          this.drainTo(this.nextSeq - 1, false).then(() => {
            this.recovering = false;
            if (!this.down) log.info(`collector reachable again (${this.url}, after ${secs} s), exported ${this.exportedSinceRecovery} queued spans`);
          });
        }
      }
      this.settleTargets(false);
      this.pump();
      return;
    }

    this.counters.failedExports++;
    if (res.kind === 'too-large') {
      const halves = r.spans > 1 ? splitRequest(r.body) : undefined;
      if (halves) {
        const n0 = countSpans(halves[0]);
        this.unshift({ body: halves[1], spans: r.spans - n0, lastSeq: r.lastSeq });
        this.unshift({ body: halves[0], spans: n0, lastSeq: r.lastSeq - (r.spans - n0) });
        this.pump();
        return;
      }
    }
    if (res.kind !== 'retry') {
      this.counters.rejected += r.spans;
      warnEvery(`export.rejected.${this.id}`, 10_000,
        `collector at ${this.url} rejected ${r.spans} spans (${short(res.error)}); they are dropped`);
      this.settleTargets(false);
      this.pump();
      return;
    }

    // Retryable: keep the request, back off, try again.
    this.unshift(r);
    if (!this.down) {
      this.down = true;
      this.downSince = Date.now();
      this.downReason = short(res.error);
      warnEvery(`export.down.${this.id}`, 60_000,
        `cannot export spans to ${this.url} (${this.downReason}); retrying, keeping up to ${this.max} spans queued`);
    }
    this.settleTargets(true);
    if (this.retryTimer) return;
    const delay = Math.min(this.retryMaxMs * 6, res.retryAfterMs ?? this.backoffMs);
    this.backoffMs = Math.min(this.retryMaxMs, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, this.closing ? Math.min(delay, this.retryInitialMs) : delay);
    if (!this.closing) this.retryTimer.unref();
  }

  private async doShutdown(): Promise<void> {
    this.closing = true;
    this.closed = true;
    this.seal();
    let deadlineTimer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      // Ref'd on purpose: keeps the process alive until the drain is over.
      deadlineTimer = setTimeout(() => resolve('timeout'), this.shutdownTimeoutMs);
    });
    try {
      if (this.held() > 0) {
        this.backoffMs = Math.min(this.backoffMs, this.retryInitialMs);
        if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
        await Promise.race([this.drainTo(this.nextSeq - 1, true), timedOut]);
      }
      const lost = this.held();
      if (lost > 0) {
        this.counters.lostAtShutdown += lost;
        this.queue.length = 0;
        this.queueHead = 0;
        this.queuedSpans = 0;
        log.warn(`could not export ${lost} span${lost === 1 ? '' : 's'} to ${this.url} within ` +
          `${(this.shutdownTimeoutMs / 1000).toFixed(1)} s at shutdown` +
          (this.down ? ` (collector unreachable: ${this.downReason})` : '') + '; they are lost');
        // Requests still in flight are abandoned: their result no longer counts.
        this.inflight.clear();
        this.inflightSpans = 0;
      }
      if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = undefined; }
      for (const t of this.targets) t.resolve();
      this.targets = [];
    } catch (e) {
      log.debug(`export shutdown: ${(e as Error).message}`);
    } finally {
      if (deadlineTimer) clearTimeout(deadlineTimer);
      try { this.transport?.close(); } catch { /* closing anyway */ }
      this.closing = false;
    }
  }
}

// ---------------------------------------------------------------------------
// Console and composite sinks

const ZERO_STATS: SpanSinkStats = {
  submitted: 0, exported: 0, dropped: 0, droppedQueueFull: 0, rejected: 0, lostAtShutdown: 0, failedExports: 0, requests: 0, queued: 0,
};

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
      warnEvery('export.console', 10_000, `cannot print span "${span.name}": ${short((e as Error).message ?? String(e))}`);
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
    return { ...ZERO_STATS, submitted: this.submitted, exported: this.printer.printed, queued };
  }
}

class NullSink implements SpanSink {
  private submitted = 0;
  submit(): void { this.submitted++; }
  async flush(): Promise<void> { /* nothing */ }
  async shutdown(): Promise<void> { /* nothing */ }
  stats(): SpanSinkStats { return { ...ZERO_STATS, submitted: this.submitted }; }
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
