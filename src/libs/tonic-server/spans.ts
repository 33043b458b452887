// tonic trailers events -> the end of the gRPC span of their stream.
//
// The gRPC protocol (grpc.ts) is registered in the shared context: h2-server
// lets it claim gRPC requests (content-type application/grpc), name and
// shape their spans, and keep them open past the response head. The
// trailers event finds its stream's span by (connection, stream id) and ends
// it with the call's status.
import type { SpanBuilder, SpanSettings } from '../library';
import { DecodeError } from '../../events/header';
import { ServerSpanContext } from '../../spans/context';
import { decodeTrailers, type GrpcTrailersEvent } from './decode';
import { GrpcProtocol } from './grpc';
import { TONIC_SERVER_LAYOUTS } from './layouts';

const UNKNOWN = 2;

export class TonicServerSpans implements SpanBuilder {
  readonly counts = { calls: 0, unmatchedTrailers: 0, noStatus: 0 };
  readonly protocol: GrpcProtocol;
  private seen = new Set<number>();

  constructor(private readonly ctx: ServerSpanContext, settings: SpanSettings) {
    this.protocol = new GrpcProtocol({ rpcDup: settings.rpcDup });
    ctx.registerProtocol(this.protocol);
  }

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind !== TONIC_SERVER_LAYOUTS.kinds.TONIC_SERVER_TRAILERS) throw new DecodeError(`tonic-server: unknown event kind ${kind}`);
    this.onTrailers(decodeTrailers(dv, off, len));
  }

  onTrailers(ev: GrpcTrailersEvent): void {
    this.seen.add(ev.hdr.pid);
    const span = this.ctx.find(ev.hdr.pid, 'stream', ServerSpanContext.streamKey(ev.conn, ev.streamId));
    if (!span || !span.open) {
      this.counts.unmatchedTrailers++; // trailers of a stream that is no gRPC call of ours
      return;
    }
    this.counts.calls++;
    let code = ev.grpcStatus;
    if (code < 0) {
      this.counts.noStatus++;
      code = UNKNOWN;
    }
    span.finish(ev.hdr.tsNs, (rec) => this.protocol.end(rec, code, ev.grpcMessage));
  }

  forgetProcess(pid: number): number {
    this.seen.delete(pid);
    return 0;
  }

  expire(): void { /* h2-server owns the open streams */ }

  pids(): number[] {
    return [...this.seen];
  }

  stats(): Record<string, number> {
    return { ...this.counts };
  }
}
