// The running agent: binary -> plan -> attach -> events -> spans -> export.
//
// Many targets share one BPF runtime, one ring buffer and one exporter:
//  - by PID: probes are attached with that PID as the filter; the agent stops
//    when the process exits.
//  - by executable (one or several --exe): probes are attached to the file for
//    every process (pid 0), so processes that start later are traced from
//    their first instruction, with no polling race. The agent follows each
//    path and re-attaches when the file is replaced by a new build.
//  - by discovery (src/agent/discovery.ts): every process whose executable
//    links a supported library, filtered by selectors, in containers too.
// Probes are attached per file (inode): N processes of one executable cost one
// attachment. Every file is held open (PinnedFile) and analysed and attached
// through that descriptor, so the offsets always belong to the inode probed;
// a file rewritten in place loses its probes at once (inotify plus polling).
// One /proc scan per tick serves every target.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BpfRuntime, Link, ProbeCounters, chooseAttachMode } from '../bpf/loader';
import { SpanAssembler } from '../spans/assembler';
import type { SpanRecord } from '../spans/record';
import { LIBRARIES } from '../libs';
import type { SpanSink } from '../export/exporter';
import { Plan, PlannedProbe } from '../plan/plan';
import { processExists, scanProcesses, ProcEntry, readProcessInfo, startTimeOf } from '../targets/process';
import { PinnedFile, identityOf, inodeKey, sameContent, FileIdentity } from './pinned-file';
import { analyzeTarget, requirePlan, requireExecutable, requireProcess } from './target';
import { checkBpfPrivileges, checkTracingPrivileges } from './privileges';
import { ProcessTable, TracedProcess, Origin } from './processes';
import { Discovery, DiscoveryStats, DiscoveryHost } from './discovery';
import { MetricsServer } from './metrics';
import { prefetchSymbols } from '../binary/symbol-sources';
import { bpfObjectPath } from '../util/paths';
import { log, warnEvery } from '../util/log';
import { WallClock } from '../util/clock';
import { UserError, EXIT } from '../util/errors';
import { EventRecorder } from '../events/recording';
import { lossSummary, describeLoss } from './accounting';
import type { AgentConfig } from '../cli/config';
import { COMMON_LAYOUTS, recordKind, decodeHeader, EVENT_HEADER_SIZE, readU64Number } from '../events/header';
import { Propagation, describePropagation, type PropagationReport } from '../propagation';
import { CpuProfile } from '../util/cpu-profile';


// The ring's size: cfg.ringBytes (--ring-size, default 16 MiB: config.ts).
const DRAIN_MS = 10;
// One drain hands at most this many records over before yielding to the event
// loop (export, timers); it continues at once if more are waiting.
const DRAIN_MAX_RECORDS = 8192;
const DRAIN_AGAIN_FILL = 1 / 16;
const HEALTH_MS = 1000;
const WATCH_MS = 250;
// A probe whose layout check fails this often without a single good event is
// reading something else than we think: detach it rather than guess.
const BAD_LAYOUT_LIMIT = 16;
// A new build is attached only once its file has not changed for this long:
// a deploy may still be writing it.
const STABLE_MS = 500;

export interface AttachedBinary {
  exeId: string;
  file: PinnedFile;
  pid: number;
  /** The plan's probes to attach and their standbys. The plan itself is not
   * kept: its BinaryInfo holds the whole file's bytes. */
  probes: PlannedProbe[];
  rustc: string | undefined;
  links: Map<number, Link[]>; // probeId -> links
  origin: Origin;
  /** The path it was found at: the --exe path, or the process's view of it. */
  shownAs: string;
  /** The file the kernel puts the probes on (realFileKey). */
  realKey: string;
  /** Other inode keys that are this same file (containers of one image: overlayfs mounts of one layer). */
  aliases: Set<string>;
  /** Index in the BPF binary_contexts table (cookie bits 56..63). */
  slot: number;
  /** Probe config indexes this binary holds, by probe id and config text. */
  configs: Map<string, number>;
  /** Active modules without probes (tokio: the binary's task id location). */
  factModules: string[];
  /** Where tokio keeps the current task id is known: threads its processes make are reported (thread_link_pids). */
  taskIdKnown: boolean;
}

const MAX_BINARIES = COMMON_LAYOUTS.constants.MAX_BINARIES;
const EV_PROCESS_EXEC = COMMON_LAYOUTS.kinds.PROCESS_EXEC;
const EV_THREAD_SPAWN = COMMON_LAYOUTS.kinds.THREAD_SPAWN;
const TSE = COMMON_LAYOUTS.structs.thread_spawn_event;
const MAX_PROBE_CONFIGS = COMMON_LAYOUTS.constants.MAX_PROBE_CONFIGS;

const OVERLAYFS_SUPER_MAGIC = 0x794c7630;

/**
 * The identity of the file uprobes really go on. The kernel attaches to the
 * underlying inode of an overlayfs file, so the containers of one image on a
 * node, each with its own overlay mount (its own st_dev), share one file and
 * one set of probes: attaching once per container would run every program
 * once per container on every hit. overlayfs hides the underlying device but
 * passes the underlying inode number, size and times through; together they
 * name the file.
 */
function realFileKey(file: PinnedFile): string {
  try {
    if (fs.statfsSync(file.path).type === OVERLAYFS_SUPER_MAGIC) {
      const st = fs.fstatSync(file.fd, { bigint: true });
      return `ovl:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    }
  } catch { /* not answerable: the inode key */ }
  return file.key;
}

/** One --exe path, followed as deploys replace the file behind it. */
interface ExeTarget {
  path: string;
  watcher: fs.FSWatcher | undefined;
  /** A new build seen at the path, waiting to be stable. */
  candidate: { id: FileIdentity; since: number } | undefined;
  /** Builds that could not be instrumented, so they are not re-read every tick. */
  failedBuilds: Set<string>;
}

export class Agent {
  private rt!: BpfRuntime;
  /** Outgoing trace context (src/propagation); undefined until load. */
  private propagation: Propagation | undefined;
  private clock = new WallClock();
  private assembler: SpanAssembler;
  private binaries = new Map<string, AttachedBinary>();
  /** Inode keys of files that are an attached file under another mount (AttachedBinary.aliases). */
  private aliases = new Map<string, AttachedBinary>();
  private table: ProcessTable;
  private discovery: Discovery | undefined;
  private exeTargets: ExeTarget[] = [];
  private timers: NodeJS.Timeout[] = [];
  private disabled = new Map<number, string>(); // probeId -> why
  private lastDrops = new Map<number, bigint>();
  private decodeErrors = 0;
  private drainAgain: NodeJS.Immediate | undefined;
  /** Developer aid: raw ring records written to a file (OTEL_RUST_AGENT_RECORD_EVENTS), for make bench-pipeline. */
  private recorder: EventRecorder | undefined;
  /** Developer aid: the agent's own CPU profile (OTEL_RUST_AGENT_CPU_PROFILE). */
  private cpuProfile: CpuProfile | undefined;
  /** Spans of processes left out by a selector (they share a traced file), or of unknown processes in discovery. */
  private filteredSpans = 0;
  private deniedSeen = 0;
  private freeSlots = Array.from({ length: MAX_BINARIES }, (_, i) => i);
  private freeConfigs = Array.from({ length: MAX_PROBE_CONFIGS - 1 }, (_, i) => i + 1);
  /** Library names active per traced pid (SpanOutput.libraryActive), filled on first use. */
  private activeLibs = new Map<number, Set<string>>();
  private stopping = false;
  private ready = false;
  /** The --pid target's start time (/proc/<pid>/stat), read before analysis: a reused pid is not it. */
  private targetStart: string | undefined;
  /** Whether execs of traced processes arrive as ring events (bpf/process.bpf.c), or are only polled for. */
  private execEvents = false;
  /** Whether threads made by traced processes arrive as ring events (bpf/process.bpf.c, sched_process_fork). */
  private threadEvents = false;
  /** Execs seen (ring events and polling), and pids whose exec waits to be followed (after the drain). */
  private execsSeen = 0;
  /** Per pid: unfinished requests dropped at the exec, and the table entry it had then. */
  private execsPending = new Map<number, { lost: number; tp: TracedProcess | undefined }>();
  private metrics: MetricsServer | undefined;
  private done!: Promise<number>;
  private resolveDone!: (code: number) => void;
  readonly statsFile: string;

  constructor(private readonly cfg: AgentConfig, private readonly sink: SpanSink) {
    this.assembler = new SpanAssembler(LIBRARIES, {
      toUnixNano: (ns) => this.clock.toUnixNano(ns),
      clock: this.clock.offset,
      emit: (span) => this.emit(span),
      libraryActive: (pid, library) => this.librariesOf(pid).has(library),
    }, { rpcDup: cfg.semconvRpcDup });
    this.table = new ProcessTable(cfg, () => this.discovery?.retryPending(), (pid, tracked) => this.watchExecs(pid, tracked));
    this.statsFile = cfg.statsFile ?? path.join('/run/otel-rust-agent', `${process.pid}.json`);
    if (cfg.recordEventsFile) this.recorder = new EventRecorder(cfg.recordEventsFile);
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Attaches and starts tracing; resolves with the exit code when the agent stops. */
  async run(): Promise<number> {
    const { cfg } = this;
    // First, so /healthz answers (and a busy address is reported) before the slow part.
    if (cfg.metricsAddress) {
      this.metrics = new MetricsServer(cfg.metricsAddress, () => this.snapshot());
      await this.metrics.start();
    }
    // Every named target is opened and analysed before anything is loaded: a
    // bad one is a clear error, at once.
    const initial: { file: PinnedFile; plan: Plan; shownAs: string }[] = [];
    const analyse = async (file: PinnedFile, shownAs: string) => {
      try {
        const realPath = realPathOf(file, shownAs);
        for (const w of await prefetchSymbols(file.path, realPath, cfg.symbols)) log.warn(`debuginfod: ${w}`);
        initial.push({ file, plan: requirePlan(analyzeTarget(file.path, shownAs, cfg.symbols, realPath), shownAs), shownAs });
      } catch (e) {
        file.close();
        throw e;
      }
    };
    try {
      if (cfg.targetPid !== undefined) {
        this.targetStart = startTimeOf(cfg.targetPid);
        const shownAs = requireProcess(cfg.targetPid);
        await analyse(pinFile(`/proc/${cfg.targetPid}/exe`, shownAs), shownAs);
      }
      for (const exe of cfg.targetExes) {
        const file = pinFile(requireExecutable(exe), exe);
        this.exeTargets.push({ path: exe, watcher: undefined, candidate: undefined, failedBuilds: new Set() });
        if (initial.some((t) => t.file.key === file.key)) file.close(); // the same file by two names
        else await analyse(file, exe);
      }
      checkBpfPrivileges();
      let mode;
      try { mode = chooseAttachMode(); } catch (e) { throw explainRefusal(e); }
      checkTracingPrivileges(mode);
    } catch (e) {
      for (const t of initial) t.file.close();
      throw e;
    }

    this.clock.start();
    // Every library's programs are loaded once: files found later (discovery,
    // new builds) may use any of them.
    const objects = [...new Set(LIBRARIES.map((l) => l.module.bpfObject).filter((o): o is string => !!o)), PROCESS_EVENTS_OBJECT];
    this.rt = new BpfRuntime(objects.map(bpfObjectPath), cfg.ringBytes);
    try {
      this.rt.load();
    } catch (e) {
      throw explainRefusal(e);
    }
    const noEvents = this.rt.attachProcessEvents();
    this.execEvents = noEvents === undefined;
    if (noEvents) log.warn(`an exec by a traced process is noticed only when it runs another file, by polling: ${noEvents}`);
    const noThreads = process.env.OTEL_RUST_AGENT_THREAD_LINKS === 'off' ? 'off (OTEL_RUST_AGENT_THREAD_LINKS=off)' : this.rt.attachThreadEvents();
    this.threadEvents = noThreads === undefined;
    if (noThreads) log.warn(`threads made while a request is handled do not inherit its span (their client spans are roots): ${noThreads}`);
    if (process.env.OTEL_RUST_AGENT_PROPAGATION !== 'off') {
      this.propagation = new Propagation(this.rt, bpfObjectPath('propagation.bpf.o'), process.env.OTEL_RUST_AGENT_PROPAGATE_ROOT_CGROUP === '1');
    }
    log.info(this.propagation ? describePropagation(this.propagation.report) : 'trace context propagation: off (OTEL_RUST_AGENT_PROPAGATION=off)');
    if (cfg.cpuProfileFile) this.cpuProfile = CpuProfile.start(cfg.cpuProfileFile);
    for (const t of initial) {
      const pid = cfg.targetPid ?? 0;
      const origin: Origin = cfg.targetPid !== undefined ? 'pid' : 'exe';
      this.attachBinary(pid ? `pid:${pid}` : t.file.key, t.file, t.plan, pid, origin, t.shownAs);
      // Gone (or exec'd) while we attached: it was never traced; say so as an error.
      if (pid && !this.stillTheTarget(pid, t.file)) {
        throw new UserError(`process ${pid} exited or exec'd another program while the probes were being attached`, EXIT.TARGET);
      }
      log.info(`tracing ${pid ? `process ${pid} (${t.shownAs})` : `every process of ${t.shownAs}`}: ${describePlan(t.plan)}, attach mode ${this.rt.mode}`);
    }

    if (cfg.targetPid !== undefined) this.trackProcess(cfg.targetPid);
    for (const t of this.exeTargets) this.watchFile(t);
    if (cfg.discover) {
      this.discovery = new Discovery(this.discoveryHost(), this.table);
      this.table.pods?.start();
      const sel = [...cfg.include.map((s) => `include "${s.text}"`), ...cfg.exclude.map((s) => `exclude "${s.text}"`)];
      log.info(`discovery on: every process whose executable links a supported library${sel.length ? ` (${sel.join(', ')})` : ''}; ` +
        `scanning /proc every ${cfg.scanIntervalMs} ms, attach mode ${this.rt.mode}`);
    }
    if (cfg.targetPid === undefined) this.scan();

    this.sink.useEventDrain?.(() => { if (!this.stopping) this.drain(); });
    this.timers.push(setInterval(() => this.drain(), DRAIN_MS));
    this.timers.push(setInterval(() => this.health(), HEALTH_MS));
    this.timers.push(setInterval(() => this.watch(), WATCH_MS));
    if (cfg.targetPid === undefined) this.timers.push(setInterval(() => this.scan(), cfg.scanIntervalMs));
    if (cfg.durationSec > 0) this.timers.push(setTimeout(() => void this.stop('duration elapsed'), cfg.durationSec * 1000));
    this.writeStats();
    this.ready = !this.stopping;
    if (this.discovery) log.info(`discovery: first scan done, ${this.table.tracedCount()} process(es) traced in ${this.attachedFiles()} file(s)`);
    return this.done;
  }

  /**
   * By PID the probes sit on the inode the process ran when we opened it, and
   * on that process: the same start time (not a reused pid) and still that
   * file (not exec'd into another). Checked after the attach, so a process
   * that went away during it is never reported as traced.
   */
  private stillTheTarget(pid: number, file: PinnedFile): boolean {
    if (this.targetStart === undefined || startTimeOf(pid) !== this.targetStart) return false;
    const now = identityOf(`/proc/${pid}/exe`);
    return now !== undefined && inodeKey(now) === file.key;
  }

  /**
   * A traced process exec'd (a ring event from the sched_process_exec
   * tracepoint, in order with the probes' events; or polling found it runs
   * another file). Its unfinished state belongs to the old image: dropped
   * now, before any event of the new image is read. What it runs now is
   * decided after the drain (followExec).
   */
  private noteExec(pid: number): void {
    const lost = this.assembler.forgetProcess(pid);
    this.propagation?.forgetContext(pid); // the old image's task ids and links
    this.activeLibs.delete(pid);
    this.execsSeen++;
    const first = this.execsPending.size === 0;
    const prev = this.execsPending.get(pid);
    this.execsPending.set(pid, { lost: (prev?.lost ?? 0) + lost, tp: prev ? prev.tp : this.table.get(pid) });
    if (first) setImmediate(() => this.followExecs());
  }

  /** Keeps traced_pids (whose execs the ring reports) in step with the process table. */
  private watchExecs(pid: number, tracked: boolean): void {
    if (!this.rt) return;
    if (!tracked) this.rt.setThreadLinkPid(pid, undefined);
    else this.linkThreads(pid);
    try {
      this.rt.setTracedPid(pid, tracked);
    } catch (e) {
      warnEvery('traced_pids', 60_000, `execs of process ${pid} will be noticed only by polling: ${(e as Error).message}`);
    }
  }

  private followExecs(): void {
    const pending = [...this.execsPending];
    this.execsPending.clear();
    for (const [pid, { lost, tp }] of pending) {
      if (this.stopping) return;
      try {
        this.followExec(pid, lost, tp);
      } catch (e) {
        log.warn(`process ${pid} exec'd: ${(e as Error).message}`);
      }
    }
  }

  /**
   * After an exec: by PID, what it runs now (the same file or another) is
   * analysed and attached anew if it can be, else the agent stops, saying why. In
   * exe and discovery modes the process is looked at again as a new one (the
   * next scan, or its first span): traced if it runs an attached file (or,
   * discovery, one that qualifies), and with a resource read anew (an exec
   * may change its environment and command line).
   */
  private followExec(pid: number, lost: number, tp: TracedProcess | undefined): void {
    const wasPid = this.cfg.targetPid === pid;
    // Forgotten meanwhile (it exited), or already looked at again (discovery's scan saw the new file).
    if (!wasPid && (!tp || this.table.get(pid) !== tp)) return;
    this.table.delete(pid);
    this.discovery?.forget(pid);
    const info = readProcessInfo(pid);
    const lostText = lost ? ` (${lost} unfinished request(s) of the old image dropped)` : '';
    if (!info || (wasPid && startTimeOf(pid) !== this.targetStart)) {
      if (tp?.selected || wasPid) log.info(`process ${pid} exited${lostText}`);
      if (wasPid) void this.stop(`process ${pid} exited`);
      return;
    }
    if (tp?.selected || wasPid) log.info(`process ${pid} exec'd ${info.exePath}${lostText}`);
    if (!wasPid) return;
    // Attached anew even when it is the same file: a pid's links are filtered
    // to the task given at attach, and an exec from any thread but the main
    // one replaces that task (the exec'ing thread takes its pid), so the old
    // links never fire again (test/e2e/target-faults.test.ts saw exactly that).
    const old = this.binaries.get(`pid:${pid}`);
    if (old) this.dropBinary(old, `process ${pid} exec'd ${old.file.key === info.exeId ? 'the same executable again' : 'another program'}`);
    let file: PinnedFile | undefined;
    try {
      file = pinFile(`/proc/${pid}/exe`, info.exePath);
      const plan = requirePlan(analyzeTarget(file.path, info.exePath, this.cfg.symbols, info.exePath), info.exePath);
      if (file.key !== info.exeId) throw new UserError(`${info.exePath}: process ${pid} exec'd again during the analysis`, EXIT.TARGET);
      const ab = this.attachBinary(`pid:${pid}`, file, plan, pid, 'pid', info.exePath);
      file = undefined; // the attached binary owns it now (or closed it)
      if (!ab || !this.stillTheTarget(pid, ab.file)) throw new UserError(`process ${pid} exited or exec'd again while the probes were being attached`, EXIT.TARGET);
      log.info(`tracing process ${pid} (${info.exePath}) after its exec: ${describePlan(plan)}, attach mode ${this.rt.mode}`);
      this.trackProcess(pid);
    } catch (e) {
      file?.close();
      const why = e instanceof UserError ? e.message : `internal error: ${(e as Error).message}`;
      // Nothing left to trace by this pid: stop, as when it exits.
      const ab = this.binaries.get(`pid:${pid}`);
      if (ab) this.dropBinary(ab, 'cannot trace the new program');
      void this.stop(`process ${pid} exec'd ${info.exePath}, which cannot be traced: ${why}`);
    }
  }

  private attachBinary(key: string, file: PinnedFile, plan: Plan, pid: number, origin: Origin, shownAs: string): AttachedBinary | undefined {
    const slot = this.freeSlots.shift();
    if (slot === undefined) throw new UserError(`more than ${MAX_BINARIES} files attached at once`, EXIT.FAILURE);
    const ab: AttachedBinary = {
      exeId: key, file, pid, probes: plan.ready, rustc: plan.binary.rustc?.version, links: new Map(), origin, shownAs,
      realKey: pid ? key : realFileKey(file), aliases: new Set(), slot, configs: new Map(),
      factModules: plan.modules.filter((m) => m.active && m.module.probes.length === 0).map((m) => m.module.name),
      taskIdKnown: plan.context.taskIdTlsOffset !== undefined,
    };
    // What every program of this file reads about it (tokio's task id), before any probe can fire.
    this.rt.setBinaryContext(slot, { taskIdTlsOffset: plan.context.taskIdTlsOffset, ...plan.context.facts });
    this.binaries.set(key, ab);
    this.activeLibs.clear();
    for (const p of plan.ready) {
      if (this.disabled.has(p.probeId)) continue;
      // A replacement already disabled at run time: use what it replaced.
      if (p.status === 'standby' && !this.disabled.has(probeIdOf(plan, p.replacedBy))) continue;
      try {
        this.attachProbe(ab, p);
      } catch (e) {
        this.dropBinary(ab, (e as Error).message);
        throw e;
      }
    }
    // Written in place between our read and the attach: take it all off again.
    if (file.changed()) {
      this.dropBinary(ab, 'was modified while the probes were being attached');
      return undefined;
    }
    return ab;
  }

  private dropBinary(ab: AttachedBinary, why: string): void {
    for (const ls of ab.links.values()) ls.forEach((l) => l.detach());
    ab.links.clear();
    ab.file.close();
    this.binaries.delete(ab.exeId);
    for (const a of ab.aliases) this.aliases.delete(a);
    this.rt.setBinaryContext(ab.slot, {});
    this.rt.dropThreadLinkSlot(ab.slot); // its slot may name another file soon
    this.freeSlots.push(ab.slot);
    for (const idx of ab.configs.values()) this.freeConfigs.push(idx);
    ab.configs.clear();
    this.activeLibs.clear();
    log.info(`probes removed from ${ab.file.openedAs === ab.shownAs ? ab.shownAs : `${ab.shownAs} (${ab.exeId})`}: ${why}`);
  }

  private attachProbe(ab: AttachedBinary, p: PlannedProbe): void {
    const link = this.rt.attach({
      program: p.spec.program,
      binaryPath: ab.file.path,
      fileOffsets: p.sites.map((s) => s.fileOffset),
      cookies: p.sites.map((s) => this.siteCookie(ab, p, s.cookie, s.config)),
      pid: ab.pid,
    });
    ab.links.set(p.probeId, [link]);
    this.activeLibs.clear();
  }

  /** The planned cookie plus the file's slot and, for a probe with a config, its config index (written here). */
  private siteCookie(ab: AttachedBinary, p: PlannedProbe, cookie: bigint, config: number[] | undefined): bigint {
    let c = cookie | (BigInt(ab.slot) << 56n);
    if (config) {
      const key = `${p.probeId}:${config.join(',')}`;
      let idx = ab.configs.get(key);
      if (idx === undefined) {
        idx = this.freeConfigs.shift();
        if (idx === undefined) throw new UserError(`more than ${MAX_PROBE_CONFIGS - 1} probe configs in use`, EXIT.FAILURE);
        this.rt.setProbeConfig(idx, config);
        ab.configs.set(key, idx);
      }
      c |= BigInt(idx) << 16n;
    }
    return c;
  }

  /** Libraries with probes attached in the file process `pid` runs (and active probe-less ones), for SpanOutput.libraryActive. */
  private librariesOf(pid: number): Set<string> {
    let libs = this.activeLibs.get(pid);
    if (libs) return libs;
    libs = new Set();
    let ab = this.binaries.get(`pid:${pid}`);
    if (!ab) {
      try {
        const st = fs.statSync(`/proc/${pid}/exe`);
        ab = this.lookup(`${st.dev}:${st.ino}`);
      } catch { /* gone */ }
    }
    if (!ab && this.binaries.size === 1) ab = [...this.binaries.values()][0];
    if (ab) {
      for (const m of ab.factModules) libs.add(m);
      for (const [probeId, ls] of ab.links) {
        if (ls.length === 0 || this.disabled.has(probeId)) continue;
        const p = ab.probes.find((q) => q.probeId === probeId);
        if (p) libs.add(p.module.name);
      }
    }
    this.activeLibs.set(pid, libs);
    return libs;
  }

  /** The attached file a process's inode key names, directly or as an alias. */
  private lookup(exeId: string): AttachedBinary | undefined {
    return this.binaries.get(exeId) ?? this.aliases.get(exeId);
  }

  private discoveryHost(): DiscoveryHost {
    return {
      attachedOrigin: (exeId: string) => {
        const ab = this.lookup(exeId);
        return ab ? { discovered: ab.origin === 'discovered', rustc: ab.rustc } : undefined;
      },
      attachDiscovered: (file: PinnedFile, plan: Plan, shownAs: string) => {
        const real = realFileKey(file);
        const same = [...this.binaries.values()].find((b) => b.pid === 0 && b.realKey === real);
        if (same) {
          // Another container's view of a file already attached: its probes already fire there.
          same.aliases.add(file.key);
          this.aliases.set(file.key, same);
          log.info(`${shownAs} (file ${file.key}) is the file already attached as ${same.shownAs} (${same.exeId}): no second attachment`);
          return 'alias';
        }
        try {
          if (!this.attachBinary(file.key, file, plan, 0, 'discovered', shownAs)) return 'failed';
        } catch (e) {
          log.warn(`discovery: cannot attach to ${shownAs}: ${(e as Error).message}`);
          return 'failed';
        }
        log.info(`tracing the selected processes of ${shownAs} (file ${file.key}): ${describePlan(plan)}`);
        return 'attached';
      },
      dropUnusedDiscovered: (running: Set<string>) => {
        for (const ab of [...this.binaries.values()]) {
          if (ab.origin !== 'discovered') continue;
          for (const a of [...ab.aliases]) if (!running.has(a)) { ab.aliases.delete(a); this.aliases.delete(a); }
          if (!running.has(ab.exeId) && ab.aliases.size === 0) this.dropBinary(ab, 'no traced process runs it any more');
        }
      },
      forgetProcess: (pid: number, why: string) => this.forgetProcess(pid, why),
      afterAnalysis: () => this.drain(),
    };
  }

  /** A process spans come from, or that runs a traced file: resolved once (resource, selection). */
  private trackProcess(pid: number): TracedProcess | undefined {
    const known = this.table.get(pid);
    if (known) return known;
    let ab: AttachedBinary | undefined;
    let origin: Origin = 'exe';
    if (this.cfg.targetPid === pid) {
      ab = this.binaries.get(`pid:${pid}`);
      origin = 'pid';
    } else {
      let exeId: string | undefined;
      try { const st = fs.statSync(`/proc/${pid}/exe`); exeId = `${st.dev}:${st.ino}`; } catch { return undefined; }
      ab = this.lookup(exeId);
      if (!ab) {
        // Not a file we attached (a process that exec'd, a pid-mode target's
        // child): in discovery mode the scan decides about it.
        if (this.discovery) return undefined;
        ab = [...this.binaries.values()][0];
      } else origin = ab.origin;
    }
    const tp = this.table.resolve(pid, origin, ab?.rustc);
    return tp ? this.table.add(tp) : undefined;
  }

  /**
   * Files a process that entered the table in thread_link_pids with its
   * binary's slot (bpf/process.bpf.c): threads it makes then inherit the span
   * of the task that made them. Only a selected process whose binary is
   * surely the one attached (by --pid, or by its executable's inode): the
   * slot tells the BPF program where tokio's task id is.
   */
  private linkThreads(pid: number): void {
    const tp = this.table.get(pid);
    if (!this.threadEvents || !tp?.selected) return;
    const ab = this.cfg.targetPid === pid ? this.binaries.get(`pid:${pid}`) : this.lookup(tp.info.exeId);
    if (!ab || !ab.taskIdKnown) return;
    try {
      this.rt.setThreadLinkPid(pid, ab.slot);
    } catch (e) {
      warnEvery('thread_link_pids', 60_000, `threads of process ${pid} will not inherit spans: ${(e as Error).message}`);
    }
  }

  private emit(span: SpanRecord): void {
    const tp = this.table.get(span.pid) ?? this.trackProcess(span.pid);
    // Left out by a selector, but running a file a traced process shares; or,
    // in discovery, a process not known (yet): nothing says it may be traced.
    if (tp ? !tp.selected : this.discovery !== undefined) { this.filteredSpans++; return; }
    const resource = tp?.resource ?? { pid: span.pid, attributes: { 'service.name': this.cfg.serviceName ?? 'unknown_service', 'process.pid': span.pid } };
    this.sink.submit(span, resource);
  }

  /**
   * Hands every record in the ring to the span assembler. Runs every
   * DRAIN_MS; when a drain finds the ring more than DRAIN_AGAIN_FILL full it
   * runs again right away (after other due callbacks), so a burst never
   * waits a whole period while the ring fills up.
   */
  private drain(): void {
    const rec = this.recorder;
    const n = this.rt.ring.drain((dv, off, len) => {
      if (rec) rec.add(dv, off, len);
      try {
        if (len >= EVENT_HEADER_SIZE && recordKind(dv, off) === EV_PROCESS_EXEC) {
          this.noteExec(decodeHeader(dv, off).pid);
          return;
        }
        if (len >= TSE.$size && recordKind(dv, off) === EV_THREAD_SPAWN) {
          const h = decodeHeader(dv, off);
          this.assembler.context.inheritThread(h.pid, h.tid, readU64Number(dv, off + TSE.parent_task_id), dv.getUint32(off + TSE.child_tid, true));
          return;
        }
        this.assembler.handle(dv, off, len);
      } catch (e) {
        this.decodeErrors++;
        warnEvery('decode', 10_000, `dropped an event that could not be decoded: ${(e as Error).message}`);
      }
    }, DRAIN_MAX_RECORDS);
    if (n >= DRAIN_MAX_RECORDS || this.rt.ring.pending() > this.cfg.ringBytes * DRAIN_AGAIN_FILL) {
      if (!this.drainAgain) this.drainAgain = setImmediate(() => { this.drainAgain = undefined; if (!this.stopping) this.drain(); });
    }
  }

  /** Counters: ring-buffer drops and layout-check failures; stale requests. */
  private health(): void {
    this.assembler.expire(process.hrtime.bigint());
    for (const { probe: p, counters: c, disabled } of this.counters()) {
      if (disabled) continue;
      const lastD = this.lastDrops.get(p.probeId) ?? 0n;
      if (c.drops > lastD) {
        warnEvery('drops', 10_000, `ring buffer full: ${c.drops - lastD} events of ${p.module.name}/${p.spec.id} dropped (traffic exceeds what the agent drains)`);
        this.lastDrops.set(p.probeId, c.drops);
      }
      if (c.badLayout >= BAD_LAYOUT_LIMIT && c.events === 0n && (p.spec.site === 'entry' ? true : c.noEntry === 0n)) {
        this.disableProbe(p, `its ${p.spec.layout ?? 'data'} layout check failed ${c.badLayout} times with no good read (layout from ${p.layout?.from ?? '?'})`);
      }
    }
    this.writeStats();
  }

  private disableProbe(p: PlannedProbe, why: string): void {
    // Disabling one probe of a module disables the ones that depend on it.
    const victims = [p, ...[...this.binaries.values()].flatMap((ab) => ab.probes.filter((q) => q.module === p.module && q.spec.requires === p.spec.id))];
    for (const v of victims) {
      this.disabled.set(v.probeId, v === p ? why : `needs ${p.spec.id}, which was disabled`);
      for (const ab of this.binaries.values()) {
        for (const l of ab.links.get(v.probeId) ?? []) l.detach();
        ab.links.delete(v.probeId);
      }
    }
    log.warn(`disabled probe ${p.module.name}/${p.spec.id}: ${why}`);
    this.activeLibs.clear();
    // Probes it replaced take over.
    for (const ab of this.binaries.values()) {
      for (const q of ab.probes) {
        if (q.status !== 'standby' || q.replacedBy !== p.spec.id || q.module !== p.module || ab.links.has(q.probeId) || this.disabled.has(q.probeId)) continue;
        try {
          this.attachProbe(ab, q);
          log.warn(`attached fallback probe ${q.module.name}/${q.spec.id} instead`);
        } catch (e) {
          log.warn(`cannot attach fallback probe ${q.module.name}/${q.spec.id}: ${(e as Error).message}`);
        }
      }
    }
  }

  private forgetProcess(pid: number, why: string): void {
    this.drain(); // its last events
    this.propagation?.forget(pid);
    const lost = this.assembler.forgetProcess(pid);
    this.activeLibs.delete(pid);
    const tp = this.table.get(pid);
    this.table.delete(pid);
    if (tp?.selected) log.info(`process ${pid} ${why}${lost ? ` (${lost} request(s) without a response)` : ''}`);
  }

  /** Every 250 ms: exits of known processes, and the files behind the --exe paths. */
  private watch(): void {
    for (const pid of this.table.gone()) {
      this.forgetProcess(pid, 'exited');
      if (this.cfg.targetPid === pid) void this.stop(`process ${pid} exited`);
    }
    const target = this.cfg.targetPid;
    if (target !== undefined && !this.stopping) {
      // Gone before it ever reached the table (it exited right after the attach).
      if (startTimeOf(target) !== this.targetStart) void this.stop(`process ${target} exited`);
      else {
        // An exec the ring did not say (no tracepoint, or its event was dropped): it runs another file.
        const ab = this.binaries.get(`pid:${target}`);
        const now = identityOf(`/proc/${target}/exe`);
        if (ab && now && inodeKey(now) !== ab.file.key && !this.execsPending.has(target)) this.noteExec(target);
      }
    }
    // Processes that came and went between two ticks still left state behind.
    for (const pid of this.assembler.pids()) if (!this.table.get(pid) && !processExists(pid)) this.assembler.forgetProcess(pid);
    for (const pid of this.activeLibs.keys()) if (!this.table.get(pid) && !processExists(pid)) this.activeLibs.delete(pid);
    this.propagation?.sweep((pid) => !this.table.get(pid) && !processExists(pid));
    if (this.stopping) return;
    for (const t of this.exeTargets) {
      if (!t.watcher) this.watchFile(t);
      this.checkExecutable(t);
    }
  }

  /** One /proc scan for every target: processes of the --exe files, and discovery. */
  private scan(): void {
    if (this.stopping) return;
    const t0 = process.hrtime.bigint();
    const counts = { denied: 0 };
    const entries = scanProcesses(counts);
    // Said again only when more processes are out of reach than before.
    if (counts.denied > this.deniedSeen) {
      this.deniedSeen = counts.denied;
      log.warn(`cannot see the executables of ${counts.denied} process(es) (EACCES on /proc/<pid>/exe): ` +
        'reading other processes needs CAP_SYS_PTRACE');
    }
    // A known process that runs another file than when it was first seen exec'd
    // (the backstop of the ring's exec events).
    if (this.table.procs.size) {
      const exeOf = new Map<number, string>();
      for (const e of entries) exeOf.set(e.pid, e.exeId);
      for (const [pid, tp] of this.table.procs) {
        const now = exeOf.get(pid);
        if (now !== undefined && now !== tp.info.exeId && !this.execsPending.has(pid)) this.noteExec(pid);
      }
    }
    if (this.exeTargets.length) this.followExeProcesses(entries);
    this.discovery?.tick(entries, t0);
  }

  /**
   * inotify on a target path: an in-place write must take the probes off
   * before a process can start from the new contents (polling in watch() is
   * the backstop). The watch follows an inode, so after a rename it is set
   * again on whatever the path holds now.
   */
  private watchFile(t: ExeTarget): void {
    t.watcher?.close();
    t.watcher = undefined;
    if (this.stopping) return;
    try {
      t.watcher = fs.watch(t.path, { persistent: false }, (event) => {
        this.checkExecutable(t);
        if (event === 'rename') setTimeout(() => this.watchFile(t), 50).unref();
      });
      t.watcher.on('error', () => { t.watcher?.close(); t.watcher = undefined; });
    } catch { /* the path is empty right now: polling re-arms it */ }
  }

  /** Exe mode: follow what the target path holds. */
  private checkExecutable(t: ExeTarget): void {
    if (this.stopping) return;
    // 1. Any attached build whose inode was rewritten in place loses its probes
    //    now: their offsets belong to contents that no longer exist.
    for (const ab of [...this.binaries.values()]) {
      if (ab.pid === 0 && ab.file.changed()) this.dropBinary(ab, 'the file was modified in place');
    }
    // 2. A build at the path that is not attached yet: attach once it is stable.
    const id = identityOf(t.path);
    if (id) {
      const attached = [...this.binaries.values()].some((ab) => sameContent(ab.file.identity, id));
      const key = `${inodeKey(id)}:${id.size}:${id.mtimeNs}:${id.ctimeNs}`;
      if (attached || t.failedBuilds.has(key)) {
        t.candidate = undefined;
      } else if (!t.candidate || !sameContent(t.candidate.id, id)) {
        t.candidate = { id, since: Date.now() };
      } else if (Date.now() - t.candidate.since >= STABLE_MS) {
        t.candidate = undefined;
        this.attachNewBuild(t, key);
      }
    }
  }

  /**
   * Exe mode, on each scan: processes of the attached builds are tracked, and
   * builds no longer at any target path and no longer run by any process are
   * let go.
   */
  private followExeProcesses(entries: ProcEntry[]): void {
    const current = new Set<string>();
    for (const t of this.exeTargets) {
      const id = identityOf(t.path);
      if (id) current.add(inodeKey(id));
    }
    const byExe = new Map<string, number[]>();
    for (const e of entries) {
      const ab = this.lookup(e.exeId);
      if (!ab || ab.origin !== 'exe') continue;
      let l = byExe.get(e.exeId);
      if (!l) byExe.set(e.exeId, (l = []));
      l.push(e.pid);
    }
    for (const ab of [...this.binaries.values()]) {
      if (ab.origin !== 'exe') continue;
      const pids = byExe.get(ab.exeId) ?? [];
      for (const pid of pids) if (!this.table.get(pid)) this.trackProcess(pid);
      if (!current.has(ab.exeId) && pids.length === 0) this.dropBinary(ab, 'no longer at the target path, and no process runs it');
    }
  }

  private attachNewBuild(t: ExeTarget, key: string): void {
    let file: PinnedFile | undefined;
    try {
      file = PinnedFile.open(t.path);
      const plan = requirePlan(analyzeTarget(file.path, t.path, this.cfg.symbols, t.path), t.path);
      // A file that discovery attached is now an --exe target's.
      const prev = this.binaries.get(file.key);
      if (prev) this.dropBinary(prev, `it is now at ${t.path}`);
      if (this.attachBinary(file.key, file, plan, 0, 'exe', t.path)) log.info(`${t.path}: a new build; probes attached to it`);
    } catch (e) {
      file?.close();
      t.failedBuilds.add(key);
      log.warn(`cannot instrument the new ${t.path}: ${(e as Error).message}`);
    }
  }

  counters(): { probe: PlannedProbe; counters: ProbeCounters; disabled?: string }[] {
    const seen = new Set<number>();
    const out: { probe: PlannedProbe; counters: ProbeCounters; disabled?: string }[] = [];
    for (const ab of this.binaries.values()) for (const p of ab.probes) {
      if (seen.has(p.probeId)) continue;
      seen.add(p.probeId);
      out.push({ probe: p, counters: this.rt.counters(p.probeId), disabled: this.disabled.get(p.probeId) });
    }
    return out;
  }

  private attachedFiles(): number {
    return this.binaries.size;
  }

  /** What the metrics endpoint and the stats file report. */
  snapshot(): AgentSnapshot {
    const procs = [...this.table.procs.values()];
    // Each traced process's cgroup gets the socket program (once per cgroup).
    if (this.propagation) for (const p of procs) if (p.selected) this.propagation.track(p.info.pid);
    this.propagation?.refreshLinks();
    return {
      ready: this.ready && !this.stopping,
      stopping: this.stopping,
      attachMode: this.rt?.mode,
      propagation: this.propagation?.report,
      probes: this.rt ? this.counters() : [],
      spans: this.assembler.stats(),
      export: this.sink.stats(),
      decodeErrors: this.decodeErrors,
      filteredSpans: this.filteredSpans,
      processes: procs,
      files: [...this.binaries.values()].map((b) => ({
        exeId: b.exeId, path: b.shownAs, origin: b.origin,
        processes: procs.filter((p) => p.selected && (b.pid ? p.info.pid === b.pid : p.info.exeId === b.exeId || b.aliases.has(p.info.exeId))).length,
      })),
      discovery: this.discovery?.stats,
      state: this.stateCounts(),
      k8s: this.table.pods ? { loaded: this.table.pods.loaded, requests: this.table.pods.requests, failures: this.table.pods.failures, lastError: this.table.pods.lastError } : undefined,
    };
  }

  /**
   * What the agent holds per process and per file: each count must return to
   * its baseline when the processes are gone (test/e2e/target-faults.test.ts).
   */
  private stateCounts(): AgentStateCounts {
    const pe = this.rt?.counters(COMMON_LAYOUTS.constants.PROCESS_EVENTS_STATS);
    const te = this.rt?.counters(COMMON_LAYOUTS.constants.THREAD_EVENTS_STATS);
    return {
      processes: this.table.procs.size,
      assemblerPids: this.assembler.pids().length,
      activeLibraryPids: this.activeLibs.size,
      files: this.binaries.size,
      aliases: this.aliases.size,
      probeConfigsInUse: MAX_PROBE_CONFIGS - 1 - this.freeConfigs.length,
      discoverySeen: this.discovery?.seenCount() ?? 0,
      tracedPidsMapEntries: this.rt ? this.rt.tracedPidCount() : 0,
      execEvents: this.execEvents,
      execsSeen: this.execsSeen,
      execEventsLost: pe ? Number(pe.drops) : 0,
      threadEvents: this.threadEvents,
      threadSpawnHits: te ? Number(te.hits) : 0,
      threadSpawnEvents: te ? Number(te.events) : 0,
      threadSpawnEventsLost: te ? Number(te.drops) : 0,
    };
  }

  /** At stop: where every span went (src/agent/accounting.ts). */
  private logLoss(): void {
    try {
      let built = 0;
      for (const lib of Object.values(this.assembler.stats())) built += lib.spans ?? 0;
      log.info(describeLoss(lossSummary(this.counters(), built, this.filteredSpans, this.sink.stats())));
    } catch (e) {
      log.debug(`loss summary: ${(e as Error).message}`);
    }
  }

  private writeStats(): void {
    try {
      const snap = this.snapshot();
      const body = {
        agentPid: process.pid,
        updated: new Date().toISOString(),
        targets: snap.processes.filter((p) => p.selected).map((p) => p.info.pid),
        excluded: snap.processes.filter((p) => !p.selected).map((p) => p.info.pid),
        attachMode: snap.attachMode,
        propagation: snap.propagation ?? null,
        files: snap.files,
        // Where each file's attached probes sit (file offsets), so a check can
        // read the traced text there (no breakpoint may be left after detach).
        probeSites: [...this.binaries.values()].map((b) => ({
          exeId: b.exeId, path: b.shownAs, pid: b.pid,
          sites: b.probes.filter((p) => b.links.has(p.probeId)).map((p) => ({
            probe: `${p.module.name}/${p.spec.id}`, fileOffsets: p.sites.map((x) => x.fileOffset),
          })),
        })),
        processes: snap.processes.map((p) => ({ pid: p.info.pid, exe: p.info.exePath, origin: p.origin, selected: p.selected, why: p.why, resource: p.resource.attributes })),
        probes: snap.probes.map(({ probe, counters, disabled }) => ({
          id: probe.probeId, module: probe.module.name, probe: probe.spec.id, symbol: probe.spec.symbol,
          site: probe.spec.site, sites: probe.sites.length,
          hits: Number(counters.hits), events: Number(counters.events), drops: Number(counters.drops),
          badLayout: Number(counters.badLayout), noEntry: Number(counters.noEntry), disabled: disabled ?? null,
        })),
        spans: snap.spans,
        export: snap.export,
        decodeErrors: snap.decodeErrors,
        filteredSpans: snap.filteredSpans,
        discovery: snap.discovery ?? null,
        state: snap.state,
        // What the agent's own memory is made of (bytes; rss is VmRSS): the V8
        // heap, and `external` / `arrayBuffers` (Buffers, WASM memories).
        memory: process.memoryUsage(),
      };
      // Root only: it names every traced process with its command line and resource.
      fs.mkdirSync(path.dirname(this.statsFile), { recursive: true, mode: 0o700 });
      const tmp = `${this.statsFile}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(body, null, 2), { mode: 0o600 });
      fs.renameSync(tmp, this.statsFile);
    } catch (e) {
      warnEvery('stats', 60_000, `cannot write ${this.statsFile}: ${(e as Error).message}`);
    }
  }

  async stop(why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.rt) log.info(`stopping: ${why}`);
    for (const t of this.timers) clearInterval(t);
    if (this.drainAgain) clearImmediate(this.drainAgain);
    for (const t of this.exeTargets) t.watcher?.close();
    this.table.pods?.stop();
    this.clock.stop();
    if (this.rt) {
      // Detach first, then drain: nothing can be written after the last drain.
      for (const ab of this.binaries.values()) for (const ls of ab.links.values()) ls.forEach((l) => l.detach());
      this.drain();
      this.writeStats();
    }
    this.recorder?.close();
    await this.sink.shutdown();
    if (this.rt) this.logLoss();
    await this.metrics?.close();
    try { fs.unlinkSync(this.statsFile); } catch { /* never written */ }
    this.propagation?.close();
    if (this.rt) this.rt.close();
    if (this.cpuProfile) { const failed = await this.cpuProfile.stop(); if (failed) log.warn(failed); }
    for (const ab of this.binaries.values()) ab.file.close();
    this.discovery?.close();
    this.resolveDone(0);
  }
}

/** Where the binary lives, for debug files next to it (file.path is a /proc/self/fd path). */
function realPathOf(file: PinnedFile, shownAs: string): string {
  try { return fs.realpathSync(file.openedAs); } catch { return shownAs; }
}

export interface AgentSnapshot {
  ready: boolean;
  stopping: boolean;
  attachMode: string | undefined;
  propagation: PropagationReport | undefined;
  probes: { probe: PlannedProbe; counters: ProbeCounters; disabled?: string }[];
  spans: Record<string, Record<string, number>>;
  export: ReturnType<SpanSink['stats']>;
  decodeErrors: number;
  filteredSpans: number;
  processes: TracedProcess[];
  files: { exeId: string; path: string; origin: Origin; processes: number }[];
  discovery: DiscoveryStats | undefined;
  state: AgentStateCounts;
  k8s: { loaded: boolean; requests: number; failures: number; lastError: string | undefined } | undefined;
}

export interface AgentStateCounts {
  /** Process table entries (traced and excluded). */
  processes: number;
  /** Pids with unfinished span state in the assembler. */
  assemblerPids: number;
  activeLibraryPids: number;
  files: number;
  aliases: number;
  probeConfigsInUse: number;
  discoverySeen: number;
  /** Entries of the traced_pids BPF map (bpf/process.bpf.c). */
  tracedPidsMapEntries: number;
  execEvents: boolean;
  execsSeen: number;
  execEventsLost: number;
  /** Threads made by traced processes arrive as ring events (sched_process_fork; span inheritance by threads). */
  threadEvents: boolean;
  /** Threads made by the processes in thread_link_pids (tracepoint runs that passed the filter), events sent, events lost. */
  threadSpawnHits: number;
  threadSpawnEvents: number;
  threadSpawnEventsLost: number;
}

/** The agent's own BPF programs (process life events), loaded beside the libraries'. */
const PROCESS_EVENTS_OBJECT = 'process.bpf.o';

/**
 * bpf() refused although the capabilities are there: in a container, the
 * runtime's seccomp profile is the usual cause (podman 4's default allows
 * bpf() only with CAP_SYS_ADMIN).
 */
function explainRefusal(e: unknown): unknown {
  if (!(e instanceof UserError) || e.exitCode !== EXIT.PRIVILEGE) return e;
  let seccomp = false;
  try { seccomp = /^Seccomp:\s*2$/m.test(fs.readFileSync('/proc/self/status', 'utf8')); } catch { /* no /proc */ }
  if (!seccomp) return e;
  return new UserError('the kernel refused bpf() although the agent has the capabilities it needs: a seccomp filter is active ' +
    '(a container runtime\'s default profile may allow bpf() only with CAP_SYS_ADMIN); run the container with seccomp unconfined or add CAP_SYS_ADMIN', EXIT.PRIVILEGE);
}

function describePlan(plan: Plan): string {
  const attached = plan.ready.filter((p) => p.status === 'ready');
  const standby = plan.ready.length - attached.length;
  return `${attached.length} probes on ${attached.reduce((n, p) => n + p.sites.length, 0)} sites` +
    `${standby ? ` (${standby} more on standby)` : ''}, rustc ${plan.binary.rustc?.version ?? '?'}, ` +
    plan.modules.filter((m) => m.active).map((m) => `${m.module.name} (${m.reason})`).join(', ');
}

function pinFile(p: string, shownAs: string): PinnedFile {
  try {
    return PinnedFile.open(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`${shownAs}: cannot open the executable (${code ?? (e as Error).message})`, code === 'EACCES' || code === 'EPERM' ? EXIT.PRIVILEGE : EXIT.TARGET);
  }
}

function probeIdOf(plan: Plan, id: string | undefined): number {
  return plan.ready.find((q) => q.spec.id === id)?.probeId ?? -1;
}
