// rustls handshake events -> the shared context's TLS marks (context.ts rule 4).
import type { SpanBuilder } from '../library';
import { DecodeError } from '../../events/header';
import type { ServerSpanContext } from '../../spans/context';
import { decodeHello } from './decode';
import { RUSTLS_SERVER_LAYOUTS } from './layouts';

export class RustlsServerSpans implements SpanBuilder {
  readonly counts = { handshakes: 0, outsideTasks: 0 };
  private seen = new Set<number>();

  constructor(private readonly ctx: ServerSpanContext) {}

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind !== RUSTLS_SERVER_LAYOUTS.kinds.RUSTLS_SERVER_HELLO) throw new DecodeError(`rustls-server: unknown event kind ${kind}`);
    const ev = decodeHello(dv, off, len);
    this.counts.handshakes++;
    if (ev.taskId === 0) this.counts.outsideTasks++;
    this.seen.add(ev.hdr.pid);
    this.ctx.markTlsTask(ev.hdr.pid, ev.taskId);
  }

  forgetProcess(pid: number): number {
    this.seen.delete(pid);
    return 0;
  }

  expire(): void { /* nothing waits here */ }

  pids(): number[] {
    return [...this.seen];
  }

  stats(): Record<string, number> {
    return { ...this.counts };
  }
}
