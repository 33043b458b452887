// The OTLP relay: the agent as the application's own OTLP endpoint, so that
// spans the application makes with the OpenTelemetry SDK (manual spans) and
// the agent's spans form one trace, without writing the process's memory
// (kernel lockdown refuses bpf_probe_write_user).
//
// The application's exporter is pointed at the agent
// (OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:<relay port>). For every span
// it sends:
//  - its trace id was seen being made (src/spans/sdk-sightings.ts: the
//    otel-sdk probe saw the SDK build the trace's root span) while an agent
//    span was active in the building task: the span moves into the agent's
//    trace (trace id := the agent span's), and the root span gets the agent
//    span as parent. `placedRoots`, `placedDescendants`.
//  - seen, but no agent span was active then: a real root; unchanged
//    (`outsideAgentSpans`).
//  - never seen (built before the agent attached, an SDK the probe does not
//    cover, a sighting forgotten): unchanged (`unplaced`).
// Then the request goes, rewritten, to the agent's own export queue (an
// OtlpSpanSink of its own, with the same bound, retries and counters, to the
// same collector): `relay.export` in the stats.
//
// The other direction: an agent CLIENT span made inside a manual span should
// be its child, but the agent only learns the manual span's id when the SDK
// exports it, after the call. So CLIENT spans of an agent trace in which a
// manual root span started are held back (encoded, `clientsHeld`) until that
// root span arrives: then the innermost manual span of the trace in whose
// interval the call started becomes its parent (`clientsReparented`), or the
// span goes unchanged if none does (`clientsOutsideManual`). A span held
// longer than holdMs goes unchanged (`clientsUnresolved`). The SDK exports a
// span when it ends, children before parents, so when a root arrives every
// span nested in it has arrived.
//
// Agent spans whose trace id is such a manual trace's (a service traced by
// the agent that received the application's own traceparent) get the agent
// trace id too (`agentSpansMoved`), so the downstream stays in the trace.
//
// The SDK's own export calls to the relay are HTTP client requests the agent
// sees too: those CLIENT spans (url.full at the relay's port on a loopback
// host, path /v1/traces) are not exported (`ownExportCalls`).
import type { SpanRecord } from '../../spans/record';
import { SpanKind, attrKey } from '../../spans/record';
import type { ProcessResource } from '../../spans/types';
import type { OtlpSpanSink, SpanSink, SpanSinkStats } from '../exporter';
import { SpanBatchEncoder } from '../otlp/encode';
import { SDK_SIGHTINGS, type SdkSightings } from '../../spans/sdk-sightings';
import { MalformedRequest, rewriteRequest } from './otlp-traces';
import { log } from '../../util/log';

export type RelayResult =
  | { kind: 'ok'; spans: number }
  | { kind: 'malformed'; message: string }
  | { kind: 'busy'; message: string };

interface ManualSpan { spanId: string; start: bigint; end: bigint; root: boolean }
interface ManualTrace { spans: ManualSpan[]; rootsArrived: number; touched: number }
interface Held { body: Buffer; traceId: string; start: bigint; end: bigint; since: number }

export interface RelayOptions {
  /** How long an agent CLIENT span waits for its manual parent at most. Default 15 s. */
  holdMs?: number;
  /** The relay's own port (the SDK's export calls to it are not traced). */
  port?: number;
  agentVersion: string;
}

const URL_FULL = attrKey('url.full');
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
/** Agent CLIENT spans held at most (beyond: released unchanged at once). */
const MAX_HELD = 16_384;
/** Agent traces whose manual spans are remembered at most. */
const MAX_TRACES = 16_384;
const TRACE_KEEP_MS = 120_000;

export class OtlpRelay implements SpanSink {
  readonly counts = {
    requests: 0, malformed: 0, busy: 0, spans: 0,
    placedRoots: 0, placedDescendants: 0, outsideAgentSpans: 0, unplaced: 0,
    clientsHeld: 0, clientsReparented: 0, clientsOutsideManual: 0, clientsUnresolved: 0, ownExportCalls: 0, agentSpansMoved: 0,
  };
  private readonly held = new Map<string, Held[]>();
  private heldCount = 0;
  private readonly manual = new Map<string, ManualTrace>();
  private readonly holdMs: number;
  private timer: NodeJS.Timeout | undefined;
  private drainEvents: (() => void) | undefined;
  port: number | undefined;
  /** Closed first at shutdown (no request arrives while the queues drain). */
  listeners: { close(): Promise<void> }[] = [];

  /**
   * `agent`: the agent's own OTLP sink (its spans, and the CLIENT spans held
   * here when released); `relayed`: the queue of the application's spans.
   */
  constructor(private readonly agent: OtlpSpanSink, private readonly relayed: OtlpSpanSink, private readonly opts: RelayOptions,
    private readonly sightings: SdkSightings = SDK_SIGHTINGS) {
    this.holdMs = opts.holdMs ?? 15_000;
    this.port = opts.port;
    this.timer = setInterval(() => this.tick(Date.now()), 500);
    this.timer.unref();
  }

  // ------------------------------------------------ spans from the application

  /** One ExportTraceServiceRequest from the application's exporter. */
  receive(body: Buffer): RelayResult {
    this.counts.requests++;
    let spans: number;
    try {
      spans = rewriteRequest(body, () => undefined).spans; // validate the whole request before any side effect
    } catch (e) {
      this.counts.malformed++;
      return { kind: 'malformed', message: e instanceof MalformedRequest ? e.message : 'not an ExportTraceServiceRequest' };
    }
    if (spans === 0) return { kind: 'ok', spans: 0 };
    if (!this.relayed.hasRoomFor(spans)) {
      this.counts.busy++;
      return { kind: 'busy', message: 'the relay\'s export queue is full; retry later' };
    }
    // The SDK can export a span within milliseconds of building it, sooner
    // than the agent's next periodic drain: the sample event that files its
    // trace's sighting may still be in the ring. Drain it first, or the trace
    // would be forwarded unplaced (seen in CI on 2 vCPUs).
    this.drainEvents?.();
    const rootsFor = new Set<string>();
    const now = Date.now();
    const out = rewriteRequest(body, (span) => {
      const tid = span.traceId.toString('hex');
      const s = tid ? this.sightings.get(tid) : undefined;
      if (!s) { this.counts.unplaced++; return undefined; }
      if (!s.agentTraceId || !s.agentSpanId) { this.counts.outsideAgentSpans++; return undefined; }
      const x = s.agentTraceId;
      let mt = this.manual.get(x);
      if (!mt) {
        this.manual.set(x, (mt = { spans: [], rootsArrived: 0, touched: now }));
        if (this.manual.size > MAX_TRACES) this.manual.delete(this.manual.keys().next().value as string);
      }
      mt.touched = now;
      const root = span.parentSpanId === undefined;
      mt.spans.push({ spanId: span.spanId.toString('hex'), start: span.startUnixNano, end: span.endUnixNano, root });
      if (root) {
        mt.rootsArrived++;
        rootsFor.add(x);
        this.counts.placedRoots++;
        return { traceId: Buffer.from(x, 'hex'), parentSpanId: Buffer.from(s.agentSpanId, 'hex') };
      }
      this.counts.placedDescendants++;
      return { traceId: Buffer.from(x, 'hex') };
    });
    this.counts.spans += out.spans;
    this.relayed.submitEncoded(out.body, out.spans);
    for (const x of rootsFor) this.resolve(x, false);
    return { kind: 'ok', spans: out.spans };
  }

  // ------------------------------------------------ the agent's own spans (SpanSink)

  submit(rec: SpanRecord, resource: ProcessResource): void {
    // An agent span in a manual trace that the relay moves (a server span
    // whose caller sent the application's own traceparent, say) moves with it.
    const moved = this.sightings.get(rec.traceIdHex())?.agentTraceId;
    if (moved) { rec.setTraceIdHex(moved); this.counts.agentSpansMoved++; }
    if (rec.kind === SpanKind.CLIENT) {
      if (this.isOwnExportCall(rec)) { this.counts.ownExportCalls++; return; }
      const x = rec.traceIdHex();
      if (this.heldCount < MAX_HELD && this.sightings.manualUnder(x, rec.pid, rec.startUnixNano)) {
        const enc = new SpanBatchEncoder(this.opts.agentVersion);
        enc.add(rec, resource);
        let list = this.held.get(x);
        if (!list) this.held.set(x, (list = []));
        list.push({ body: enc.finish(), traceId: x, start: rec.startUnixNano, end: rec.endUnixNano, since: Date.now() });
        this.heldCount++;
        this.counts.clientsHeld++;
        if (this.manual.get(x)?.rootsArrived) this.resolve(x, false);
        return;
      }
    }
    this.agent.submit(rec, resource);
  }

  useEventDrain(drain: () => void): void {
    this.drainEvents = drain;
  }

  flush(): Promise<void> {
    return Promise.all([this.agent.flush(), this.relayed.flush()]).then(() => undefined);
  }

  async shutdown(): Promise<void> {
    if (this.timer) { clearInterval(this.timer); this.timer = undefined; }
    await Promise.all(this.listeners.map((l) => l.close().catch(() => undefined)));
    this.listeners = [];
    for (const x of [...this.held.keys()]) this.resolve(x, true);
    await Promise.all([this.agent.shutdown(), this.relayed.shutdown()]);
  }

  /** The agent's own spans: spans held here count as submitted and queued; its own export calls as submitted and filtered. */
  stats(): SpanSinkStats & { relay: Record<string, unknown> } {
    const a = this.agent.stats();
    return {
      ...a,
      submitted: a.submitted + this.heldCount + this.counts.ownExportCalls,
      queued: a.queued + this.heldCount,
      relay: { ...this.counts, held: this.heldCount, export: this.relayed.stats(), sightings: this.sightings.stats() },
    };
  }

  // ------------------------------------------------ internals

  private isOwnExportCall(rec: SpanRecord): boolean {
    if (this.port === undefined) return false;
    const i = rec.findAttr(URL_FULL);
    if (i < 0) return false;
    const v = rec.attrValue(i);
    if (typeof v !== 'string') return false;
    try {
      const u = new URL(v);
      return LOOPBACK.has(u.hostname) && Number(u.port || 80) === this.port && u.pathname === '/v1/traces';
    } catch {
      return false;
    }
  }

  /** Releases the held CLIENT spans of agent trace `x` whose manual parent is known (all of them when `all`). */
  private resolve(x: string, all: boolean, now = Date.now()): void {
    const list = this.held.get(x);
    if (!list) return;
    const mt = this.manual.get(x);
    const keep: Held[] = [];
    for (const h of list) {
      const parent = mt ? this.parentOf(mt, h) : undefined;
      if (parent) {
        this.release(h, parent);
        this.counts.clientsReparented++;
        continue;
      }
      // No arrived root contains the call: when every manual root of the trace has arrived (or on timeout/shutdown) it stays as it is.
      const allRoots = mt !== undefined && mt.rootsArrived >= this.rootsExpected(x);
      if (all || allRoots || now - h.since >= this.holdMs) {
        this.release(h, undefined);
        if (allRoots) this.counts.clientsOutsideManual++;
        else this.counts.clientsUnresolved++;
        continue;
      }
      keep.push(h);
    }
    if (keep.length) this.held.set(x, keep);
    else this.held.delete(x);
  }

  private rootsExpected(x: string): number {
    return this.sightings.rootsUnder(x);
  }

  /** The innermost manual span the call started in, provided a manual root containing it has arrived. */
  private parentOf(mt: ManualTrace, h: Held): string | undefined {
    // The call started inside the manual span (its end is not compared: the
    // two clocks agree to about a microsecond, and a call can outlive a span
    // that did not await it).
    const contains = (m: ManualSpan) => m.start <= h.start && h.start <= m.end;
    if (!mt.spans.some((m) => m.root && contains(m))) return undefined;
    let best: ManualSpan | undefined;
    for (const m of mt.spans) if (contains(m) && (!best || m.start > best.start)) best = m;
    return best?.spanId;
  }

  private release(h: Held, parentSpanId: string | undefined): void {
    this.heldCount--;
    let body = h.body;
    if (parentSpanId) {
      try {
        body = rewriteRequest(body, () => ({ parentSpanId: Buffer.from(parentSpanId, 'hex') })).body;
      } catch (e) {
        log.debug(`relay: cannot re-parent a held span: ${(e as Error).message}`);
      }
    }
    this.agent.submitEncoded(body, 1);
  }

  private tick(now: number): void {
    for (const x of [...this.held.keys()]) this.resolve(x, false, now);
    for (const [x, mt] of this.manual) if (now - mt.touched > TRACE_KEEP_MS && !this.held.has(x)) this.manual.delete(x);
  }
}
