// Spawn events -> lineage keys in the shared context: the child task
// inherits the server span its parent task is handling (or inherited), while
// that span is open. No spans of its own.
import type { SpanBuilder } from '../library';
import { DecodeError, readU64Number } from '../../events/header';
import type { ServerSpanContext } from '../../spans/context';
import { TOKIO_SPAWN_LAYOUTS } from './layouts';

const S = TOKIO_SPAWN_LAYOUTS.structs.tokio_spawn_event;

export interface TokioSpawnStats {
  spawns: number;
  /** The parent task was handling (or had inherited) an open server span: the child inherits it. */
  inherited: number;
}

export class TokioSpawnSpans implements SpanBuilder {
  readonly counts: TokioSpawnStats = { spawns: 0, inherited: 0 };

  constructor(private readonly ctx: ServerSpanContext) {}

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind !== TOKIO_SPAWN_LAYOUTS.kinds.TOKIO_SPAWN) throw new DecodeError(`tokio-spawn: unknown event kind ${kind}`);
    if (len < S.$size) throw new DecodeError(`tokio-spawn: record of ${len} bytes, expected ${S.$size}`);
    const pid = dv.getUint32(off + 4, true);
    this.counts.spawns++;
    if (this.ctx.inheritTask(pid, readU64Number(dv, off + S.parent_task_id), readU64Number(dv, off + S.child_task_id))) this.counts.inherited++;
  }

  forgetProcess(): number { return 0; }
  expire(): void { /* the context closes lineage keys with their span */ }
  pids(): number[] { return []; }
  stats(): Record<string, number> { return { ...this.counts }; }
}
