// The server spans being handled right now, shared by every library's span
// builder: a library that owns a server span (hyper's HTTP/1 server, h2's
// streams) files it here under the keys it knows; a library that enriches
// someone else's span (axum's route, tonic's gRPC status, rustls' TLS) finds
// it here. The generic spans stage owns this service; libraries only meet
// through it, never through each other.
//
// Rules
//  1. A span is found by a key, never by guess. Keys are (pid, kind, value):
//       task     tokio task id (read from the thread's TLS by every probe,
//                bpf/include/common.h current_task_id): the task that handles
//                the request. hyper's HTTP/1 server handles a connection's
//                requests one at a time in the connection's task, so the task
//                names the request; an h2 stream's task is filed when its
//                response head goes out (the first event in that task).
//       request  address of the request's header storage (the heap buffer of
//                its HeaderMap entries): it moves with the request from the
//                h2 decoder to the handler (the request is moved, its buffer
//                is not), so a probe holding the request finds its span.
//       stream   (connection address, HTTP/2 stream id).
//       lineage  tokio task id of a task spawned (directly or through other
//                spawns) while its ancestor handled the span: filed by the
//                tokio-spawn library from spawn events. Only client parenting
//                looks it up (parentFor), never the server-side enrichers,
//                which name their request by its own task.
//       thread   kernel thread id of a thread made (std::thread::spawn, any
//                pthread_create) by a task, or by a thread, that handled or
//                inherited the span then: filed from the agent's
//                sched_process_fork events (bpf/process.bpf.c). Only client
//                parenting looks it up, and only for events outside any task
//                (task 0): tokio's own threads (blocking pool, a worker made
//                by block_in_place) can be made inside a handler too, but
//                they run everything in tasks, whose keys win.
//     One key names at most one span. Filing a key that already names
//     another span means the old filing is stale (an allocation reused, a
//     connection task on its next request): the old span loses that key
//     (counted as `replacedKeys`), never the new one.
//  2. A lookup that finds nothing returns undefined; the caller counts it and
//     drops what it wanted to add. A wrong attribution is worse than none.
//  3. The owner ends its span and then closes it here; after that no key
//     finds it. Owners bound and expire their own pending spans.
//  4. TLS (url.scheme): a library that sees a TLS handshake marks the task it
//     ran in. A request handled in a marked task is https. A request in an
//     unmarked task is http if the process never did a TLS handshake, or if
//     it has shown that its handshakes run in the task that serves the
//     connection (a marked task served a request); otherwise the scheme is
//     unknown (`schemeUnknown`) and left out rather than guessed.
//  5. Protocols carried over HTTP (gRPC) are claimed by the library that
//     knows them (registerProtocol): the owner of the HTTP span asks, at
//     request start, whether an active protocol claims the request, and lets
//     it shape the span and, when it says so, end it.
//
//  6. Client calls: a library that sees a call where the application makes
//     it (the caller's task: tonic's GrpcConfig::prepare_request) files it
//     under a request key (e.g. the :path it will carry) with the server span
//     open in that task; the library that sees the request on the wire (h2's
//     client, in hyper's dispatch task) takes the oldest call filed under the
//     same key before it. When calls under that key from different tasks
//     were waiting, FIFO order between tasks is not known: the take says
//     `ambiguous` and the parent is not used. A new call from a task drops
//     that task's waiting calls under the key with another parent (that
//     server span is over: the calls never reached the wire). Keys: `http
//     <authority> <origin-form target>` (reqwest's execute_request, taken by
//     hyper's HTTP/1 client or by h2's client, whichever sends it), `grpc
//     <path>` (tonic's prepare_request, taken by h2's client).
//  7. Parenting (issue 8): a client call made in task T gets as parent the
//     span filed under `task` T, else under `lineage` T (parentFor). A span
//     left without a parent is counted (`unparented`): a wrong parent is
//     worse than none, so nothing is guessed. Spawned tasks inherit only while
//     the span is open (close() drops their keys with the span's own).
//     A call made outside any task on thread X gets the span filed under
//     `thread` X, also only while it is open: a thread that outlives the
//     handler that made it (a pool started by the first request) gives the
//     calls it makes afterwards no parent.
//
// New key kinds go in KeyKind.
import type { SpanRecord } from './record';

export type KeyKind = 'task' | 'request' | 'stream' | 'lineage' | 'thread';

/** What an enricher can do with a server span it found. */
export interface ActiveServerSpan {
  readonly pid: number;
  /** The span being built; attributes added here are exported with it. Not to be kept. */
  readonly rec: SpanRecord;
  /** The route template that matched (axum), applied by the owner when the span ends. */
  route: string | undefined;
  /** Whether the span is still open (the owner has not ended it). */
  readonly open: boolean;
  /** Ends the span now, at `tsNs` (CLOCK_MONOTONIC), after `shape` ran on its record. For protocols that end spans themselves. */
  finish(tsNs: bigint, shape?: (rec: SpanRecord) => void): void;
}

/** Request facts an owner offers a protocol: byte ranges [start, end) of `src` (start < 0: absent). */
export interface HttpRequestFacts {
  src: Uint8Array;
  pathStart: number; pathEnd: number;
  authorityStart: number; authorityEnd: number;
  contentTypeStart: number; contentTypeEnd: number;
}

/** The response head as the owner saw it. */
export interface HttpResponseFacts {
  status: number;
  /** The head ended the stream (e.g. a gRPC trailers-only response). */
  endOfStream: boolean;
  /** grpc-status / grpc-message sent in the head (-1 / undefined: absent). */
  grpcStatus: number;
  grpcMessage: string | undefined;
}

/** A protocol carried over HTTP requests (gRPC), provided by its library. */
export interface ServerProtocol {
  /** Claims only in processes where this library is active. */
  readonly library: string;
  claims(req: HttpRequestFacts): boolean;
  /** Names the span and adds the protocol's attributes at request start. */
  start(rec: SpanRecord, req: HttpRequestFacts): void;
  /**
   * The response head went out. Return true to have the owner end the span
   * now (after this shaped it); false when the protocol ends it later with
   * its own event (ActiveServerSpan.finish).
   */
  responseHead(rec: SpanRecord, res: HttpResponseFacts): boolean;
  /** The request was reset before the protocol ended it: shape the failed span. */
  reset(rec: SpanRecord, errorType: string): void;
}

export interface ContextEnv {
  /** Whether a library's probes are attached in the process (the agent knows the plan). */
  libraryActive(pid: number, library: string): boolean;
}

export interface ContextStats {
  /** Client calls dropped unmatched: stale (rule 6), over the bound, or past the client timeout. */
  clientCallsDropped: number;
  replacedKeys: number;
  /** Spawned tasks that inherited an open span from their parent task. */
  inheritedTasks: number;
  /** CLIENT spans left as roots (no parent could be told for sure). */
  unparented: number;
  /** CLIENT spans given a parent found through a lineage key (a spawned task). */
  parentedByLineage: number;
  /** Threads made by a traced process (sched_process_fork events). */
  threadSpawns: number;
  /** Of them, threads that inherited an open span from the task or thread that made them. */
  inheritedThreads: number;
  /** Client calls outside any task given a parent through a thread key. */
  parentedByThread: number;
  schemeUnknown: number;
  tlsHandshakes: number;
}

/** A call as the application made it (rule 6): when, in which task, under which server span. */
export interface ClientCall {
  task: number;
  /** Kernel thread id of the caller: a call outside any task (task 0) is parented through it (`thread` keys). */
  tid?: number;
  /** CLOCK_MONOTONIC ns of the call, as a number and as the event's two u32 halves. */
  mono: number;
  tsLo: number;
  tsHi: number;
  /** The server span open in the caller's task then (ids copied: it may end before the call does). */
  parent: boolean;
  t0: number; t1: number; t2: number; t3: number; s0: number; s1: number; flags: number;
  /** url.full of the call as the application gave it (reqwest), and its scheme; absent when the caller's probe does not see it (tonic). */
  url?: string;
  scheme?: 'http' | 'https';
}

/** At most this many calls wait per process (oldest dropped first, counted `clientCallsDropped`). */
export const CLIENT_CALLS_MAX = 16_384;

class ProcessContext {
  /** Client calls waiting for their wire request, by request key, oldest first (rule 6). */
  readonly calls = new Map<string, ClientCall[]>();
  callCount = 0;
  readonly keys = new Map<string, Map<number | string, ActiveServerSpan>>();
  /** Tasks that did a TLS handshake, oldest first. */
  readonly tlsTasks = new Set<number>();
  tlsSeen = false;
  /** A TLS-marked task served a request: handshakes run in the serving task here. */
  tlsConfirmed = false;

  map(kind: KeyKind): Map<number | string, ActiveServerSpan> {
    let m = this.keys.get(kind);
    if (!m) this.keys.set(kind, (m = new Map()));
    return m;
  }
}

/** At most this many TLS tasks are remembered per process (oldest forgotten first). */
export const TLS_TASKS_MAX = 65_536;

export class ServerSpanContext {
  readonly counts: ContextStats = { clientCallsDropped: 0, replacedKeys: 0, inheritedTasks: 0, unparented: 0, parentedByLineage: 0, threadSpawns: 0, inheritedThreads: 0, parentedByThread: 0, schemeUnknown: 0, tlsHandshakes: 0 };
  private procs = new Map<number, ProcessContext>();
  private readonly protocols: ServerProtocol[] = [];
  /** Keys filed per span, to unfile them on close. */
  private filed = new WeakMap<ActiveServerSpan, { kind: KeyKind; value: number | string }[]>();

  constructor(private readonly env: ContextEnv) {}

  private proc(pid: number): ProcessContext {
    let p = this.procs.get(pid);
    if (!p) this.procs.set(pid, (p = new ProcessContext()));
    return p;
  }

  /** Files `span` under a key (rule 1). A value of 0 is no key and is ignored. */
  addKey(span: ActiveServerSpan, kind: KeyKind, value: number | string): void {
    if (value === 0 || value === '') return;
    const m = this.proc(span.pid).map(kind);
    const old = m.get(value);
    if (old === span) return;
    if (old) {
      this.counts.replacedKeys++;
      const ks = this.filed.get(old);
      if (ks) this.filed.set(old, ks.filter((k) => !(k.kind === kind && k.value === value)));
    }
    m.set(value, span);
    let ks = this.filed.get(span);
    if (!ks) this.filed.set(span, (ks = []));
    ks.push({ kind, value });
  }

  /** The span is done (rule 3): no key finds it any more. */
  close(span: ActiveServerSpan): void {
    const ks = this.filed.get(span);
    if (!ks) return;
    const p = this.procs.get(span.pid);
    for (const k of ks) {
      const m = p?.keys.get(k.kind);
      if (m?.get(k.value) === span) m.delete(k.value);
    }
    this.filed.delete(span);
  }

  find(pid: number, kind: KeyKind, value: number | string): ActiveServerSpan | undefined {
    if (value === 0 || value === '') return undefined;
    return this.procs.get(pid)?.keys.get(kind)?.get(value);
  }

  // ------------------------------------------------------ parenting (rule 6)

  /**
   * A task `child` was spawned by task `parent`: the child inherits the open
   * span `parent` handles (task key) or inherited (lineage key). A child with
   * nothing to inherit loses any earlier filing (ids are never reused by
   * tokio, so that is only a safeguard). Returns whether it inherited.
   */
  inheritTask(pid: number, parent: number, child: number): boolean {
    if (child === 0) return false;
    const span = parent === 0 ? undefined : (this.find(pid, 'task', parent) ?? this.find(pid, 'lineage', parent));
    if (!span || !span.open) {
      this.removeKey(pid, 'lineage', child);
      return false;
    }
    this.addKey(span, 'lineage', child);
    this.counts.inheritedTasks++;
    return true;
  }

  /**
   * Thread `child` was made by thread `parentTid` while it ran task
   * `parentTask` (0: none): the new thread inherits the open span that task
   * handles or inherited, or, outside any task, the one `parentTid` itself
   * inherited (a thread made by a thread). A thread with nothing to inherit
   * loses any earlier filing of its id (thread ids are reused). Returns
   * whether it inherited.
   */
  inheritThread(pid: number, parentTid: number, parentTask: number, child: number): boolean {
    this.counts.threadSpawns++;
    if (child === 0) return false;
    const span = parentTask !== 0
      ? (this.find(pid, 'task', parentTask) ?? this.find(pid, 'lineage', parentTask))
      : this.find(pid, 'thread', parentTid);
    if (!span || !span.open) {
      this.removeKey(pid, 'thread', child);
      return false;
    }
    this.addKey(span, 'thread', child);
    this.counts.inheritedThreads++;
    return true;
  }

  /**
   * The open span a client call made in `task` belongs to (rule 6), or
   * undefined. Outside any task (0), the span thread `tid` inherited.
   */
  parentFor(pid: number, task: number, tid = 0): ActiveServerSpan | undefined {
    if (task === 0) {
      const t = tid === 0 ? undefined : this.find(pid, 'thread', tid);
      if (t && t.open) {
        this.counts.parentedByThread++;
        return t;
      }
      return undefined;
    }
    const own = this.find(pid, 'task', task);
    if (own) return own.open ? own : undefined;
    const inherited = this.find(pid, 'lineage', task);
    if (inherited && inherited.open) {
      this.counts.parentedByLineage++;
      return inherited;
    }
    return undefined;
  }

  /** A CLIENT span goes out as a root (rule 6). */
  countUnparented(): void {
    this.counts.unparented++;
  }

  /** Drops one key's filing, whoever it names. */
  removeKey(pid: number, kind: KeyKind, value: number | string): void {
    const m = this.procs.get(pid)?.keys.get(kind);
    const old = m?.get(value);
    if (!m || !old) return;
    m.delete(value);
    const ks = this.filed.get(old);
    if (ks) this.filed.set(old, ks.filter((k) => !(k.kind === kind && k.value === value)));
  }

  /** The key value of an HTTP/2 stream. */
  static streamKey(conn: number, streamId: number): string {
    return `${conn}:${streamId}`;
  }

  // ------------------------------------------------------------- TLS (rule 4)

  markTlsTask(pid: number, task: number): void {
    this.counts.tlsHandshakes++;
    const p = this.proc(pid);
    p.tlsSeen = true;
    if (task === 0) return; // the handshake ran outside any task: nothing to mark
    p.tlsTasks.delete(task);
    p.tlsTasks.add(task);
    if (p.tlsTasks.size > TLS_TASKS_MAX) p.tlsTasks.delete(p.tlsTasks.values().next().value as number);
  }

  /** url.scheme of a request handled in `task`, or undefined when it cannot be told. */
  schemeFor(pid: number, task: number): 'http' | 'https' | undefined {
    const p = this.procs.get(pid);
    if (!p || !p.tlsSeen) return 'http';
    if (task !== 0 && p.tlsTasks.has(task)) {
      p.tlsConfirmed = true;
      return 'https';
    }
    if (p.tlsConfirmed) return 'http';
    this.counts.schemeUnknown++;
    return undefined;
  }

  // ------------------------------------------------------- protocols (rule 5)

  registerProtocol(p: ServerProtocol): void {
    this.protocols.push(p);
  }

  /** The protocol that claims this request in process `pid`, if any. */
  protocolFor(pid: number, req: HttpRequestFacts): ServerProtocol | undefined {
    for (const p of this.protocols) if (p.claims(req) && this.env.libraryActive(pid, p.library)) return p;
    return undefined;
  }

  // ---------------------------------------------------- client calls (rule 6)

  /** Files a call made in the caller's task under `key`, with the server span open in that task (if any). */
  fileClientCall(pid: number, key: string, call: Omit<ClientCall, 'parent' | 't0' | 't1' | 't2' | 't3' | 's0' | 's1' | 'flags'>): ClientCall {
    // Every field written here, in one order (one object shape): a spread
    // `{ ...call, parent: ... }` took V8's slow generic path and was 21% of
    // the CPU of a reqwest-call replay (about 4 µs per call).
    const c: ClientCall = {
      task: call.task, tid: call.tid, mono: call.mono, tsLo: call.tsLo, tsHi: call.tsHi,
      parent: false, t0: 0, t1: 0, t2: 0, t3: 0, s0: 0, s1: 0, flags: 1, url: call.url, scheme: call.scheme,
    };
    const srv = this.parentFor(pid, c.task, c.tid ?? 0);
    if (srv) {
      const r = srv.rec;
      c.parent = true;
      c.t0 = r.t0; c.t1 = r.t1; c.t2 = r.t2; c.t3 = r.t3; c.s0 = r.s0; c.s1 = r.s1; c.flags = r.flags;
    }
    const p = this.proc(pid);
    let l = p.calls.get(key);
    if (!l) p.calls.set(key, (l = []));
    else if (c.task !== 0) {
      const before = l.length;
      const kept = l.filter((o) => o.task !== c.task || (o.s0 === c.s0 && o.s1 === c.s1));
      if (kept.length !== before) {
        this.counts.clientCallsDropped += before - kept.length;
        p.callCount -= before - kept.length;
        l.length = 0;
        l.push(...kept);
      }
    }
    l.push(c);
    if (++p.callCount > CLIENT_CALLS_MAX) this.dropOldestCall(p);
    return c;
  }

  /**
   * The call filed under `key` last at or before `mono` (the wire request's
   * encode; rule 6), removed; undefined when none. The latest, not the
   * oldest: responses are read in any order, and a wire request encoded late
   * but answered first that took the oldest call left the earlier wire
   * request no call filed before it (a counted root, about one run in eight
   * of three spawned calls to one URL). Taking the latest eligible call
   * leaves the earlier ones, which every later wire request can take, so
   * each wire request finds one; and a task files its call just before it
   * encodes, so the latest is most often its own.
   */
  takeClientCall(pid: number, key: string, mono: number): { call: ClientCall; ambiguous: boolean } | undefined {
    const p = this.procs.get(pid);
    const l = p?.calls.get(key);
    if (!p || !l || l.length === 0 || l[0].mono > mono) return undefined;
    let at = 0;
    while (at + 1 < l.length && l[at + 1].mono <= mono) at++; // filed in time order
    const call = l[at];
    l.splice(at, 1);
    let ambiguous = false;
    for (let i = 0; i < l.length && l[i].mono <= mono; i++) {
      const o = l[i];
      // Which of them is this one is not known; it matters only for the parent (issue 8: tasks spawned by one handler share it).
      if (o.parent !== call.parent || o.s0 !== call.s0 || o.s1 !== call.s1 || o.t0 !== call.t0 || o.t1 !== call.t1) { ambiguous = true; break; }
    }
    if (l.length === 0) p.calls.delete(key);
    p.callCount--;
    return { call, ambiguous };
  }

  /**
   * The call a failure seen in `task` at `mono` ends (a connect error, before
   * any wire request): the oldest call that task filed before then, removed,
   * with its key. Only when every such call of the task has the same key and
   * parent (interchangeable calls); calls of that task waiting under other
   * keys or with other parents make it `ambiguous`, and nothing is taken.
   * Only calls whose key starts with `prefix` are looked at (`http ` for
   * reqwest's, `grpc ` for tonic's: one library's failure never ends the
   * other's call).
   */
  takeTaskCall(pid: number, task: number, mono: number, prefix: string): { call: ClientCall; key: string } | 'ambiguous' | undefined {
    const p = this.procs.get(pid);
    if (!p || task === 0) return undefined;
    let best: ClientCall | undefined;
    let bestKey = '';
    for (const [k, l] of p.calls) {
      if (!k.startsWith(prefix)) continue;
      for (const c of l) {
        if (c.mono > mono) break; // filed in time order
        if (c.task !== task) continue;
        if (!best) { best = c; bestKey = k; continue; }
        if (k !== bestKey || c.parent !== best.parent || c.s0 !== best.s0 || c.s1 !== best.s1 || c.t0 !== best.t0 || c.t1 !== best.t1) return 'ambiguous';
        if (c.mono < best.mono) best = c;
      }
    }
    if (!best) return undefined;
    const l = p.calls.get(bestKey)!;
    l.splice(l.indexOf(best), 1);
    if (l.length === 0) p.calls.delete(bestKey);
    p.callCount--;
    return { call: best, key: bestKey };
  }

  /**
   * Drops calls older than twice the client timeout at `nowMono` (they never
   * reached the wire); returns how many. Twice: a request that went out but
   * got no answer is ended by its owner at one timeout, and that owner still
   * looks its call up then (for the method, URL and parent).
   */
  expireClientCalls(nowMono: number, clientTimeoutNs: number): number {
    const maxAgeNs = 2 * clientTimeoutNs;
    let n = 0;
    for (const p of this.procs.values()) {
      for (const [k, l] of p.calls) {
        while (l.length && nowMono - l[0].mono >= maxAgeNs) { l.shift(); p.callCount--; n++; }
        if (l.length === 0) p.calls.delete(k);
      }
    }
    this.counts.clientCallsDropped += n;
    return n;
  }

  private dropOldestCall(p: ProcessContext): void {
    let oldK: string | undefined;
    let old = Infinity;
    for (const [k, l] of p.calls) if (l.length && l[0].mono < old) { old = l[0].mono; oldK = k; }
    if (oldK === undefined) return;
    const l = p.calls.get(oldK)!;
    l.shift();
    if (l.length === 0) p.calls.delete(oldK);
    p.callCount--;
    this.counts.clientCallsDropped++;
  }

  forgetProcess(pid: number): void {
    this.procs.delete(pid);
  }

  stats(): Record<string, number> {
    return { ...this.counts };
  }
}
