// The running agent: binary -> plan -> attach -> events -> spans -> export.
//
// Targets:
//  - by PID: probes are attached with that PID as the filter; the agent stops
//    when the process exits.
//  - by executable: probes are attached to the file for every process (pid 0),
//    so processes that start later are traced from their first instruction,
//    with no polling race. A watcher notices new processes (for their resource)
//    and exits, and re-attaches when the file is replaced by a new build.
// Either way the binary is held open (PinnedFile) and analysed and attached
// through that descriptor, so the offsets always belong to the inode probed;
// a file rewritten in place loses its probes at once (inotify plus polling).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BpfRuntime, Link, ProbeCounters } from '../bpf/loader';
import { SpanAssembler } from '../spans/assembler';
import type { SpanRecord } from '../spans/record';
import type { ProcessResource } from '../spans/types';
import { LIBRARIES, PROBE_MODULES } from '../libs';
import type { SpanSink } from '../export/exporter';
import { Plan, PlannedProbe } from '../plan/plan';
import { readProcessInfo, processExists, processesOfExecutable, buildResource, ProcessInfo } from '../targets/process';
import { PinnedFile, identityOf, inodeKey, sameContent, FileIdentity } from './pinned-file';
import { analyzeTarget, requirePlan, requireExecutable, requireProcess } from './target';
import { checkTracingPrivileges } from './privileges';
import { bpfObjectPath } from '../util/paths';
import { log, warnEvery } from '../util/log';
import { WallClock } from '../util/clock';
import { UserError, EXIT } from '../util/errors';
import type { AgentConfig } from '../cli/config';
import { COMMON_LAYOUTS } from '../events/header';


// 16 MiB: about 30k request records of the common size, over half a second
// of traffic at 50k requests/s, if the agent's event loop stalls.
const RING_SIZE = 16 << 20;
const DRAIN_MS = 10;
const HEALTH_MS = 1000;
const WATCH_MS = 250;
// A probe whose layout check fails this often without a single good event is
// reading something else than we think: detach it rather than guess.
const BAD_LAYOUT_LIMIT = 16;
// A new build is attached only once its file has not changed for this long:
// a deploy may still be writing it.
const STABLE_MS = 500;

interface AttachedBinary {
  exeId: string;
  file: PinnedFile;
  pid: number;
  plan: Plan;
  links: Map<number, Link[]>; // probeId -> links
  /** Index in the BPF binary_contexts table (cookie bits 56..63). */
  slot: number;
  /** Probe config indexes this binary holds, by probe id and config text. */
  configs: Map<string, number>;
}

const MAX_BINARIES = COMMON_LAYOUTS.constants.MAX_BINARIES;
const MAX_PROBE_CONFIGS = COMMON_LAYOUTS.constants.MAX_PROBE_CONFIGS;

interface TracedProcess {
  info: ProcessInfo;
  resource: ProcessResource;
}

export class Agent {
  private rt!: BpfRuntime;
  private clock = new WallClock();
  private assembler: SpanAssembler;
  private binaries = new Map<string, AttachedBinary>();
  private procs = new Map<number, TracedProcess>();
  private timers: NodeJS.Timeout[] = [];
  private disabled = new Map<number, string>(); // probeId -> why
  private lastDrops = new Map<number, bigint>();
  private decodeErrors = 0;
  private freeSlots = Array.from({ length: MAX_BINARIES }, (_, i) => i);
  private freeConfigs = Array.from({ length: MAX_PROBE_CONFIGS - 1 }, (_, i) => i + 1);
  /** Library names active per traced pid (SpanOutput.libraryActive), filled on first use. */
  private activeLibs = new Map<number, Set<string>>();
  private stopping = false;
  private watcher: fs.FSWatcher | undefined;
  /** A new build seen at the target path, waiting to be stable. */
  private candidate: { id: FileIdentity; since: number } | undefined;
  /** Builds that could not be instrumented, so they are not re-read every tick. */
  private failedBuilds = new Set<string>();
  private done!: Promise<number>;
  private resolveDone!: (code: number) => void;
  readonly statsFile: string;

  constructor(private readonly cfg: AgentConfig, private readonly sink: SpanSink) {
    this.assembler = new SpanAssembler(LIBRARIES, {
      toUnixNano: (ns) => this.clock.toUnixNano(ns),
      emit: (span) => this.emit(span),
      libraryActive: (pid, library) => this.librariesOf(pid).has(library),
    }, { rpcDup: cfg.semconvRpcDup });
    this.statsFile = cfg.statsFile ?? path.join('/run/otel-rust-agent', `${process.pid}.json`);
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Attaches and starts tracing; resolves with the exit code when the agent stops. */
  async run(): Promise<number> {
    const { cfg } = this;
    let file: PinnedFile;
    let shownAs: string;
    if (cfg.targetPid !== undefined) {
      shownAs = requireProcess(cfg.targetPid);
      file = pinFile(`/proc/${cfg.targetPid}/exe`, shownAs);
    } else if (cfg.targetExe !== undefined) {
      file = pinFile(requireExecutable(cfg.targetExe), cfg.targetExe);
      shownAs = cfg.targetExe;
    } else {
      throw new Error('no target');
    }
    let plan: Plan;
    try {
      plan = requirePlan(analyzeTarget(file.path, shownAs), shownAs);
      checkTracingPrivileges();
    } catch (e) {
      file.close();
      throw e;
    }

    this.clock.start();
    // By executable, later builds may use libraries this one does not: load
    // every library's programs then. By PID, the plan's are all there will be.
    const needed = cfg.targetExe !== undefined ? PROBE_MODULES : plan.ready.map((p) => p.module);
    const objects = [...new Set(needed.map((m) => m.bpfObject).filter((o): o is string => !!o))].map(bpfObjectPath);
    this.rt = new BpfRuntime(objects, RING_SIZE);
    this.rt.load();
    this.attachBinary(cfg.targetPid !== undefined ? `pid:${cfg.targetPid}` : file.key, file, plan, cfg.targetPid ?? 0);
    if (cfg.targetPid !== undefined) this.confirmProcessImage(cfg.targetPid, file);
    const attached = plan.ready.filter((p) => p.status === 'ready');
    const standby = plan.ready.length - attached.length;
    log.info(`tracing ${cfg.targetPid !== undefined ? `process ${cfg.targetPid} (${shownAs})` : `every process of ${shownAs}`}: ` +
      `${attached.length} probes on ${attached.reduce((n, p) => n + p.sites.length, 0)} sites` +
      `${standby ? ` (${standby} more on standby)` : ''}, rustc ${plan.binary.rustc?.version ?? '?'}, ` +
      `${plan.modules.filter((m) => m.active).map((m) => `${m.module.name} (${m.reason})`).join(', ')}, attach mode ${this.rt.mode}`);

    if (cfg.targetPid !== undefined) this.trackProcess(cfg.targetPid);
    else {
      for (const pid of processesOfExecutable(file.key)) this.trackProcess(pid);
      this.watchFile(cfg.targetExe!);
    }

    this.timers.push(setInterval(() => this.drain(), DRAIN_MS));
    this.timers.push(setInterval(() => this.health(), HEALTH_MS));
    this.timers.push(setInterval(() => this.watch(), WATCH_MS));
    if (cfg.durationSec > 0) this.timers.push(setTimeout(() => void this.stop('duration elapsed'), cfg.durationSec * 1000));
    this.writeStats();
    return this.done;
  }

  /**
   * By PID the probes sit on the inode the process ran when we opened it. If
   * it has exec'd something else since, they can never fire in it: say so and
   * stop rather than trace nothing.
   */
  private confirmProcessImage(pid: number, file: PinnedFile): void {
    const now = identityOf(`/proc/${pid}/exe`);
    if (!now || inodeKey(now) !== file.key) {
      void this.stop(`process ${pid} exited or runs another executable since it was analysed`);
    }
  }

  private attachBinary(key: string, file: PinnedFile, plan: Plan, pid: number): void {
    const slot = this.freeSlots.shift();
    if (slot === undefined) throw new UserError(`more than ${MAX_BINARIES} builds attached at once`, EXIT.FAILURE);
    const ab: AttachedBinary = { exeId: key, file, pid, plan, links: new Map(), slot, configs: new Map() };
    this.rt.setBinaryContext(slot, { taskIdTlsOffset: plan.context.taskIdTlsOffset });
    this.binaries.set(key, ab);
    this.activeLibs.clear();
    for (const p of plan.ready) {
      if (this.disabled.has(p.probeId)) continue;
      // A replacement already disabled at run time: use what it replaced.
      if (p.status === 'standby' && !this.disabled.has(probeIdOf(plan, p.replacedBy))) continue;
      this.attachProbe(ab, p);
    }
    // Written in place between our read and the attach: take it all off again.
    if (file.changed()) this.dropBinary(ab, 'was modified while the probes were being attached');
  }

  private dropBinary(ab: AttachedBinary, why: string): void {
    for (const ls of ab.links.values()) ls.forEach((l) => l.detach());
    ab.links.clear();
    ab.file.close();
    this.binaries.delete(ab.exeId);
    this.rt.setBinaryContext(ab.slot, {});
    this.freeSlots.push(ab.slot);
    for (const idx of ab.configs.values()) this.freeConfigs.push(idx);
    ab.configs.clear();
    this.activeLibs.clear();
    log.info(`probes removed from ${ab.file.openedAs}: ${why}`);
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

  /** The planned cookie plus the binary slot and, for a probe with a config, its config index (written here). */
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

  /** Libraries with probes attached in the binary `pid` runs (probe-less ones when their module is active). */
  private librariesOf(pid: number): Set<string> {
    let libs = this.activeLibs.get(pid);
    if (libs) return libs;
    libs = new Set();
    const exeId = this.procs.get(pid)?.info.exeId ?? readProcessInfo(pid)?.exeId;
    const bins = [...this.binaries.values()];
    const ab = bins.find((b) => b.pid === pid) ?? bins.find((b) => b.file.key === exeId) ?? (bins.length === 1 ? bins[0] : undefined);
    if (ab) {
      for (const m of ab.plan.modules) if (m.active && m.probes.length === 0) libs.add(m.module.name);
      for (const [probeId, ls] of ab.links) {
        if (ls.length === 0 || this.disabled.has(probeId)) continue;
        const p = ab.plan.ready.find((q) => q.probeId === probeId);
        if (p) libs.add(p.module.name);
      }
    }
    this.activeLibs.set(pid, libs);
    return libs;
  }

  private trackProcess(pid: number): TracedProcess | undefined {
    let tp = this.procs.get(pid);
    if (tp) return tp;
    const info = readProcessInfo(pid);
    if (!info) return undefined;
    const ab = [...this.binaries.values()].find((b) => b.file.key === info.exeId) ?? [...this.binaries.values()][0];
    const resource = buildResource(info, {
      serviceName: this.cfg.serviceName,
      extra: this.cfg.resourceAttributes,
      rustcVersion: ab?.plan.binary.rustc?.version,
    });
    tp = { info, resource };
    this.procs.set(pid, tp);
    log.info(`process ${pid} traced (${info.exePath})`);
    return tp;
  }

  private emit(span: SpanRecord): void {
    const tp = this.procs.get(span.pid) ?? this.trackProcess(span.pid);
    const resource = tp?.resource ?? { pid: span.pid, attributes: { 'service.name': this.cfg.serviceName ?? 'unknown_service', 'process.pid': span.pid } };
    this.sink.submit(span, resource);
  }

  private drain(): void {
    this.rt.ring.drain((dv, off, len) => {
      try {
        this.assembler.handle(dv, off, len);
      } catch (e) {
        this.decodeErrors++;
        warnEvery('decode', 10_000, `dropped an event that could not be decoded: ${(e as Error).message}`);
      }
    });
  }

  /** Counters: ring-buffer drops and layout-check failures; stale requests. */
  private health(): void {
    this.assembler.expire(process.hrtime.bigint());
    for (const ab of this.binaries.values()) {
      for (const p of ab.plan.ready) {
        if (this.disabled.has(p.probeId)) continue;
        const c = this.rt.counters(p.probeId);
        const lastD = this.lastDrops.get(p.probeId) ?? 0n;
        if (c.drops > lastD) {
          warnEvery('drops', 10_000, `ring buffer full: ${c.drops - lastD} events of ${p.module.name}/${p.spec.id} dropped (traffic exceeds what the agent drains)`);
          this.lastDrops.set(p.probeId, c.drops);
        }
        if (c.badLayout >= BAD_LAYOUT_LIMIT && c.events === 0n && (p.spec.site === 'entry' ? true : c.noEntry === 0n)) {
          this.disableProbe(p, `its ${p.spec.layout ?? 'data'} layout check failed ${c.badLayout} times with no good read (layout from ${p.layout?.from ?? '?'})`);
        }
      }
    }
    this.writeStats();
  }

  private disableProbe(p: PlannedProbe, why: string): void {
    // Disabling one probe of a module disables the ones that depend on it.
    const victims = [p, ...[...this.binaries.values()].flatMap((ab) => ab.plan.ready.filter((q) => q.module === p.module && q.spec.requires === p.spec.id))];
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
      for (const q of ab.plan.ready) {
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

  private watch(): void {
    for (const pid of [...this.procs.keys()]) {
      const tp = this.procs.get(pid)!;
      const now = readProcessInfo(pid);
      if (!processExists(pid) || !now || now.startTime !== tp.info.startTime) {
        this.drain(); // its last events
        const lost = this.assembler.forgetProcess(pid);
        this.procs.delete(pid);
        log.info(`process ${pid} exited${lost ? ` (${lost} request(s) without a response)` : ''}`);
        if (this.cfg.targetPid === pid) void this.stop(`process ${pid} exited`);
      }
    }
    // Processes that came and went between two ticks still left state behind.
    for (const pid of this.assembler.pids()) if (!this.procs.has(pid) && !processExists(pid)) this.assembler.forgetProcess(pid);
    if (this.cfg.targetExe !== undefined && !this.stopping) {
      if (!this.watcher) this.watchFile(this.cfg.targetExe);
      this.checkExecutable(this.cfg.targetExe);
    }
  }

  /**
   * inotify on the target path: an in-place write must take the probes off
   * before a process can start from the new contents (polling in watch() is
   * the backstop). The watch follows an inode, so after a rename it is set
   * again on whatever the path holds now.
   */
  private watchFile(exe: string): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.stopping) return;
    try {
      this.watcher = fs.watch(exe, { persistent: false }, (event) => {
        this.checkExecutable(exe);
        if (event === 'rename') setTimeout(() => this.watchFile(exe), 50).unref();
      });
      this.watcher.on('error', () => { this.watcher?.close(); this.watcher = undefined; });
    } catch { /* the path is empty right now: polling re-arms it */ }
  }

  /** Exe mode: follow what the target path holds. */
  private checkExecutable(exe: string): void {
    if (this.stopping) return;
    // 1. Any attached build whose inode was rewritten in place loses its probes
    //    now: their offsets belong to contents that no longer exist.
    for (const ab of [...this.binaries.values()]) {
      if (ab.pid === 0 && ab.file.changed()) this.dropBinary(ab, 'the file was modified in place');
    }
    // 2. A build at the path that is not attached yet: attach once it is stable.
    const id = identityOf(exe);
    if (id) {
      const attached = [...this.binaries.values()].some((ab) => sameContent(ab.file.identity, id));
      const key = `${inodeKey(id)}:${id.size}:${id.mtimeNs}:${id.ctimeNs}`;
      if (attached || this.failedBuilds.has(key)) {
        this.candidate = undefined;
      } else if (!this.candidate || !sameContent(this.candidate.id, id)) {
        this.candidate = { id, since: Date.now() };
      } else if (Date.now() - this.candidate.since >= STABLE_MS) {
        this.candidate = undefined;
        this.attachNewBuild(exe, key);
      }
    }
    // 3. Builds no longer at the path and no longer run by any process are let go.
    const current = id ? inodeKey(id) : undefined;
    for (const ab of [...this.binaries.values()]) {
      if (ab.pid !== 0) continue;
      const pids = processesOfExecutable(ab.file.key);
      for (const pid of pids) if (!this.procs.has(pid)) this.trackProcess(pid);
      if (ab.file.key !== current && pids.length === 0) this.dropBinary(ab, 'no longer at the target path, and no process runs it');
    }
  }

  private attachNewBuild(exe: string, key: string): void {
    let file: PinnedFile | undefined;
    try {
      file = PinnedFile.open(exe);
      const plan = requirePlan(analyzeTarget(file.path, exe), exe);
      this.attachBinary(file.key, file, plan, 0);
      log.info(`${exe}: a new build; probes attached to it`);
    } catch (e) {
      file?.close();
      this.failedBuilds.add(key);
      log.warn(`cannot instrument the new ${exe}: ${(e as Error).message}`);
    }
  }

  counters(): { probe: PlannedProbe; counters: ProbeCounters; disabled?: string }[] {
    const seen = new Set<number>();
    const out: { probe: PlannedProbe; counters: ProbeCounters; disabled?: string }[] = [];
    for (const ab of this.binaries.values()) for (const p of ab.plan.ready) {
      if (seen.has(p.probeId)) continue;
      seen.add(p.probeId);
      out.push({ probe: p, counters: this.rt.counters(p.probeId), disabled: this.disabled.get(p.probeId) });
    }
    return out;
  }

  private writeStats(): void {
    try {
      const body = {
        agentPid: process.pid,
        updated: new Date().toISOString(),
        targets: [...this.procs.keys()],
        attachMode: this.rt?.mode,
        probes: this.counters().map(({ probe, counters, disabled }) => ({
          id: probe.probeId, module: probe.module.name, probe: probe.spec.id, symbol: probe.spec.symbol,
          site: probe.spec.site, sites: probe.sites.length,
          hits: Number(counters.hits), events: Number(counters.events), drops: Number(counters.drops),
          badLayout: Number(counters.badLayout), noEntry: Number(counters.noEntry), disabled: disabled ?? null,
        })),
        spans: this.assembler.stats(),
        export: this.sink.stats(),
        decodeErrors: this.decodeErrors,
      };
      fs.mkdirSync(path.dirname(this.statsFile), { recursive: true });
      const tmp = `${this.statsFile}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(body, null, 2));
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
    this.watcher?.close();
    this.clock.stop();
    if (this.rt) {
      // Detach first, then drain: nothing can be written after the last drain.
      for (const ab of this.binaries.values()) for (const ls of ab.links.values()) ls.forEach((l) => l.detach());
      this.drain();
      this.writeStats();
    }
    await this.sink.shutdown();
    try { fs.unlinkSync(this.statsFile); } catch { /* never written */ }
    if (this.rt) this.rt.close();
    for (const ab of this.binaries.values()) ab.file.close();
    this.resolveDone(0);
  }
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
