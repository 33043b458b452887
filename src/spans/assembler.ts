// Events -> spans. Routes each decoded event to the span builder of its probe
// module. A new module registers its builder here.
import type { AgentEvent } from '../events/decode';
import type { AgentSpan } from './types';
import { HyperH1ServerSpans } from './hyper-h1-server';
import { hyperH1Server } from '../probes/hyper-h1-server';

export interface SpanOutput {
  toUnixNano(monoNs: bigint): bigint;
  emit(span: AgentSpan): void;
}

export class SpanAssembler {
  readonly h1Server: HyperH1ServerSpans;

  constructor(out: SpanOutput) {
    this.h1Server = new HyperH1ServerSpans(out, hyperH1Server.scope);
  }

  handle(ev: AgentEvent): void {
    switch (ev.type) {
      case 'h1.request': this.h1Server.onRequest(ev); break;
      case 'h1.response': this.h1Server.onResponse(ev); break;
    }
  }

  /** A process exited: drop its unfinished requests; returns how many. */
  forgetProcess(pid: number): number {
    return this.h1Server.forgetProcess(pid);
  }

  /** Drops requests that waited too long for a response (client gone). */
  expire(nowMono: bigint): void {
    this.h1Server.expire(nowMono);
  }

  /** Pids that have state here. */
  pids(): number[] {
    return this.h1Server.pids();
  }

  stats(): Record<string, number> {
    return { ...this.h1Server.stats, pending: this.h1Server.pendingCount() };
  }
}
