// Planning: binary + probe modules -> exactly which offsets get which BPF
// program, with which cookie, or why not. Pure: reads the binary, touches
// nothing in the kernel, so `inspect` and tests can run it unprivileged.
import type { BinaryInfo, FunctionSymbol } from '../binary';
import { PROBE_MODULES } from '../probes';
import type { ProbeModule, ProbeSpec } from '../probes/types';
import { compareVersions, resolveLayout, layoutCookieBits, ResolvedLayout } from './layouts';

export type ProbeStatus = 'ready' | 'missing' | 'disabled';

export interface ProbeSite {
  fn: FunctionSymbol;
  vaddr: number;
  fileOffset: number;
}

export interface PlannedProbe {
  module: ProbeModule;
  spec: ProbeSpec;
  /** Global id: echoed in events and indexes the BPF counters. */
  probeId: number;
  status: ProbeStatus;
  reason: string;
  /** Extra facts worth showing (tail calls not covered, layout source, ...). */
  notes: string[];
  functions: FunctionSymbol[];
  sites: ProbeSite[];
  layout?: ResolvedLayout;
  cookie: bigint;
}

export interface PlannedModule {
  module: ProbeModule;
  active: boolean;
  reason: string;
  crateVersions: string[];
  probes: PlannedProbe[];
}

export interface Plan {
  binary: BinaryInfo;
  modules: PlannedModule[];
  /** The probes to attach. */
  ready: PlannedProbe[];
}

/** Probe ids are fixed per (module, probe) for the whole agent run, so events
 * and counters mean the same thing across binaries and restarts. */
export const PROBE_TABLE: { module: ProbeModule; spec: ProbeSpec; probeId: number }[] = [];
PROBE_MODULES.forEach((m) => m.probes.forEach((spec) => PROBE_TABLE.push({ module: m, spec, probeId: PROBE_TABLE.length + 1 })));

export function probeById(id: number): { module: ProbeModule; spec: ProbeSpec } | undefined {
  return PROBE_TABLE[id - 1];
}

function inRange(v: string, min: string, below: string): boolean {
  return compareVersions(v, min) >= 0 && compareVersions(v, below) < 0;
}

export function planProbes(binary: BinaryInfo, modules: ProbeModule[] = PROBE_MODULES): Plan {
  const rustc = binary.rustc?.version;
  const planned: PlannedModule[] = [];
  for (const module of modules) {
    const versions = binary.crates.get(module.crate.crate) ?? [];
    const supported = versions.filter((v) => inRange(v, module.crate.min, module.crate.below));
    let active = true;
    let reason = '';
    if (versions.length > 0 && supported.length === 0) {
      active = false;
      reason = `${module.crate.crate} ${versions.join(', ')} is outside the supported range ${module.crate.min} to <${module.crate.below}`;
    } else if (versions.length === 0) {
      reason = `${module.crate.crate} version not found in the binary; probes are used if their symbols exist`;
    } else {
      reason = `${module.crate.crate} ${supported.join(', ')}`;
    }
    const probes = module.probes.map((spec) => planOne(binary, module, spec, rustc, active));
    // A probe whose partner is not ready cannot work alone (ret sites need their entry).
    for (const p of probes) {
      if (p.status !== 'ready' || !p.spec.requires) continue;
      const dep = probes.find((q) => q.spec.id === p.spec.requires);
      if (!dep || dep.status !== 'ready') {
        p.status = 'disabled';
        p.reason = `needs probe "${p.spec.requires}", which is ${dep?.status ?? 'absent'}`;
      }
    }
    const missingRequired = probes.filter((p) => p.spec.required && p.status !== 'ready');
    if (active && missingRequired.length > 0) {
      active = false;
      const which = missingRequired.map((p) => `${p.spec.id}: ${p.reason}`).join('; ');
      reason = `required probe not available (${which})` + (reason ? `; ${reason}` : '');
    } else if (active && probes.every((p) => p.status !== 'ready')) {
      active = false;
      reason = `no probe of ${module.name} can be attached` + (reason ? ` (${reason})` : '');
    }
    planned.push({ module, active, reason, crateVersions: versions, probes });
  }
  const ready = planned.filter((m) => m.active).flatMap((m) => m.probes.filter((p) => p.status === 'ready'));
  return { binary, modules: planned, ready };
}

function planOne(binary: BinaryInfo, module: ProbeModule, spec: ProbeSpec, rustc: string | undefined, moduleActive: boolean): PlannedProbe {
  const probeId = PROBE_TABLE.find((t) => t.module === module && t.spec === spec)?.probeId ?? 0;
  const base: PlannedProbe = {
    module, spec, probeId, status: 'missing', reason: '', notes: [], functions: [], sites: [], cookie: BigInt(probeId),
  };
  if (!moduleActive) {
    base.status = 'disabled';
    base.reason = 'library version not supported';
    return base;
  }
  const fns = binary.functionsByName(spec.symbol);
  base.functions = fns;
  if (fns.length === 0) {
    base.reason = binary.stripped
      ? 'binary is stripped: no symbol table'
      : 'symbol not found (not linked, or inlined by LTO)';
    return base;
  }
  if (spec.layout) {
    const layout = resolveLayout(spec.layout, rustc);
    if (!layout) {
      base.status = 'disabled';
      base.reason = `no known layout for ${spec.layout}`;
      return base;
    }
    base.layout = layout;
    base.cookie |= layoutCookieBits(layout);
    if (layout.source !== 'db-exact') base.notes.push(`${spec.layout} layout from ${layout.from} (checked on every hit)`);
  }
  if (spec.site === 'entry') {
    base.sites = fns.map((fn) => ({ fn, vaddr: fn.vaddr, fileOffset: fn.fileOffset }));
  } else {
    let tails = 0;
    for (const fn of fns) {
      const exits = binary.returnSites(fn);
      tails += exits.tailJumps.length;
      for (const r of exits.rets) base.sites.push({ fn, vaddr: r.vaddr, fileOffset: r.fileOffset });
    }
    if (base.sites.length === 0) {
      base.status = 'disabled';
      base.reason = 'no ret instruction found: every exit is a tail call';
      return base;
    }
    if (tails > 0) base.notes.push(`${tails} tail-call exit(s) are not covered`);
  }
  base.status = 'ready';
  base.reason = `${fns.length} symbol(s), ${base.sites.length} site(s)`;
  return base;
}
