// Ring records -> span records: routes each record, by its kind, to the span
// builder of the library that declared that kind. Generic: it knows the
// libraries only through the list it is given.
import { DEFAULT_SPAN_SETTINGS, type Library, type SpanBuilder, type SpanOutput, type SpanSettings } from '../libs/library';
import { recordKind, DecodeError, EVENT_HEADER_SIZE } from '../events/header';
import { ServerSpanContext } from './context';

export class SpanAssembler {
  private readonly byKind: (SpanBuilder | undefined)[] = [];
  readonly builders = new Map<string, SpanBuilder>();
  /** Shared by every library's builder: the server spans being handled now. */
  readonly context: ServerSpanContext;

  constructor(libraries: Library[], out: SpanOutput, settings: SpanSettings = DEFAULT_SPAN_SETTINGS) {
    this.context = new ServerSpanContext(out);
    for (const lib of libraries) {
      if (!lib.createSpans) continue;
      const b = lib.createSpans(out, this.context, settings);
      this.builders.set(lib.name, b);
      for (const kind of Object.values(lib.layouts.kinds)) {
        if (this.byKind[kind]) throw new Error(`event kind ${kind} is declared by two libraries`);
        this.byKind[kind] = b;
      }
    }
  }

  /** One ring record; throws DecodeError for a record no library can read. */
  handle(dv: DataView, off: number, len: number): void {
    if (len < EVENT_HEADER_SIZE) throw new DecodeError(`record of ${len} bytes is shorter than the header`);
    const kind = recordKind(dv, off);
    const b = this.byKind[kind];
    if (!b) throw new DecodeError(`unknown event kind ${kind}`);
    b.handle(kind, dv, off, len);
  }

  /** A process exited: drop its unfinished spans; returns how many. */
  forgetProcess(pid: number): number {
    let n = 0;
    for (const b of this.builders.values()) n += b.forgetProcess(pid);
    this.context.forgetProcess(pid);
    return n;
  }

  /** Drops state that waited too long (responses that never came). */
  expire(nowMono: bigint): void {
    for (const b of this.builders.values()) b.expire(nowMono);
  }

  /** Pids that have state in any builder. */
  pids(): number[] {
    const s = new Set<number>();
    for (const b of this.builders.values()) for (const p of b.pids()) s.add(p);
    return [...s];
  }

  /** Counters per library, for the stats file. */
  stats(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [name, b] of this.builders) out[name] = b.stats();
    out.context = this.context.stats();
    return out;
  }
}
