// Resolving what the user pointed at (a PID or an executable) into a binary we
// can instrument, with a clear error for everything we cannot.
import * as fs from 'node:fs';
import { analyzeBinary, BinaryInfo, type SymbolOptions } from '../binary';
import { planProbes, Plan } from '../plan/plan';
import { PROBE_MODULES } from '../libs';
import { UserError, EXIT } from '../util/errors';

export function requireProcess(pid: number): string {
  if (!fs.existsSync(`/proc/${pid}`)) throw new UserError(`process ${pid} not found`, EXIT.TARGET);
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new UserError(process.geteuid?.() === 0
        ? `permission denied reading /proc/${pid}/exe even as root: the process is outside this agent's reach (another PID or user namespace, or a ptrace policy); CAP_SYS_PTRACE over it is needed`
        : `permission denied reading /proc/${pid}/exe: run as root`, EXIT.PRIVILEGE);
    }
    if (code === 'ENOENT') throw new UserError(`process ${pid} has no executable (a kernel thread or a zombie)`, EXIT.TARGET);
    throw new UserError(`cannot read /proc/${pid}/exe: ${code}`, EXIT.TARGET);
  }
}

export function requireExecutable(p: string): string {
  let st: fs.Stats;
  try { st = fs.statSync(p); } catch { throw new UserError(`${p}: no such file`, EXIT.TARGET); }
  if (!st.isFile()) throw new UserError(`${p}: not a regular file`, EXIT.TARGET);
  try { fs.accessSync(p, fs.constants.R_OK); } catch { throw new UserError(`${p}: permission denied`, EXIT.PRIVILEGE); }
  return fs.realpathSync(p);
}

/** Reads and checks the binary: ELF, Rust. Symbols may come from elsewhere
 * (symbol-sources.ts) or, failing that, functions are identified without them
 * (the planner says which could not be). `realPath`: the binary's real
 * location, for debug files next to it. */
export function analyzeTarget(path: string, shownAs = path, symbols?: SymbolOptions, realPath = shownAs): BinaryInfo {
  let info: BinaryInfo;
  try {
    info = analyzeBinary(path, symbols, realPath);
  } catch (e) {
    // Say it with the name the user gave, not /proc/self/fd/N.
    if (e instanceof UserError && path !== shownAs) throw new UserError(e.message.split(path).join(shownAs), e.exitCode);
    throw e;
  }
  if (!info.isRust) throw new UserError(`${shownAs}: not a Rust binary (no rustc marker, no Rust symbols)`, EXIT.TARGET);
  return info;
}

/** A plan with at least one module to attach, or a UserError saying why not. */
export function requirePlan(info: BinaryInfo, shownAs: string): Plan {
  const plan = planProbes(info, PROBE_MODULES);
  if (plan.ready.length === 0) {
    const why = plan.modules.map((m) => `${m.module.name}: ${m.reason}`).join('; ');
    throw new UserError(`${shownAs}: nothing to instrument (${why})`, EXIT.TARGET);
  }
  return plan;
}
