// tonic call events -> client calls filed in the shared context (rule 6),
// under `grpc <path>`, with the server span open in the caller's task. The
// span is made by h2-client when the call's stream goes out; calls that
// never reach the wire (connection refused, cancelled before sending) are
// dropped after the client timeout and counted by the context.
import type { SpanBuilder } from '../library';
import type { ServerSpanContext } from '../../spans/context';
import { DecodeError, bytesOf, readU64Number } from '../../events/header';
import { TONIC_CLIENT_LAYOUTS } from './layouts';

const { kinds: KIND, constants: C, structs: S } = TONIC_CLIENT_LAYOUTS;
const E = S.tonic_call_event;

export class TonicClientSpans implements SpanBuilder {
  readonly counts = { calls: 0, callsWithParent: 0, pathsTooLong: 0 };
  private seen = new Set<number>();

  constructor(private readonly ctx: ServerSpanContext) {}

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind !== KIND.TONIC_CLIENT_CALL) throw new DecodeError(`tonic-client: unknown event kind ${kind}`);
    if (len < E.$size) throw new DecodeError(`tonic call record too short (${len})`);
    const pid = dv.getUint32(off + 4, true);
    this.seen.add(pid);
    this.counts.calls++;
    const n = dv.getUint16(off + E.path_len, true);
    if (n > C.TONIC_PATH_CAP) { this.counts.pathsTooLong++; return; } // h2-client's :path capture would not equal it either
    const path = bytesOf(dv).toString('latin1', off + E.path, off + E.path + n);
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    const c = this.ctx.fileClientCall(pid, `grpc ${path}`, {
      task: readU64Number(dv, off + E.task_id), tid: dv.getUint32(off + 8, true), mono: tsHi * 4294967296 + tsLo, tsLo, tsHi,
    });
    if (c.parent) this.counts.callsWithParent++;
  }

  forgetProcess(pid: number): number {
    this.seen.delete(pid);
    return 0;
  }

  expire(): void { /* the context expires waiting calls (h2-client asks it) */ }

  pids(): number[] {
    return [...this.seen];
  }

  stats(): Record<string, number> {
    return { ...this.counts };
  }
}
