// Loads the probe modules' BPF objects, shares one ring buffer and one counter
// table between them, and attaches programs to offsets in a binary.
//
// Attach uses uprobe_multi links (kernel >= 6.6): one link, one fd, for any
// number of offsets, and detaching costs milliseconds. Per-offset perf-event
// uprobes cost ~0.4 ms to attach and ~100 ms each to detach on our VMs, so
// they are only the fallback for older kernels (or OTEL_RUST_AGENT_ATTACH=perf).
// Debian's libbpf 1.1 has no uprobe_multi API; the link is created with the
// raw bpf(BPF_LINK_CREATE) syscall.
import * as fs from 'node:fs';
import koffi from 'koffi';
import { lib, c, errno, captureLibbpfLog, libbpfLog, UprobeOpts, withSignalsBlocked,
  SYS_bpf, BPF_LINK_CREATE, BPF_TRACE_UPROBE_MULTI, BPF_PROG_TYPE_KPROBE } from './libbpf';
import { RingBufferReader } from './ringbuf';
import { UserError, EXIT } from '../util/errors';
import { log } from '../util/log';

export type AttachMode = 'multi' | 'perf';

export interface ProbeCounters {
  hits: bigint; events: bigint; drops: bigint; badLayout: bigint; noEntry: bigint;
}

export interface AttachRequest {
  program: string;
  /** Path of the ELF file holding the offsets (the kernel keys uprobes by inode). */
  binaryPath: string;
  /** File offsets (not virtual addresses). */
  fileOffsets: number[];
  cookies: bigint[];
  /** Only this process; 0 = every process mapping the file, now and later. */
  pid: number;
}

export interface Link {
  readonly mode: AttachMode;
  readonly count: number;
  detach(): void;
}

import { COMMON_LAYOUTS } from '../events/header';

const PROBE_STATS_SIZE = COMMON_LAYOUTS.structs.probe_stats.$size;
const CONFIG_SIZE = COMMON_LAYOUTS.structs.probe_config.$size;
const BINCTX = COMMON_LAYOUTS.structs.binary_context;

/** Maps every object shares: the first object creates them, the others reuse their fds. */
/** Loads of one object tried at most when the verifier is interrupted (EAGAIN). */
const LOAD_ATTEMPTS = 5;
const SHARED_MAPS = ['events', 'probe_stats', 'probe_configs', 'binary_contexts'] as const;
type SharedMap = (typeof SHARED_MAPS)[number];
/** Maps shared by the objects that declare them (src/propagation/context.h): one map for all. */
const OPTIONAL_SHARED_MAPS = ['prop_server_ctx', 'prop_span_ctx', 'prop_span_state', 'prop_state_scratch', 'prop_calls', 'prop_rq_open', 'prop_outgoing', 'prop_h2_out', 'prop_links', 'prop_link_stats', 'otel_sdk_traces'];

/** What a binary's probes may read about it (bpf/include/events.h, struct binary_context). */
export interface BinaryContextValue {
  /** tokio's current task id at fs_base + this offset; undefined: not known for this binary. */
  taskIdTlsOffset?: number;
  /** The OpenTelemetry API's current context (src/libs/otel-sdk/context.ts); undefined: not located. */
  otelCx?: OtelCxLocation;
  /** OTEP 4947: the otel_thread_ctx_v1 TLS slot at fs_base + this (src/ctx/thread-ctx-slot.ts); undefined: none. */
  threadCtxOff?: number;
}

/** Where the application's OpenTelemetry current span is (struct binary_context otel_*). */
export interface OtelCxLocation {
  /** fs_base + these: the storage's state byte, the RefCell's borrow flag, the active Context's span pointer. */
  stateOff: number;
  borrowOff: number;
  spanPtrOff: number;
  /** The state byte's value for a live storage. */
  alive: number;
  /** ArcInner<SynchronizedSpan> + these: TraceId, SpanId. */
  traceOff: number;
  spanIdOff: number;
}

let uprobeMultiProbe: boolean | undefined;

/**
 * Whether the kernel has uprobe_multi links, asked of the kernel itself (a
 * version number misjudges backports): load an empty program with the
 * uprobe_multi attach type and link it to "/". A kernel that supports the link
 * rejects "/" with EBADF (not a regular file); one that does not fails before.
 */
export function kernelHasUprobeMulti(): boolean {
  if (uprobeMultiProbe !== undefined) return uprobeMultiProbe;
  const insns = Buffer.from('b700000000000000' + '9500000000000000', 'hex'); // r0 = 0; exit
  const license = Buffer.from('GPL\0');
  const load = Buffer.alloc(128);
  load.writeUInt32LE(2 /* BPF_PROG_TYPE_KPROBE */, 0);
  load.writeUInt32LE(2, 4);
  load.writeBigUInt64LE(koffi.address(insns) as bigint, 8);
  load.writeBigUInt64LE(koffi.address(license) as bigint, 16);
  load.writeUInt32LE(BPF_TRACE_UPROBE_MULTI, 68); // expected_attach_type
  const progFd = Number(c.syscall_bpf(SYS_bpf, 5 /* BPF_PROG_LOAD */, load, load.length));
  if (progFd < 0) {
    // Refused (capabilities, or a seccomp filter) says nothing about the kernel.
    const e = errno();
    if (e === 1 /* EPERM */ || e === 13 /* EACCES */)
      throw new UserError('not permitted to load eBPF programs: run as root (CAP_BPF and CAP_PERFMON are needed; CAP_SYS_ADMIN for perf-event uprobes)', EXIT.PRIVILEGE);
    return (uprobeMultiProbe = false);
  }
  try {
    const path = Buffer.from('/\0');
    const offsets = new BigUint64Array([0n]);
    const attr = Buffer.alloc(64);
    attr.writeUInt32LE(progFd, 0);
    attr.writeUInt32LE(BPF_TRACE_UPROBE_MULTI, 8);
    attr.writeBigUInt64LE(koffi.address(path) as bigint, 16);
    attr.writeBigUInt64LE(koffi.address(offsets) as bigint, 24);
    attr.writeUInt32LE(1, 48);
    const fd = Number(c.syscall_bpf(SYS_bpf, BPF_LINK_CREATE, attr, attr.length));
    const e = errno();
    if (fd >= 0) { c.close(fd); return (uprobeMultiProbe = true); }
    return (uprobeMultiProbe = e === 9 /* EBADF */);
  } finally {
    c.close(progFd);
  }
}

export function chooseAttachMode(): AttachMode {
  const forced = process.env.OTEL_RUST_AGENT_ATTACH;
  if (forced === 'perf' || forced === 'multi') return forced;
  return kernelHasUprobeMulti() ? 'multi' : 'perf';
}

interface LoadedObject { path: string; obj: unknown; programs: Map<string, unknown> }

export class BpfRuntime {
  readonly mode: AttachMode;
  private objects: LoadedObject[] = [];
  private fds = new Map<SharedMap, number>();
  private optionalFds = new Map<string, number>();
  private ncpus: number;
  ring!: RingBufferReader;
  private links = new Set<Link>();
  /** bpf/process.bpf.c: the pids whose execs are reported, and the tracepoint's link. */
  private tracedPidsFd = -1;
  private processLink: unknown = null;
  /** bpf/process.bpf.c: pid -> binary slot of the processes whose new threads are reported, and that tracepoint's link. */
  private threadLinkPidsFd = -1;
  private forkLink: unknown = null;

  constructor(private readonly objectPaths: string[], private readonly ringSize: number, mode?: AttachMode) {
    this.mode = mode ?? chooseAttachMode();
    this.ncpus = lib.num_possible_cpus();
    if ((ringSize & (ringSize - 1)) !== 0 || ringSize < 4096) throw new Error(`ring size ${ringSize} must be a power of two >= 4096`);
  }

  load(): void {
    captureLibbpfLog();
    for (const path of this.objectPaths) this.loadObject(path);
    this.ring = new RingBufferReader(this.fds.get('events')!, this.ringSize);
  }

  /**
   * An object whose programs are not uprobes (src/propagation: sock_ops,
   * sk_msg), loaded after load(): its failure is returned, not thrown, so a
   * kernel that refuses those program types still traces.
   */
  loadExtra(path: string): { ok: true } | { ok: false; why: string } {
    try {
      this.loadObject(path);
      return { ok: true };
    } catch (e) {
      return { ok: false, why: (e as Error).message };
    }
  }

  /**
   * The verifier gives up with EAGAIN when a signal is pending (a profiler's
   * SIGPROF, a signal a user sends during start-up). Signals are blocked
   * during the load (withSignalsBlocked); should one still get through
   * (blocking refused), a failed object, which cannot be loaded again, is
   * opened afresh, a few times, with a short pause.
   */
  private loadObject(path: string): void {
    for (let attempt = 1; ; attempt++) {
      const again = this.loadObjectOnce(path, attempt < LOAD_ATTEMPTS);
      if (!again) return;
      log.debug(`loading ${path}: the verifier was interrupted (EAGAIN), attempt ${attempt + 1} of ${LOAD_ATTEMPTS}`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 * attempt);
    }
  }

  /** Loads one object; true when it should be tried again (EAGAIN, `mayRetry`). */
  private loadObjectOnce(path: string, mayRetry: boolean): boolean {
    {
      if (!fs.existsSync(path)) throw new UserError(`BPF object ${path} is missing: run make build`, EXIT.FAILURE);
      const obj = lib.open_file(path, null);
      if (!obj) throw new UserError(`cannot open BPF object ${path}: errno ${errno()}`, EXIT.FAILURE);
      const programs = new Map<string, unknown>();
      const next = nextProgram;
      for (let p = next(obj, null); p; p = next(obj, p)) {
        const name = programName(p);
        programs.set(name, p);
        // Only uprobes become uprobe_multi links (not the process tracepoint).
        if (this.mode === 'multi' && lib.program_type(p) === BPF_PROG_TYPE_KPROBE) lib.set_expected_attach_type(p, BPF_TRACE_UPROBE_MULTI);
      }
      // One ring buffer, one counter table, one table of probe configs and one
      // of binary facts for all objects: the first object creates them, the
      // others reuse their fds.
      const maps = new Map<SharedMap, unknown>();
      for (const name of SHARED_MAPS) {
        const m = lib.find_map(obj, name);
        if (!m) throw new Error(`${path}: missing shared map ${name} (include common.h)`);
        maps.set(name, m);
      }
      const first = this.fds.size === 0;
      if (first) {
        lib.map_set_max_entries(maps.get('events'), this.ringSize);
      } else {
        for (const name of SHARED_MAPS) check(lib.map_reuse_fd(maps.get(name), this.fds.get(name)!), `reuse ${name}`);
      }
      const created: [string, unknown][] = [];
      for (const name of OPTIONAL_SHARED_MAPS) {
        const m = lib.find_map(obj, name);
        if (!m) continue;
        const fd = this.optionalFds.get(name);
        if (fd !== undefined) check(lib.map_reuse_fd(m, fd), `reuse ${name}`);
        else created.push([name, m]);
      }
      const rc = withSignalsBlocked(() => lib.object_load(obj) as number);
      if (rc < 0) {
        const e = -rc;
        lib.object_close(obj);
        if (e === 11 /* EAGAIN */ && mayRetry) return true;
        if (e === 1 /* EPERM */ || e === 13 /* EACCES */)
          throw new UserError('not permitted to load eBPF programs: run as root (CAP_BPF and CAP_PERFMON are needed; CAP_SYS_ADMIN for perf-event uprobes)', EXIT.PRIVILEGE);
        const tail = libbpfLog.slice(-8).join(' | ');
        throw new UserError(`loading ${path} failed (errno ${e}): ${tail}`, EXIT.KERNEL);
      }
      if (first) for (const name of SHARED_MAPS) this.fds.set(name, lib.map_fd(maps.get(name)));
      const traced = lib.find_map(obj, 'traced_pids');
      if (traced) this.tracedPidsFd = lib.map_fd(traced);
      const threadLink = lib.find_map(obj, 'thread_link_pids');
      if (threadLink) this.threadLinkPidsFd = lib.map_fd(threadLink);
      for (const [name, m] of created) this.optionalFds.set(name, lib.map_fd(m));
      this.objects.push({ path, obj, programs });
    }
    return false;
  }

  /** The fd of a program of a loaded object (for attach types other than uprobes). */
  programFd(name: string): number {
    return lib.program_fd(this.program(name));
  }

  /** The fd of a map of the loaded object that holds `program`. */
  mapFdOf(program: string, map: string): number {
    for (const o of this.objects) {
      if (!o.programs.has(program)) continue;
      const m = lib.find_map(o.obj, map);
      if (m) return lib.map_fd(m);
    }
    throw new Error(`no map ${map} beside program ${program}`);
  }

  /** Writes probe config `index` (1..MAX_PROBE_CONFIGS-1): the values its program reads. */
  setProbeConfig(index: number, values: readonly number[]): void {
    const { PROBE_CONFIG_WORDS, MAX_PROBE_CONFIGS } = COMMON_LAYOUTS.constants;
    if (index <= 0 || index >= MAX_PROBE_CONFIGS) throw new Error(`probe config index ${index} out of range`);
    if (values.length > PROBE_CONFIG_WORDS) throw new Error(`probe config has ${values.length} values, at most ${PROBE_CONFIG_WORDS} fit`);
    const val = Buffer.alloc(CONFIG_SIZE);
    values.forEach((v, i) => val.writeInt32LE(v, i * 4));
    this.update('probe_configs', index, val);
  }

  /** Writes the facts of binary slot `slot` (0..MAX_BINARIES-1). */
  setBinaryContext(slot: number, ctx: BinaryContextValue): void {
    const val = Buffer.alloc(BINCTX.$size);
    if (ctx.taskIdTlsOffset !== undefined) {
      val.writeBigInt64LE(BigInt(ctx.taskIdTlsOffset), BINCTX.task_id_tls_off);
      val.writeUInt32LE(COMMON_LAYOUTS.constants.BINCTX_TASK_ID, BINCTX.flags);
    }
    const cx = ctx.otelCx;
    if (cx) {
      val.writeBigInt64LE(BigInt(cx.stateOff), BINCTX.otel_state_off);
      val.writeBigInt64LE(BigInt(cx.borrowOff), BINCTX.otel_borrow_off);
      val.writeBigInt64LE(BigInt(cx.spanPtrOff), BINCTX.otel_span_ptr_off);
      val.writeUInt16LE(cx.traceOff, BINCTX.otel_trace_off);
      val.writeUInt16LE(cx.spanIdOff, BINCTX.otel_span_off);
      val.writeUInt8(cx.alive, BINCTX.otel_alive);
      val.writeUInt32LE(val.readUInt32LE(BINCTX.flags) | COMMON_LAYOUTS.constants.BINCTX_OTEL_CX, BINCTX.flags);
    }
    if (ctx.threadCtxOff !== undefined) {
      val.writeBigInt64LE(BigInt(ctx.threadCtxOff), BINCTX.thread_ctx_off);
      val.writeUInt32LE(val.readUInt32LE(BINCTX.flags) | COMMON_LAYOUTS.constants.BINCTX_THREAD_CTX, BINCTX.flags);
    }
    this.update('binary_contexts', slot, val);
  }

  private update(map: SharedMap, index: number, val: Buffer): void {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(index);
    const rc = lib.map_update_elem(this.fds.get(map)!, key, val, 0n);
    if (rc !== 0) throw new Error(`updating ${map}[${index}] failed: errno ${errno()}`);
  }

  /**
   * Attaches the sched_process_exec tracepoint (bpf/process.bpf.c): execs of
   * the pids in traced_pids arrive in the ring as EV_PROCESS_EXEC. Returns
   * why not, if it cannot be (the agent then notices execs into another file
   * by polling, and execs of the same file not at all).
   */
  attachProcessEvents(): string | undefined {
    if (this.processLink) return undefined;
    if (this.tracedPidsFd < 0 || !this.hasProgram('process_exec')) return 'the process events program is not loaded';
    const l = lib.attach_raw_tracepoint(this.program('process_exec'), 'sched_process_exec');
    if (!l) return `attaching the sched_process_exec tracepoint failed: errno ${errno()}`;
    this.processLink = l;
    return undefined;
  }

  /**
   * Attaches the sched_process_fork tracepoint (bpf/process.bpf.c): threads
   * made by the pids in thread_link_pids arrive in the ring as
   * EV_THREAD_SPAWN. Returns why not, if it cannot be (std threads made in a
   * handler then give root spans, counted as unparented).
   */
  attachThreadEvents(): string | undefined {
    if (this.forkLink) return undefined;
    if (this.threadLinkPidsFd < 0 || !this.hasProgram('process_fork')) return 'the thread events program is not loaded';
    const l = lib.attach_raw_tracepoint(this.program('process_fork'), 'sched_process_fork');
    if (!l) return `attaching the sched_process_fork tracepoint failed: errno ${errno()}`;
    this.forkLink = l;
    return undefined;
  }

  /** Files `pid` with its binary slot in thread_link_pids, or (slot undefined) takes it out. A no-op before attachThreadEvents. */
  setThreadLinkPid(pid: number, slot: number | undefined): void {
    if (!this.forkLink) return;
    const key = Buffer.alloc(4);
    key.writeUInt32LE(pid);
    if (slot !== undefined) {
      const val = Buffer.alloc(4);
      val.writeUInt32LE(slot);
      if (lib.map_update_elem(this.threadLinkPidsFd, key, val, 0n) !== 0) {
        throw new Error(`adding process ${pid} to thread_link_pids failed: errno ${errno()}`);
      }
    } else {
      lib.map_delete_elem(this.threadLinkPidsFd, key); // ENOENT: never added
    }
  }

  /** Takes out every process filed with binary slot `slot` (the binary is dropped; its slot may be reused). */
  dropThreadLinkSlot(slot: number): void {
    if (this.threadLinkPidsFd < 0) return;
    const val = Buffer.alloc(4);
    const victims: Buffer[] = [];
    let key: Buffer | null = null;
    const next = Buffer.alloc(4);
    for (let n = 0; lib.map_get_next_key(this.threadLinkPidsFd, key, next) === 0 && n < 1 << 20; n++) {
      key = Buffer.from(next);
      if (lib.map_lookup_elem(this.threadLinkPidsFd, key, val) === 0 && val.readUInt32LE(0) === slot) victims.push(key);
    }
    for (const k of victims) lib.map_delete_elem(this.threadLinkPidsFd, k);
  }

  /** Adds or removes `pid` in traced_pids (a no-op before attachProcessEvents). */
  setTracedPid(pid: number, traced: boolean): void {
    if (!this.processLink) return;
    const key = Buffer.alloc(4);
    key.writeUInt32LE(pid);
    if (traced) {
      if (lib.map_update_elem(this.tracedPidsFd, key, Buffer.from([1]), 0n) !== 0) {
        throw new Error(`adding process ${pid} to traced_pids failed: errno ${errno()}`);
      }
    } else {
      lib.map_delete_elem(this.tracedPidsFd, key); // ENOENT: never added
    }
  }

  /** Entries in traced_pids now (walks the map: for the stats file, once a second). */
  tracedPidCount(): number {
    if (this.tracedPidsFd < 0) return 0;
    let n = 0;
    let key: Buffer | null = null;
    const next = Buffer.alloc(4);
    while (lib.map_get_next_key(this.tracedPidsFd, key, next) === 0 && n < 1 << 20) {
      n++;
      key = Buffer.from(next);
    }
    return n;
  }

  hasProgram(name: string): boolean {
    return this.objects.some((o) => o.programs.has(name));
  }

  private program(name: string): unknown {
    for (const o of this.objects) {
      const p = o.programs.get(name);
      if (p) return p;
    }
    throw new Error(`no BPF program named ${name}`);
  }

  attach(req: AttachRequest): Link {
    if (req.fileOffsets.length === 0) throw new Error('attach: no offsets');
    if (req.cookies.length !== req.fileOffsets.length) throw new Error('attach: cookies/offsets length mismatch');
    const prog = this.program(req.program);
    const link = this.mode === 'multi' ? this.attachMulti(prog, req) : this.attachPerf(prog, req);
    this.links.add(link);
    const self = this;
    return {
      mode: link.mode,
      count: link.count,
      detach() { if (self.links.delete(link)) link.detach(); },
    };
  }

  private attachMulti(prog: unknown, req: AttachRequest): Link {
    const n = req.fileOffsets.length;
    const path = Buffer.from(req.binaryPath + '\0');
    const offsets = new BigUint64Array(req.fileOffsets.map((o) => BigInt(o)));
    const cookies = new BigUint64Array(req.cookies);
    const attr = Buffer.alloc(64);
    attr.writeUInt32LE(lib.program_fd(prog), 0);
    attr.writeUInt32LE(BPF_TRACE_UPROBE_MULTI, 8);
    attr.writeBigUInt64LE(koffi.address(path) as bigint, 16);
    attr.writeBigUInt64LE(koffi.address(offsets) as bigint, 24);
    attr.writeBigUInt64LE(0n, 32);
    attr.writeBigUInt64LE(koffi.address(cookies) as bigint, 40);
    attr.writeUInt32LE(n, 48);
    attr.writeUInt32LE(0, 52);
    attr.writeUInt32LE(req.pid, 56);
    const fd = Number(c.syscall_bpf(SYS_bpf, BPF_LINK_CREATE, attr, attr.length));
    if (fd < 0) throw attachError(errno(), req);
    let open = true;
    return { mode: 'multi', count: n, detach() { if (open) { open = false; c.close(fd); } } };
  }

  private attachPerf(prog: unknown, req: AttachRequest): Link {
    const links: unknown[] = [];
    try {
      req.fileOffsets.forEach((off, i) => {
        const l = lib.attach_uprobe_opts(prog, req.pid === 0 ? -1 : req.pid, req.binaryPath, off, {
          sz: koffi.sizeof(UprobeOpts), ref_ctr_offset: 0, bpf_cookie: req.cookies[i], retprobe: false, func_name: null,
        });
        if (!l) throw attachError(errno(), req);
        links.push(l);
      });
    } catch (e) {
      for (const l of links) lib.link_destroy(l);
      throw e;
    }
    let open = true;
    return { mode: 'perf', count: links.length, detach() { if (open) { open = false; for (const l of links) lib.link_destroy(l); } } };
  }

  /**
   * A per-CPU array map shared by name (OPTIONAL_SHARED_MAPS) whose one
   * value is `words` u64 counters: each summed over CPUs, or undefined when
   * no object declares the map.
   */
  perCpuCounters(name: string, words: number): number[] | undefined {
    const fd = this.optionalFds.get(name);
    if (fd === undefined) return undefined;
    const size = Math.ceil((words * 8) / 8) * 8;
    const val = Buffer.alloc(size * this.ncpus);
    const key = Buffer.alloc(4);
    if (lib.map_lookup_elem(fd, key, val) !== 0) return undefined;
    const out = new Array<number>(words).fill(0);
    for (let cpu = 0; cpu < this.ncpus; cpu++) for (let i = 0; i < words; i++) out[i] += Number(val.readBigUInt64LE(cpu * size + i * 8));
    return out;
  }

  /**
   * Deletes every entry of a shared hash map whose key starts with the u32
   * `pid` (a process that exited: src/propagation/context.h, prop_links),
   * or with a pid the predicate picks.
   * Returns how many were deleted.
   */
  deletePidEntries(name: string, keySize: number, pid: number | ((pid: number) => boolean)): number {
    const fd = this.optionalFds.get(name);
    if (fd === undefined) return 0;
    const victims: Buffer[] = [];
    let key: Buffer | null = null;
    const next = Buffer.alloc(keySize);
    const verdict = new Map<number, boolean>();
    const hit = typeof pid === 'number' ? (p: number) => p === pid : (p: number) => {
      let v = verdict.get(p);
      if (v === undefined) verdict.set(p, (v = pid(p)));
      return v;
    };
    for (let n = 0; lib.map_get_next_key(fd, key, next) === 0 && n < 1 << 20; n++) {
      key = Buffer.from(next);
      if (hit(key.readUInt32LE(0))) victims.push(key);
    }
    let deleted = 0;
    for (const k of victims) if (lib.map_delete_elem(fd, k) === 0) deleted++;
    return deleted;
  }

  /** Counters of one probe id, summed over CPUs. */
  counters(probeId: number): ProbeCounters {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(probeId);
    const val = Buffer.alloc(PROBE_STATS_SIZE * this.ncpus);
    const out: ProbeCounters = { hits: 0n, events: 0n, drops: 0n, badLayout: 0n, noEntry: 0n };
    if (lib.map_lookup_elem(this.fds.get('probe_stats')!, key, val) !== 0) return out;
    for (let cpu = 0; cpu < this.ncpus; cpu++) {
      const b = cpu * PROBE_STATS_SIZE;
      out.hits += val.readBigUInt64LE(b);
      out.events += val.readBigUInt64LE(b + 8);
      out.drops += val.readBigUInt64LE(b + 16);
      out.badLayout += val.readBigUInt64LE(b + 24);
      out.noEntry += val.readBigUInt64LE(b + 32);
    }
    return out;
  }

  close(): void {
    if (this.processLink) lib.link_destroy(this.processLink);
    this.processLink = null;
    if (this.forkLink) lib.link_destroy(this.forkLink);
    this.forkLink = null;
    for (const l of [...this.links]) l.detach();
    this.links.clear();
    this.ring?.close();
    for (const o of this.objects) lib.object_close(o.obj);
    this.objects = [];
  }
}

function check(rc: number, what: string): void {
  if (rc < 0) throw new Error(`${what}: errno ${-rc}`);
}

function attachError(e: number, req: AttachRequest): UserError {
  if (e === 1 || e === 13) return new UserError('not permitted to attach uprobes: run as root (CAP_SYS_ADMIN is needed for uprobes)', EXIT.PRIVILEGE);
  if (e === 3) return new UserError(`process ${req.pid} exited before the probes were attached`, EXIT.TARGET);
  return new UserError(`attaching ${req.program} to ${req.binaryPath} failed: errno ${e}`, EXIT.KERNEL);
}

const bpfLib = koffi.load('libbpf.so.1');
const nextProgramFn = bpfLib.func('bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prev)');
const programNameFn = bpfLib.func('const char *bpf_program__name(bpf_program *p)');
function nextProgram(obj: unknown, prev: unknown): unknown { return nextProgramFn(obj, prev); }
function programName(p: unknown): string { return programNameFn(p) as string; }
