// Where spans went: the one line the agent prints when it stops, so every way
// a span can be lost is counted in one place. Events lost in the ring buffer
// are counted by the BPF programs per probe (a request whose request or
// response event was lost makes no span); spans lost after they were built
// are counted by the exporter.
import type { ProbeCounters } from '../bpf/loader';
import type { SpanSinkStats } from '../export/exporter';

export interface LossSummary {
  /** Events the BPF programs could not write: the ring buffer was full. */
  ringDrops: number;
  built: number;
  exported: number;
  droppedQueueFull: number;
  rejected: number;
  lostAtShutdown: number;
  filtered: number;
}

export function lossSummary(probes: { counters: ProbeCounters }[], built: number, filtered: number, ex: SpanSinkStats): LossSummary {
  let ringDrops = 0;
  for (const p of probes) ringDrops += Number(p.counters.drops);
  return { ringDrops, built, exported: ex.exported, droppedQueueFull: ex.droppedQueueFull, rejected: ex.rejected, lostAtShutdown: ex.lostAtShutdown, filtered };
}

export function describeLoss(s: LossSummary): string {
  const parts = [`${s.built} span${s.built === 1 ? '' : 's'} built`, `${s.exported} exported`];
  if (s.droppedQueueFull) parts.push(`${s.droppedQueueFull} dropped (span queue full)`);
  if (s.rejected) parts.push(`${s.rejected} rejected by the collector`);
  if (s.lostAtShutdown) parts.push(`${s.lostAtShutdown} lost at shutdown`);
  if (s.filtered) parts.push(`${s.filtered} of excluded processes`);
  const ring = s.ringDrops ? `; ${s.ringDrops} event${s.ringDrops === 1 ? '' : 's'} lost in the ring buffer (full: see --ring-size)` : '; no event lost in the ring buffer';
  return `spans: ${parts.join(', ')}${ring}`;
}
