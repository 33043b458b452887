// OpenTelemetry SDK events -> sightings of the application's manual spans
// (src/spans/sdk-sightings.ts). This library makes no spans of its own: the
// application's SDK exports its spans itself; the agent learns, for each
// manual trace, where it started (process, thread, task, time) and which
// agent span was active in that task, so that the OTLP relay can put the
// manual spans into the agent's trace.
import type { SpanBuilder, SpanOutput } from '../library';
import type { ServerSpanContext } from '../../spans/context';
import { DecodeError } from '../../events/header';
import { SDK_SIGHTINGS, type SdkSightings } from '../../spans/sdk-sightings';
import { OTEL_SDK_LAYOUTS } from './layouts';

const EV = OTEL_SDK_LAYOUTS.structs.otel_sdk_sample_event;
const H = { pid: 4, tid: 8, ts: 16 };

function hex64(dv: DataView, off: number): string {
  return dv.getUint32(off + 4, true).toString(16).padStart(8, '0') + dv.getUint32(off, true).toString(16).padStart(8, '0');
}

export class OtelSdkSpans implements SpanBuilder {
  readonly counts = { events: 0, invalidTraceId: 0, underAgentSpan: 0, noAgentSpan: 0 };

  constructor(private readonly out: SpanOutput, private readonly ctx: ServerSpanContext, private readonly sightings: SdkSightings = SDK_SIGHTINGS) {}

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind !== OTEL_SDK_LAYOUTS.kinds.OTEL_SDK_SAMPLE) throw new DecodeError(`otel-sdk: unknown event kind ${kind}`);
    if (len < EV.$size) throw new DecodeError(`otel-sdk: sample event of ${len} bytes`);
    this.counts.events++;
    // TraceId::from(u128) keeps the number's big-endian bytes: high half first.
    const traceId = hex64(dv, off + EV.trace_hi) + hex64(dv, off + EV.trace_lo);
    if (/^0+$/.test(traceId)) { this.counts.invalidTraceId++; return; }
    const pid = dv.getUint32(off + H.pid, true);
    if (this.sightings.again(traceId)) return;
    const task = dv.getUint32(off + EV.task_id, true) + dv.getUint32(off + EV.task_id + 4, true) * 4294967296;
    const active = task !== 0 ? this.ctx.find(pid, 'task', task) : undefined;
    const open = active && active.open ? active : undefined;
    if (open) this.counts.underAgentSpan++;
    else this.counts.noAgentSpan++;
    this.sightings.saw(traceId, {
      pid,
      tid: dv.getUint32(off + H.tid, true),
      task,
      startUnixNano: this.out.toUnixNano(dv.getBigUint64(off + H.ts, true)),
      agentTraceId: open?.rec.traceIdHex(),
      agentSpanId: open?.rec.spanIdHex(),
    });
  }

  forgetProcess(pid: number): number {
    this.sightings.forgetProcess(pid);
    return 0;
  }

  expire(nowMono: bigint): void {
    this.sightings.expire(this.out.toUnixNano(nowMono));
  }

  pids(): number[] {
    return [];
  }

  stats(): Record<string, number> {
    return { ...this.counts, ...this.sightings.stats() };
  }
}
