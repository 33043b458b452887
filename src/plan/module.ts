// A probe module declares, as data, everything the agent needs to instrument
// one library: which symbols, where (entry or each return site), which BPF
// program, which Rust value layouts the program reads and which crate versions
// it is known to work with. Each library declares its module in
// src/libs/<library>/probes.ts; the planner and attacher are generic.
import type { RustLayoutName } from './layouts';
import type { BinaryInfo, FunctionSymbol } from '../binary';
import type { BinaryContextValue } from '../bpf/loader';

export type ProbeSite = 'entry' | 'return-sites';

export interface ProbeSpec {
  /** Stable id within the module, e.g. "parse". */
  id: string;
  /** Demangled path, without the legacy hash; every instance is attached. */
  symbol: string;
  site: ProbeSite;
  /** BPF program name in the module's object. */
  program: string;
  /** The Rust value whose field order the program needs (encoded in the cookie). */
  layout?: RustLayoutName;
  /** A probe that must be attached together with this one (e.g. ret sites need the entry). */
  requires?: string;
  /** Why this probe exists, shown by `inspect`. */
  purpose: string;
  /** The module produces nothing useful without this probe: if it cannot be
   * attached, the whole module stays off (and says why) instead of attaching a
   * half that would cost hits and yield no spans. */
  required?: boolean;
  /** Offsets this probe's program follows (cookie "field chain", events.h). */
  fieldChain?: FieldChainSpec;
  /** Probes made unnecessary when this one is ready. They are planned but
   * kept on standby, and attached if this one is disabled at run time. */
  replaces?: string[];
  /** A fallback: planned only when every probe named here is missing (its
   * function not in the binary, e.g. inlined by fat LTO). */
  onlyIfMissing?: string[];
  /** How the function is recognised in a binary without symbols, and the
   * check every candidate (and, with `filterNamed`, every named instance)
   * must pass before a probe goes there. */
  identify?: IdentifySpec;
  /** A u16 field of the struct an argument register points to (the cookie's
   * COOKIE_CHAIN_OFF), from the offsets database, cross-checked with the code. */
  argField?: ArgFieldSpec;
  /**
   * The offsets the program reads from its probe config (bpf/include/events.h,
   * struct probe_config), resolved for one function instance from the offsets
   * database and the function's code. A probe whose config cannot be
   * resolved is not attached, and says why. Not combined with `layout` or
   * `fieldChain` (they share cookie bits).
   */
  config?: (ctx: ConfigContext) => ConfigResult;
}

export type ArgRegister = 'RSI' | 'RDI' | 'RDX';

/** What the code of the function must show about its arguments. */
export type FunctionCheck =
  /** The function loads these words of the struct `register` points to (e.g. BytesMut ptr and len). */
  | { kind: 'arg-words'; register: ArgRegister; layout: RustLayoutName; fields: ('ptr' | 'len' | 'cap')[] }
  /** `[[register + A] + B]` (a u16 two loads away) is compared with `compareWith`. */
  | { kind: 'u16-chain'; register: ArgRegister; compareWith: number }
  /** `[register + B]` (a u16 of the struct the argument points to) is compared with `compareWith`. */
  | { kind: 'arg-u16'; register: ArgRegister; compareWith: number };

export interface IdentifySpec {
  /** Whose panic locations (offsets/signatures.json) mark the function; default: the probe's symbol.
   * A function inlined into its caller takes its panic sites along, so the
   * caller is found by the callee's locations. */
  anchorsOf?: string;
  check: FunctionCheck;
  /** A generic function: also check the instances found by name, keeping
   * those that pass (it has instances for other types too); without symbols,
   * every candidate that passes is an instance, instead of one being required. */
  filterNamed?: boolean;
}

export interface ArgFieldSpec {
  type: string;
  field: string;
  dwarf?: string;
  code: { argRegister: ArgRegister; compareWith: number };
}

export interface ConfigContext {
  binary: BinaryInfo;
  fn: FunctionSymbol;
  /** Versions of the module's crate found in the binary (the supported ones). */
  crateVersions: string[];
}

export type ConfigResult =
  | { ok: true; values: number[]; /** Where the offsets came from, shown by inspect. */ detail: string }
  | { ok: false; reason: string };

/** Facts about a whole binary that every BPF program may use (struct binary_context). */
export type BinaryContextResult =
  | { ok: true; taskIdTlsOffset: number; detail: string }
  | { ok: false; reason: string };

/**
 * A pointer field of the argument struct, followed to a u16 behind it. The
 * offsets come from the offsets database (DWARF of real builds) for the
 * binary's crate version, and are cross-checked against the function's own
 * code, which loads the same chain and compares it with a known constant.
 */
export interface FieldChainSpec {
  /** `dwarf`: the type's qualified name in DWARF, where a binary with debuginfo (or its debug file) gives the offsets itself. */
  outer: { type: string; field: string; dwarf?: string };
  inner: { type: string; field: string; dwarf?: string };
  code: { argRegister: 'RSI' | 'RDI' | 'RDX'; compareWith: number };
}

export interface CrateRequirement {
  crate: string;
  /** Inclusive lower bound and exclusive upper bound, as "x.y.z". */
  min: string;
  below: string;
  /** The module stays off when the crate's version is not found in the binary
   * (its probes sit on another crate's functions, which exist without it). */
  mustBeFound?: boolean;
}

export interface ProbeModule {
  name: string;
  /** Instrumentation scope name of the spans it produces. */
  scope: string;
  /** BPF object file name under build/bpf/ (built from src/libs/<name>/probes.bpf.c); none for a module without probes. */
  bpfObject?: string;
  crate: CrateRequirement;
  probes: ProbeSpec[];
  /** Per-binary facts this module locates for every program (tokio: the current task id in TLS). */
  binaryContext?: (binary: BinaryInfo, crateVersions: string[]) => BinaryContextResult;
  /** Per-binary facts this (active) module locates for other modules' programs (struct binary_context). */
  locateFacts?: (binary: BinaryInfo) => BinaryFactsResult;
}

export type BinaryFactsResult =
  | { ok: true; facts: Omit<BinaryContextValue, 'taskIdTlsOffset'>; detail: string }
  | { ok: false; reason: string };
