// Planning: binary + probe modules -> exactly which offsets get which BPF
// program, with which cookie, or why not. Pure: reads the binary, touches
// nothing in the kernel, so `inspect` and tests can run it unprivileged.
import type { BinaryInfo, FunctionSymbol } from '../binary';
import type { BinaryContextValue } from '../bpf/loader';
import { locateThreadCtxSlot } from '../ctx/thread-ctx-slot';
import type { ProbeModule, ProbeSpec } from './module';
import { compareVersions, resolveLayout, layoutCookieBits, ResolvedLayout } from './layouts';
import { resolveFieldChain, chainCookieBits, ResolvedChain } from './field-chain';
import { functionsFor, resolveArgField, type ResolvedArgField } from './identify';

/** standby: planned and attachable, but replaced by a better probe that is ready. */
export type ProbeStatus = 'ready' | 'standby' | 'missing' | 'disabled';

export interface ProbeSite {
  fn: FunctionSymbol;
  vaddr: number;
  fileOffset: number;
  /** Attach cookie: probe id plus what the program needs to know for this site.
   * The agent adds the binary slot and the config index when it attaches. */
  cookie: bigint;
  /** The probe config its program reads (ProbeSpec.config), if any. */
  config?: number[];
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
  chain?: ResolvedChain;
  argField?: ResolvedArgField;
  /** The probe that replaced this one (status standby). */
  replacedBy?: string;
}

export interface PlannedModule {
  module: ProbeModule;
  active: boolean;
  reason: string;
  crateVersions: string[];
  probes: PlannedProbe[];
}

/** Per-binary facts for every program (bpf/include/events.h, struct binary_context). */
export interface PlannedContext {
  /** tokio's current task id at fs_base + this offset; undefined when it cannot be located. */
  taskIdTlsOffset?: number;
  /** Where it came from, or why it is unknown. */
  detail: string;
  module?: string;
  /** Other per-binary facts modules located (ProbeModule.locateFacts), and what each said. */
  facts: Omit<BinaryContextValue, 'taskIdTlsOffset'>;
  factNotes: { module: string; ok: boolean; text: string }[];
}

export interface Plan {
  binary: BinaryInfo;
  modules: PlannedModule[];
  /** The probes to attach (status ready), and their standby fallbacks. */
  ready: PlannedProbe[];
  context: PlannedContext;
}

/** Probe ids are fixed per (module, probe) for a list of modules (the agent
 * always passes the same list, src/libs), so events and counters mean the same
 * thing across binaries and restarts. Id 0 is never used. */
export interface ProbeTableEntry { module: ProbeModule; spec: ProbeSpec; probeId: number }
const tables = new WeakMap<ProbeModule[], ProbeTableEntry[]>();

export function probeTable(modules: ProbeModule[]): ProbeTableEntry[] {
  let t = tables.get(modules);
  if (!t) {
    t = [];
    for (const m of modules) for (const spec of m.probes) t.push({ module: m, spec, probeId: t.length + 1 });
    tables.set(modules, t);
  }
  return t;
}

function inRange(v: string, min: string, below: string): boolean {
  return compareVersions(v, min) >= 0 && compareVersions(v, below) < 0;
}

export function planProbes(binary: BinaryInfo, modules: ProbeModule[]): Plan {
  const table = probeTable(modules);
  const rustc = binary.rustc?.version;
  const planned: PlannedModule[] = [];
  const context: PlannedContext = { detail: 'no module locates the current task id', facts: {}, factNotes: [] };
  for (const module of modules) {
    const versions = binary.crates.get(module.crate.crate) ?? [];
    const supported = versions.filter((v) => inRange(v, module.crate.min, module.crate.below));
    let active = true;
    let reason = '';
    if (versions.length > 0 && supported.length === 0) {
      active = false;
      reason = `${module.crate.crate} ${versions.join(', ')} is outside the supported range ${module.crate.min} to <${module.crate.below}`;
    } else if (versions.length === 0 && module.crate.mustBeFound) {
      active = false;
      reason = `${module.crate.crate} is not in the binary`;
    } else if (versions.length === 0) {
      reason = `${module.crate.crate} version not found in the binary; probes are used if their symbols exist`;
    } else {
      reason = `${module.crate.crate} ${supported.join(', ')}`;
    }
    // Fallbacks (onlyIfMissing) are planned after the probes they stand in for.
    const probes: PlannedProbe[] = new Array(module.probes.length);
    const order = module.probes.map((spec, i) => ({ spec, i })).sort((a, b) => Number(!!a.spec.onlyIfMissing) - Number(!!b.spec.onlyIfMissing));
    for (const { spec, i } of order) {
      // Found: planned and not missing (a fallback that was not needed itself does not count).
      const present = spec.onlyIfMissing?.filter((id) => probes.find((p) => p?.spec.id === id && p.status !== 'missing' && !(p.spec.onlyIfMissing && p.functions.length === 0)));
      if (present && present.length > 0) {
        probes[i] = { module, spec, probeId: table.find((t) => t.module === module && t.spec === spec)?.probeId ?? 0, status: 'disabled',
          reason: `not needed: ${present.join(', ')} found`, notes: [], functions: [], sites: [] };
        continue;
      }
      probes[i] = planOne(binary, module, spec, rustc, active, supported.length ? supported : versions, table);
    }
    // A module without probes only provides facts about the binary.
    if (module.probes.length === 0) {
      if (active && module.binaryContext) {
        const r = module.binaryContext(binary, supported.length ? supported : versions);
        if (r.ok) {
          context.taskIdTlsOffset = r.taskIdTlsOffset;
          context.detail = r.detail;
          context.module = module.name;
          reason = r.detail;
        } else {
          active = false;
          reason = r.reason;
          if (context.module === undefined) context.detail = `${module.name}: ${r.reason}`;
        }
      } else if (active) {
        active = false;
        reason = `nothing to provide (${reason})`;
      }
      planned.push({ module, active, reason, crateVersions: versions, probes });
      continue;
    }
    // A probe whose partner is not ready cannot work alone (ret sites need their entry).
    for (const p of probes) {
      if (p.status !== 'ready' || !p.spec.requires) continue;
      const dep = probes.find((q) => q.spec.id === p.spec.requires);
      if (!dep || dep.status !== 'ready') {
        p.status = 'disabled';
        p.reason = `needs probe "${p.spec.requires}", which is ${dep?.status ?? 'absent'}`;
      }
    }
    // A ready probe that replaces others puts them on standby.
    for (const p of probes) {
      if (p.status !== 'ready' || !p.spec.replaces) continue;
      for (const q of probes) {
        if (q.status === 'ready' && p.spec.replaces.includes(q.spec.id)) {
          q.status = 'standby';
          q.replacedBy = p.spec.id;
          q.reason = `standby: ${p.spec.id} is used instead (attached if ${p.spec.id} is disabled)`;
        }
      }
    }
    const replacedByReady = (p: PlannedProbe) => probes.some((r) => r.status === 'ready' && r.spec.replaces?.includes(p.spec.id));
    const missingRequired = probes.filter((p) => p.spec.required && p.status !== 'ready' && p.status !== 'standby' && !replacedByReady(p));
    if (active && missingRequired.length > 0) {
      active = false;
      const which = missingRequired.map((p) => `${p.spec.id}: ${p.reason}`).join('; ');
      reason = `required probe not available (${which})` + (reason ? `; ${reason}` : '');
    } else if (active && probes.every((p) => p.status !== 'ready')) {
      active = false;
      reason = `no probe of ${module.name} can be attached` + (reason ? ` (${reason})` : '');
    }
    // Facts an active module locates for other modules' programs (otel-sdk: the current span).
    if (module.locateFacts && active) {
      const r = module.locateFacts(binary);
      if (r.ok) Object.assign(context.facts, r.facts);
      context.factNotes.push({ module: module.name, ok: r.ok, text: r.ok ? r.detail : r.reason });
    }
    planned.push({ module, active, reason, crateVersions: versions, probes });
  }
  // OTEP 4947: the process's published thread context, whatever wrote it.
  const tctx = locateThreadCtxSlot(binary);
  if (tctx) {
    if (tctx.ok) context.facts.threadCtxOff = tctx.offset;
    context.factNotes.push({ module: 'thread-ctx', ok: tctx.ok, text: tctx.ok ? tctx.detail : tctx.reason });
  }
  // Ready and standby: the agent attaches the ready ones and keeps the others at hand.
  const ready = planned.filter((m) => m.active).flatMap((m) => m.probes.filter((p) => p.status === 'ready' || p.status === 'standby'));
  return { binary, modules: planned, ready, context };
}

/** OTEL_RUST_AGENT_DISABLE_PROBES=probe[,module/probe...]: probes the user turned off. */
function disabledByUser(module: ProbeModule, spec: ProbeSpec): boolean {
  const v = process.env.OTEL_RUST_AGENT_DISABLE_PROBES;
  if (!v) return false;
  return v.split(',').map((x) => x.trim()).some((x) => x === spec.id || x === `${module.name}/${spec.id}`);
}

function planOne(binary: BinaryInfo, module: ProbeModule, spec: ProbeSpec, rustc: string | undefined, moduleActive: boolean, crateVersions: string[],
  table: ProbeTableEntry[]): PlannedProbe {
  const probeId = table.find((t) => t.module === module && t.spec === spec)?.probeId ?? 0;
  const base: PlannedProbe = {
    module, spec, probeId, status: 'missing', reason: '', notes: [], functions: [], sites: [],
  };
  let cookie = BigInt(probeId);
  if (!moduleActive) {
    base.status = 'disabled';
    base.reason = 'library version not supported';
    return base;
  }
  if (disabledByUser(module, spec)) {
    base.status = 'disabled';
    base.reason = 'disabled by OTEL_RUST_AGENT_DISABLE_PROBES';
    return base;
  }
  const found = functionsFor(binary, module, spec, crateVersions);
  const fns = found.fns;
  base.functions = fns;
  if (!found.ok) {
    base.reason = found.reason;
    return base;
  }
  if (fns.length === 0) {
    base.reason = 'symbol not found (not linked, or inlined by LTO)';
    return base;
  }
  base.notes.push(...found.notes);
  if (spec.layout) {
    const layout = resolveLayout(spec.layout, rustc);
    if (!layout) {
      base.status = 'disabled';
      base.reason = `no known layout for ${spec.layout}`;
      return base;
    }
    base.layout = layout;
    cookie |= layoutCookieBits(layout);
    if (layout.source !== 'db-exact') base.notes.push(`${spec.layout} layout from ${layout.from} (checked on every hit)`);
  }
  // Each function symbol is an instance; its index travels in the cookie
  // (events.h COOKIE_INSTANCE) so state is kept per instance.
  const ordered = [...fns].sort((a, b) => a.vaddr - b.vaddr);
  const perFn = new Map<FunctionSymbol, bigint>(fns.map((fn) => [fn, cookie | (BigInt(ordered.indexOf(fn) & 0xff) << 48n)]));
  if (spec.fieldChain) {
    for (const fn of fns) {
      const r = resolveFieldChain(binary, fn, spec.fieldChain, module.crate.crate, crateVersions);
      if (!r.ok) {
        base.status = 'disabled';
        base.reason = `offsets unknown: ${r.reason}`;
        return base;
      }
      base.chain = r.chain;
      perFn.set(fn, perFn.get(fn)! | chainCookieBits(r.chain));
    }
    base.notes.push(`${spec.fieldChain.outer.type}.${spec.fieldChain.outer.field} = ${base.chain!.outerOffset}, ` +
      `${spec.fieldChain.inner.type}.${spec.fieldChain.inner.field} = ${base.chain!.innerOffset} (${base.chain!.source}: ${base.chain!.detail})`);
  }
  if (spec.argField) {
    for (const fn of fns) {
      const r = resolveArgField(binary, fn, spec.argField, module.crate.crate, crateVersions);
      if (!r.ok) {
        base.status = 'disabled';
        base.reason = `offsets unknown: ${r.reason}`;
        return base;
      }
      base.argField = r.field;
      perFn.set(fn, perFn.get(fn)! | (BigInt(r.field.offset & 0xffff) << 24n));
    }
    base.notes.push(`${spec.argField.type}.${spec.argField.field} = ${base.argField!.offset} (${base.argField!.source}: ${base.argField!.detail})`);
  }
  const configs = new Map<FunctionSymbol, number[]>();
  if (spec.config) {
    if (spec.layout || spec.fieldChain || spec.argField) throw new Error(`${module.name}/${spec.id}: a probe config cannot be combined with a layout, field chain or arg field (they share cookie bits)`);
    const details = new Set<string>();
    for (const fn of fns) {
      const r = spec.config({ binary, fn, crateVersions });
      if (!r.ok) {
        base.status = 'disabled';
        base.reason = `offsets unknown: ${r.reason}`;
        return base;
      }
      configs.set(fn, r.values);
      details.add(r.detail);
    }
    for (const d of details) base.notes.push(d);
  }
  if (spec.site === 'entry') {
    base.sites = fns.map((fn) => ({ fn, vaddr: fn.vaddr, fileOffset: fn.fileOffset, cookie: perFn.get(fn)!, config: configs.get(fn) }));
  } else {
    let tails = 0;
    let indirect = 0;
    for (const fn of fns) {
      const exits = binary.returnSites(fn);
      tails += exits.tailJumps.length;
      indirect += exits.indirectJumps.length;
      for (const r of exits.rets) base.sites.push({ fn, vaddr: r.vaddr, fileOffset: r.fileOffset, cookie: perFn.get(fn)!, config: configs.get(fn) });
    }
    if (base.sites.length === 0) {
      base.status = 'disabled';
      base.reason = 'no ret instruction found: every exit is a tail call';
      return base;
    }
    if (tails > 0) base.notes.push(`${tails} tail-call exit(s) are not covered`);
    // Usually jump tables inside the function; if one is a tail call through a
    // pointer, that exit is not seen (a missing span end, never a wrong one).
    if (indirect > 0) base.notes.push(`${indirect} indirect jump(s): exits through them, if any, are not covered`);
  }
  base.status = 'ready';
  base.reason = `${fns.length} symbol(s), ${base.sites.length} site(s)`;
  return base;
}
