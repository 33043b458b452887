// Spans the application's own OpenTelemetry SDK was seen building, by trace
// id, and the agent span that was active in the building task at that moment.
// Filed by the otel-sdk library (src/libs/otel-sdk: a probe where the SDK
// hands the span's trace id to its sampler); read by the OTLP relay
// (src/export/relay), which receives the same spans from the application's
// exporter and puts those built under an agent span into the agent's trace.
//
// The first sighting of a trace id is its root span: the SDK makes a new
// trace id only for a span without a (valid) parent, and every later span of
// that trace reuses it. So one entry per trace id says where the manual trace
// started. Trace ids are 128 random bits: no process id is needed to key them.
//
// Bounded: at most MAX_TRACES trace ids are remembered (oldest forgotten
// first), each for KEEP_NS; a trace forgotten before its spans arrive is
// forwarded unchanged by the relay (and counted there as unplaced).

export interface SdkSighting {
  pid: number;
  tid: number;
  task: number;
  /** When the root span was being built (Unix-epoch ns). */
  startUnixNano: bigint;
  /** The agent span active in that task then (hex ids), if any. */
  agentTraceId: string | undefined;
  agentSpanId: string | undefined;
  /** Sightings of this trace id (its spans being built, ParentBased's second call included). */
  hits: number;
}

export const MAX_TRACES = 65_536;
const KEEP_NS = 120_000_000_000n;

export class SdkSightings {
  private readonly traces = new Map<string, SdkSighting>();
  /** Agent trace id -> how many manual root spans were seen starting under it (the relay holds that trace's CLIENT spans). */
  private readonly underAgent = new Map<string, { roots: number; firstUnixNano: bigint; pid: number }>();
  readonly counts = { sightings: 0, roots: 0, rootsUnderAgentSpan: 0, forgotten: 0 };

  /** A span with trace id `traceId` (32 hex) is being built. */
  saw(traceId: string, s: Omit<SdkSighting, 'hits'>): void {
    this.counts.sightings++;
    const old = this.traces.get(traceId);
    if (old) { old.hits++; return; }
    this.counts.roots++;
    this.traces.set(traceId, { ...s, hits: 1 });
    if (s.agentTraceId) {
      this.counts.rootsUnderAgentSpan++;
      const u = this.underAgent.get(s.agentTraceId);
      if (u) u.roots++;
      else this.underAgent.set(s.agentTraceId, { roots: 1, firstUnixNano: s.startUnixNano, pid: s.pid });
    }
    if (this.traces.size > MAX_TRACES) this.forgetOldest();
  }

  /** Another span of a trace already seen (or the sampler's second call): true if known. */
  again(traceId: string): boolean {
    const old = this.traces.get(traceId);
    if (!old) return false;
    this.counts.sightings++;
    old.hits++;
    return true;
  }

  get(traceId: string): SdkSighting | undefined {
    return this.traces.get(traceId);
  }

  /** Whether a manual root span started inside agent trace `agentTraceId` (in process `pid`, at or before `atUnixNano`). */
  manualUnder(agentTraceId: string, pid: number, atUnixNano: bigint): boolean {
    const u = this.underAgent.get(agentTraceId);
    return u !== undefined && u.pid === pid && u.firstUnixNano <= atUnixNano;
  }

  /** How many manual root spans were seen starting under agent trace `agentTraceId`. */
  rootsUnder(agentTraceId: string): number {
    return this.underAgent.get(agentTraceId)?.roots ?? 0;
  }

  /** Drops what is older than KEEP_NS before `nowUnixNano`. */
  expire(nowUnixNano: bigint): void {
    for (const [id, s] of this.traces) {
      if (nowUnixNano - s.startUnixNano < KEEP_NS) break; // insertion order is start order
      this.drop(id, s);
    }
  }

  forgetProcess(pid: number): void {
    for (const [id, s] of this.traces) if (s.pid === pid) this.drop(id, s);
  }

  stats(): Record<string, number> {
    return { ...this.counts, remembered: this.traces.size };
  }

  private forgetOldest(): void {
    const first = this.traces.entries().next().value as [string, SdkSighting] | undefined;
    if (first) this.drop(first[0], first[1]);
  }

  private drop(id: string, s: SdkSighting): void {
    this.traces.delete(id);
    this.counts.forgotten++;
    if (s.agentTraceId) this.underAgent.delete(s.agentTraceId);
  }
}

/** The one table of an agent run (the otel-sdk library files, the relay reads). */
export const SDK_SIGHTINGS = new SdkSightings();
