// Discovery: every process on the host whose executable links a supported
// library, now and later, in containers too, filtered by selectors.
//
// Each scan of /proc (shared with the executable targets: one per tick) gives
// every process and the device and inode of the file it runs. A process is
// looked at when it is new or has exec'd another file, cheapest test first:
//   1. the selectors on its executable path and name (no reads);
//   2. the file: already attached (nothing to read), known not to be
//      instrumentable (cached by inode and contents), or sniffed (a few KiB:
//      is it built by rustc?) and only then analysed and planned;
//   3. the selectors on everything else (cgroup, environment, pod).
// Probes go on the file, reached through /proc/<pid>/exe: a container's file
// is its own inode, whatever its path, and N processes of one file cost one
// attachment. A file is let go when no selected process runs it any more
// (holding it open would keep a stopped container's file system busy).
import * as fs from 'node:fs';
import { PinnedFile, identityOfStats } from './pinned-file';
import { analyzeTarget, requirePlan } from './target';
import type { Plan } from '../plan/plan';
import type { ProcEntry, ProcessInfo } from '../targets/process';
import { readProcessInfo } from '../targets/process';
import { sniffRustElf } from '../targets/elf-sniff';
import { ProcessTable, TracedProcess } from './processes';
import { PROBE_MODULES } from '../libs';
import { log, warnEvery } from '../util/log';

/** The crates the probe modules instrument: a candidate's symbols name one of them. */
const CRATES = [...new Set(PROBE_MODULES.filter((m) => m.probes.length > 0).map((m) => m.crate.crate))];
// Reading and planning a file blocks the event loop (the ring is drained in
// between); past this much work in one scan, the rest waits for the next.
const SCAN_BUDGET_MS = 250;

/**
 * ignored: passed over (selectors, not instrumentable, unreadable) until it
 * runs another file; pending: facts missing, asked again next scan; tracked:
 * in the process table (looked at again if it left the table, e.g. a reused
 * pid); other: the agent itself, or a process of an --exe target's file.
 */
type SeenState = 'ignored' | 'pending' | 'tracked' | 'other';

export interface DiscoveryHost {
  /** Attached files by inode key, with how they were attached and their rustc. */
  attachedOrigin(exeId: string): { discovered: boolean; rustc?: string } | undefined;
  /**
   * Attaches `plan` to `file` for every process (pid 0): 'attached' (the file
   * is kept open), 'alias' (the same file is attached already, under another
   * mount: close this one), or 'failed'.
   */
  attachDiscovered(file: PinnedFile, plan: Plan, shownAs: string): 'attached' | 'alias' | 'failed';
  /** Lets go of the discovered files (and aliases) whose inode keys no traced process runs. */
  dropUnusedDiscovered(running: Set<string>): void;
  /** The process `pid` was tracked but now runs another file: forget it. */
  forgetProcess(pid: number, why: string): void;
  /** Called after each full analysis: lets the agent drain the ring. */
  afterAnalysis(): void;
}

export interface DiscoveryStats {
  /** Processes looked at (new or exec'd), since the start. */
  considered: number;
  /** Files sniffed, and fully analysed. */
  sniffed: number;
  analysed: number;
  /** Processes whose executable could not be read (permissions). */
  unreadable: number;
  pending: number;
  /** Processes left for the next scan (this one's time budget was spent). */
  deferred: number;
  scans: number;
  lastScanMs: number;
}

export class Discovery {
  private seen = new Map<number, { exeId: string; state: SeenState }>();
  /** Files that cannot be traced, by inode and contents: not looked at again. */
  private nonCandidates = new Map<string, string>();
  /** Analysed files whose processes wait for facts (the pod list): kept until decided, not re-read every scan. */
  private waiting = new Map<string, { file: PinnedFile; plan: Plan; used: boolean }>();
  readonly stats: DiscoveryStats = { considered: 0, sniffed: 0, analysed: 0, unreadable: 0, pending: 0, deferred: 0, scans: 0, lastScanMs: 0 };

  constructor(private readonly host: DiscoveryHost, private readonly table: ProcessTable, private readonly selfPid = process.pid) {}

  /** Pending processes (facts not known yet) are looked at again on the next scan. */
  retryPending(): void {
    for (const s of this.seen.values()) if (s.state === 'pending') s.state = 'ignored', s.exeId = '';
  }

  /** `t0`: when the /proc scan that gave `entries` started (its cost is counted). */
  tick(entries: ProcEntry[], t0 = process.hrtime.bigint()): void {
    const alive = new Set<number>();
    let pending = 0;
    let deferred = 0;
    for (const e of entries) {
      alive.add(e.pid);
      const s = this.seen.get(e.pid);
      if (s && s.exeId === e.exeId && s.state !== 'pending' && (s.state !== 'tracked' || this.table.get(e.pid))) continue;
      if (Number(process.hrtime.bigint() - t0) / 1e6 > SCAN_BUDGET_MS) { deferred++; continue; }
      const state = this.consider(e);
      this.seen.set(e.pid, { exeId: e.exeId, state });
      if (state === 'pending') pending++;
    }
    for (const pid of this.seen.keys()) if (!alive.has(pid)) this.seen.delete(pid);
    for (const [k, w] of this.waiting) {
      if (w.used) w.used = false;
      else { w.file.close(); this.waiting.delete(k); }
    }
    this.stats.pending = pending;
    this.stats.deferred = deferred;
    // Files no selected process runs any more are let go.
    const running = new Set<string>();
    for (const tp of this.table.procs.values()) if (tp.selected) running.add(tp.info.exeId);
    this.host.dropUnusedDiscovered(running);
    this.stats.scans++;
    this.stats.lastScanMs = Number(process.hrtime.bigint() - t0) / 1e6;
  }

  private consider(e: ProcEntry): SeenState {
    if (e.pid === this.selfPid) return 'other'; // never the agent itself
    this.stats.considered++;
    const known = this.table.get(e.pid);
    if (known) {
      if (known.info.exeId === e.exeId) return 'tracked';
      // Same pid, another file: it exec'd.
      this.host.forgetProcess(e.pid, `exec'd another executable`);
    }
    const info = readProcessInfo(e.pid);
    if (!info) {
      // Gone, or not ours to read: say which once in a while.
      try { fs.readlinkSync(`/proc/${e.pid}/exe`); } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') {
          this.stats.unreadable++;
          warnEvery('discover.ptrace', 60_000, `discovery: cannot read /proc/${e.pid}/exe (${code}): ` +
            'reading other processes (their executable, environment, cgroup) needs CAP_SYS_PTRACE');
        }
      }
      return 'ignored';
    }
    if (info.exeId !== e.exeId) return 'ignored'; // exec'd between the scan and now: the next scan sees it
    if (this.table.decideCheap(info).selected === false) return 'ignored';

    const attached = this.host.attachedOrigin(e.exeId);
    if (attached) {
      if (!attached.discovered) return 'other'; // an --exe target's file: that target tracks it
      return this.admit(this.table.resolve(e.pid, 'discovered', attached.rustc, info));
    }

    let st: fs.BigIntStats;
    try {
      st = fs.statSync(`/proc/${e.pid}/exe`, { bigint: true });
    } catch {
      return 'ignored';
    }
    const id = identityOfStats(st);
    const contentKey = `${id.dev}:${id.ino}:${id.size}:${id.mtimeNs}:${id.ctimeNs}`;
    if (this.nonCandidates.has(contentKey)) return 'ignored';

    const w = this.waiting.get(contentKey);
    if (w) {
      w.used = true;
      const tp = this.table.resolve(e.pid, 'discovered', w.plan.binary.rustc?.version, info);
      if (!tp) return 'pending';
      if (tp.selected) {
        this.waiting.delete(contentKey);
        const r = this.host.attachDiscovered(w.file, w.plan, info.exePath);
        if (r !== 'attached') w.file.close();
        if (r === 'failed') return 'ignored';
      }
      return this.admit(tp);
    }

    let file: PinnedFile;
    try {
      file = PinnedFile.open(`/proc/${e.pid}/exe`);
    } catch (err) {
      this.stats.unreadable++;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') {
        warnEvery('discover.eacces', 60_000, `discovery: cannot open the executable of process ${e.pid} (${info.exePath}): ${code}; ` +
          'the agent needs root with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH to read other processes\' executables');
      }
      return 'ignored';
    }
    let keep = false;
    try {
      // The file opened may be a newer one than the scan saw; its key decides.
      if (file.key !== e.exeId) return 'ignored';
      this.stats.sniffed++;
      const sniff = sniffRustElf(file.fd, CRATES);
      if (!sniff.rust) {
        this.nonCandidates.set(contentKey, sniff.why);
        log.debug(`discovery: ${info.exePath} (process ${e.pid}) not traced: ${sniff.why}`);
        return 'ignored';
      }
      const shownAs = info.exePath;
      let plan: Plan;
      try {
        this.stats.analysed++;
        plan = requirePlan(analyzeTarget(file.path, shownAs), shownAs);
      } catch (err) {
        const why = (err as Error).message;
        this.nonCandidates.set(contentKey, why);
        log.info(`discovery: process ${e.pid} not traced: ${why}`);
        return 'ignored';
      } finally {
        this.host.afterAnalysis();
      }
      const tp = this.table.resolve(e.pid, 'discovered', plan.binary.rustc?.version, info);
      if (!tp) {
        this.waiting.set(contentKey, { file, plan, used: true });
        keep = true;
        return 'pending';
      }
      if (tp.selected) {
        const r = this.host.attachDiscovered(file, plan, shownAs);
        if (r === 'failed') return 'ignored';
        keep = r === 'attached';
      }
      return this.admit(tp);
    } finally {
      if (!keep) file.close();
    }
  }

  private admit(tp: TracedProcess | undefined): SeenState {
    if (!tp) return 'pending';
    this.table.add(tp);
    return 'tracked';
  }

  /** The process exec'd: the next scan looks at it as a new one. */
  forget(pid: number): void {
    this.seen.delete(pid);
  }

  /** Processes remembered from the scans (each alive at the last one). */
  seenCount(): number {
    return this.seen.size;
  }

  close(): void {
    for (const w of this.waiting.values()) w.file.close();
    this.waiting.clear();
  }

  /** For tests and `inspect`: why a file was passed over. */
  nonCandidateReasons(): string[] {
    return [...this.nonCandidates.values()];
  }
}

export type { ProcessInfo };
