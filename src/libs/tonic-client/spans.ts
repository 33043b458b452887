// tonic call events -> client calls filed in the shared context (rule 6),
// under `grpc <path>`, with the server span open in the caller's task. The
// span is made by h2-client when the call's stream goes out. A call whose
// transport error is tonic's ConnectError (server down: no connection, so no
// stream) is ended here, UNAVAILABLE, from the Status::from_error event in
// its task; other calls that never reach the wire (cancelled before sending)
// are dropped after the client timeout and counted by the context.
import type { SpanBuilder, SpanOutput, SpanSettings } from '../library';
import type { ServerSpanContext } from '../../spans/context';
import { DecodeError, bytesOf, readU64Number } from '../../events/header';
import { acquireRecord, releaseRecord, attrKey, SpanKind, StatusCode } from '../../spans/record';
import { GRPC_CODES, SCOPE as GRPC_SCOPE } from '../tonic-server/grpc';
import { TONIC_CLIENT_LAYOUTS } from './layouts';

const { kinds: KIND, constants: C, structs: S } = TONIC_CLIENT_LAYOUTS;
const E = S.tonic_call_event;
const ER = S.tonic_error_event;

const K = {
  rpcSystem: attrKey('rpc.system.name'),
  rpcMethod: attrKey('rpc.method'),
  rpcStatus: attrKey('rpc.status_code'),
  errorType: attrKey('error.type'),
  oldSystem: attrKey('rpc.system'),
  oldService: attrKey('rpc.service'),
  oldStatus: attrKey('rpc.grpc.status_code'),
};

export class TonicClientSpans implements SpanBuilder {
  readonly counts = {
    calls: 0, callsWithParent: 0, pathsTooLong: 0,
    /** Status::from_error hits: all / told UNAVAILABLE (server down) and ended as a span / not told (no span) / no call of that task waiting / that task's waiting calls not interchangeable. */
    transportErrors: 0, unavailableSpans: 0, transportErrorsOther: 0, transportErrorsUnmatched: 0, transportErrorsAmbiguous: 0,
  };
  private seen = new Set<number>();

  constructor(private readonly ctx: ServerSpanContext, private readonly out?: SpanOutput, private readonly settings?: SpanSettings) {}

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind === KIND.TONIC_CLIENT_ERROR) {
      if (len < ER.$size) throw new DecodeError(`tonic error record too short (${len})`);
      this.transportError(dv, off);
      return;
    }
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

  /**
   * A call's transport error in its task. Told UNAVAILABLE only for tonic's
   * ConnectError (the BPF program says why that is exact): no connection,
   * so the call's stream never went out and its call is still waiting in
   * the context. The span has what the call event gave: the method (path),
   * parent and start; the server's address is not known at this layer.
   */
  private transportError(dv: DataView, off: number): void {
    const pid = dv.getUint32(off + 4, true);
    this.counts.transportErrors++;
    const code = dv.getInt32(off + ER.code, true);
    if (code !== 14) { this.counts.transportErrorsOther++; return; }
    const tsLo = dv.getUint32(off + 16, true), tsHi = dv.getUint32(off + 20, true);
    const m = this.ctx.takeTaskCall(pid, readU64Number(dv, off + ER.task_id), tsHi * 4294967296 + tsLo, 'grpc ');
    if (m === 'ambiguous') { this.counts.transportErrorsAmbiguous++; return; }
    if (!m || !m.key.startsWith('grpc ') || !this.out) { this.counts.transportErrorsUnmatched++; return; }
    this.counts.unavailableSpans++;
    const path = m.key.slice(5);
    const method = path.length > 1 && path[0] === '/' ? path.slice(1) : '';
    const name = GRPC_CODES[code];
    const rec = acquireRecord();
    try {
      rec.kind = SpanKind.CLIENT;
      rec.pid = pid;
      rec.scope = GRPC_SCOPE;
      rec.name = method || 'grpc';
      if (m.call.parent) {
        rec.t0 = m.call.t0; rec.t1 = m.call.t1; rec.t2 = m.call.t2; rec.t3 = m.call.t3; rec.p0 = m.call.s0; rec.p1 = m.call.s1; rec.flags = m.call.flags;
      } else {
        rec.newTraceId();
        rec.flags = 1;
        this.ctx.countUnparented();
      }
      rec.newSpanId();
      rec.addString(K.rpcSystem, 'grpc');
      rec.addString(K.rpcMethod, method || '_OTHER');
      rec.addString(K.rpcStatus, name);
      rec.addString(K.errorType, name);
      if (this.settings?.rpcDup) {
        rec.addString(K.oldSystem, 'grpc');
        const slash = method.lastIndexOf('/');
        if (slash > 0) rec.addString(K.oldService, method.slice(0, slash));
        rec.addInt(K.oldStatus, code);
      }
      rec.statusCode = StatusCode.ERROR;
      const clock = this.out.clock;
      rec.setStartMono(m.call.tsLo, m.call.tsHi, clock);
      rec.setEndMono(tsLo, tsHi, clock);
      this.out.emit(rec);
    } finally {
      releaseRecord(rec);
    }
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
