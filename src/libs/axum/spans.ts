// axum route events -> http.route on the server span being routed.
//
// The event names the route by its RouteId in a router's route_id_to_path
// map; the template strings are read from the process (the map is built once
// with the router and never changes), once per map, and cached. The span is
// found in the shared context by the request's header storage (an h2 stream:
// axum runs in the stream's task, the request keeps the buffer h2 decoded its
// headers into), else by the task (an HTTP/1 request: axum runs in the
// connection's task, which handles one request at a time).
//
// Nesting: through nest_service each level calls the probe; a level whose
// template ends in axum's tail capture is a prefix for the next one (axum
// joins them the same way), the last level's template completes the route.
// Routers merged with Router::nest are flattened by axum when built, so they
// give one full template directly.
import type { SpanBuilder } from '../library';
import { DecodeError } from '../../events/header';
import type { ActiveServerSpan, ServerSpanContext } from '../../spans/context';
import { ProcessMemory } from '../../targets/memory';
import { decodeRoute, type AxumRouteEvent } from './decode';
import { AXUM_LAYOUTS } from './layouts';

/** axum's nest tail capture: 0.8 "/{*__private__axum_nest_tail_param}", 0.7 "/*__private__axum_nest_tail_param". */
const NEST_TAIL = /\/\{?\*__private__axum_nest_tail_param\}?$/;

export interface AxumStats {
  routes: number;
  /** No server span found for the routed request (counted, not guessed). */
  unattributed: number;
  /** The route table could not be read, or lacked the route id. */
  unreadable: number;
  tablesRead: number;
}

export class AxumSpans implements SpanBuilder {
  readonly counts: AxumStats = { routes: 0, unattributed: 0, unreadable: 0, tablesRead: 0 };
  /** pid -> map address -> route id -> template */
  private tables = new Map<number, Map<number, Map<number, string>>>();
  /** Prefix of a span routed through a nest_service level. */
  private prefixes = new WeakMap<ActiveServerSpan, string>();

  constructor(private readonly ctx: ServerSpanContext, private readonly mem = new ProcessMemory()) {}

  handle(kind: number, dv: DataView, off: number, len: number): void {
    if (kind !== AXUM_LAYOUTS.kinds.AXUM_ROUTE) throw new DecodeError(`axum: unknown event kind ${kind}`);
    this.onRoute(decodeRoute(dv, off, len));
  }

  onRoute(ev: AxumRouteEvent): void {
    const pid = ev.hdr.pid;
    const template = this.template(ev);
    if (template === undefined) {
      this.counts.unreadable++;
      return;
    }
    const span = (ev.requestId >= 0x10000 ? this.ctx.find(pid, 'request', ev.requestId) : undefined) ?? this.ctx.find(pid, 'task', ev.taskId);
    if (!span || !span.open) {
      this.counts.unattributed++;
      return;
    }
    const prefix = this.prefixes.get(span) ?? '';
    if (NEST_TAIL.test(template)) {
      this.prefixes.set(span, prefix + template.replace(NEST_TAIL, ''));
      return;
    }
    span.route = prefix + template;
    this.counts.routes++;
  }

  /** The template of ev's route id, from the cache or the process's route table. */
  private template(ev: AxumRouteEvent): string | undefined {
    const pid = ev.hdr.pid;
    let maps = this.tables.get(pid);
    if (!maps) this.tables.set(pid, (maps = new Map()));
    let table = maps.get(ev.map);
    if (!table || !table.has(ev.routeId)) {
      table = this.readTable(ev);
      if (!table) return undefined;
      maps.set(ev.map, table);
    }
    return table.get(ev.routeId);
  }

  private readTable(ev: AxumRouteEvent): Map<number, string> | undefined {
    const pid = ev.hdr.pid;
    const buckets = ev.bucketMask + 1;
    const sz = ev.bucketSize;
    if (sz < 16 || sz > 64 || buckets > 65536 || ev.bucketId + 4 > sz || ev.bucketPtr + 8 > sz || ev.bucketLen + 8 > sz) return undefined;
    const ctrl = this.mem.read(pid, ev.ctrl, buckets);
    const data = this.mem.read(pid, ev.ctrl - buckets * sz, buckets * sz);
    if (!ctrl || !data) return undefined;
    this.counts.tablesRead++;
    const out = new Map<number, string>();
    for (let i = 0; i < buckets; i++) {
      if (ctrl[i] & 0x80) continue; // EMPTY or DELETED
      const b = (buckets - 1 - i) * sz; // bucket i is the i-th from the end, below ctrl
      const id = data.readUInt32LE(b + ev.bucketId);
      const ptr = Number(data.readBigUInt64LE(b + ev.bucketPtr));
      const len = Number(data.readBigUInt64LE(b + ev.bucketLen));
      if (len === 0 || len > 4096) return undefined;
      const s = this.mem.read(pid, ptr + ev.arcData, len);
      if (!s) return undefined;
      const t = s.toString('utf8');
      if (!t.startsWith('/')) return undefined; // not a route template: the layout is not what we think
      out.set(id, t);
    }
    if (out.size !== ev.items) return undefined;
    return out;
  }

  forgetProcess(pid: number): number {
    this.tables.delete(pid);
    this.mem.forget(pid);
    return 0;
  }

  expire(): void { /* nothing waits here */ }

  pids(): number[] {
    return [...this.tables.keys()];
  }

  stats(): Record<string, number> {
    return { ...this.counts };
  }
}
