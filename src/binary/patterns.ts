// Facts read from a function's own machine code. The compiled code is the
// ground truth for the exact binary we attach to: where it loads a field,
// the offset it uses is the field's offset in this build.
import { loadIced, type Iced } from './iced';

type Instr = InstanceType<Iced['Instruction']>;

/**
 * One straight-line pass over a function's code, the skeleton every finder
 * below shares: decodes at most `maxInstructions` from `startVaddr` and
 * hands `step` each instruction with the full registers it writes (so the
 * finder can forget what it knew of them). `step` returns true to stop.
 */
function sweep(code: Buffer, startVaddr: number, maxInstructions: number, step: (instr: Instr, written: number[]) => boolean | void): void {
  const { Decoder, DecoderOptions, Instruction, InstructionInfoFactory, RegisterExt, OpAccess } = loadIced();
  const decoder = new Decoder(64, code, DecoderOptions.None);
  const instr = new Instruction();
  const infoFactory = new InstructionInfoFactory();
  try {
    decoder.ip = BigInt(startVaddr);
    for (let n = 0; n < maxInstructions && decoder.canDecode; n++) {
      decoder.decodeOut(instr);
      const info = infoFactory.info(instr);
      const written: number[] = [];
      for (const u of info.usedRegisters()) {
        const acc = u.access;
        if (acc === OpAccess.Write || acc === OpAccess.CondWrite || acc === OpAccess.ReadWrite || acc === OpAccess.ReadCondWrite)
          written.push(RegisterExt.fullRegister(u.register));
        u.free();
      }
      info.free();
      if (step(instr, written)) break;
    }
  } finally {
    instr.free();
    decoder.free();
    infoFactory.free();
  }
}

/** Forgets what `facts` knew of the registers an instruction writes. */
function forget(written: number[], ...facts: { delete(r: number): boolean }[]): void {
  for (const r of written) for (const f of facts) f.delete(r);
}

const signed = (d: bigint) => Number(BigInt.asIntN(64, d));

export interface FieldChain {
  /** Offset of the pointer field loaded from the argument struct. */
  outerOffset: number;
  /** Offset of the u16 loaded through that pointer. */
  innerOffset: number;
  /** vaddr of the comparing instruction. */
  at: number;
}

/**
 * Finds `mov P, qword [ARG + A]` → `movzx r32, word [P + B]` → `cmp r16, IMM`
 * in the first `maxInstructions` of a function, where ARG is the register the
 * argument arrives in or a register it was copied into. Data flow is followed
 * in a straight line (enough for a function prologue); whenever an instruction
 * writes a register, everything known about it is forgotten before the new
 * value's meaning (if any) is recorded. Returns every distinct (A, B) found.
 *
 * hyper's Server::encode starts by testing `msg.head.subject ==
 * StatusCode::SWITCHING_PROTOCOLS` (101): that gives the offsets of
 * Encode.head and MessageHead.subject in this very binary.
 */
export function findU16FieldCompare(code: Buffer, startVaddr: number, argRegister: 'RSI' | 'RDI' | 'RDX', imm: number, maxInstructions = 600): FieldChain[] {
  const { Mnemonic, OpKind, Register, RegisterExt, MemorySize } = loadIced();
  const full = (r: number) => RegisterExt.fullRegister(r);
  const aliases = new Set<number>([Register[argRegister]]);
  const loaded = new Map<number, number>(); // register holding *(ARG + A) -> A
  const widened = new Map<number, { a: number; b: number }>(); // register holding the u16 -> offsets
  const found = new Map<string, FieldChain>();
  sweep(code, startVaddr, maxInstructions, (instr, written) => {
    const m = instr.mnemonic;
    // What this instruction makes of its destination, judged on the facts
    // from before it runs (`mov rbx, rsi` reads rsi before writing rbx).
    let define: (() => void) | undefined;
    if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Register &&
        aliases.has(full(instr.op1Register)) && instr.op0Register === full(instr.op0Register)) {
      const dst = instr.op0Register;
      define = () => aliases.add(dst);
    } else if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Memory &&
        instr.memorySize === MemorySize.UInt64 && aliases.has(instr.memoryBase) && instr.memoryIndex === Register.None) {
      const dst = full(instr.op0Register), a = Number(instr.memoryDisplacement);
      define = () => loaded.set(dst, a);
    } else if (m === Mnemonic.Movzx && instr.op1Kind === OpKind.Memory && instr.memorySize === MemorySize.UInt16 &&
        loaded.has(instr.memoryBase) && instr.memoryIndex === Register.None) {
      const dst = full(instr.op0Register), w = { a: loaded.get(instr.memoryBase)!, b: Number(instr.memoryDisplacement) };
      define = () => widened.set(dst, w);
    } else if (m === Mnemonic.Cmp && instr.op0Kind === OpKind.Register && widened.has(full(instr.op0Register)) &&
        (instr.op1Kind === OpKind.Immediate8to16 || instr.op1Kind === OpKind.Immediate16 || instr.op1Kind === OpKind.Immediate8to32 || instr.op1Kind === OpKind.Immediate32) &&
        Number(instr.immediate(1)) === imm) {
      const w = widened.get(full(instr.op0Register))!;
      found.set(`${w.a}:${w.b}`, { outerOffset: w.a, innerOffset: w.b, at: Number(instr.ip) });
    }
    // Forget everything known about the registers this instruction writes,
    // its destination included, and only then record the destination's new
    // meaning: `mov rsi, [rsi+10h]` leaves rsi holding the field, no longer
    // the argument; `movzx eax, word [rax+68h]` leaves rax no pointer.
    forget(written, aliases, loaded, widened);
    define?.();
  });
  return [...found.values()];
}

/**
 * Finds qword stores of an argument into thread-local storage in the first
 * `maxInstructions` of a function: `mov R, qword fs:[0]` (the thread
 * pointer), optionally `lea R2, [R + D]`, then `mov qword [R2 + F], ARG`
 * where ARG is the argument register or a copy of it. Returns each distinct
 * total offset D + F from the thread pointer (local-exec TLS of the main
 * executable: these are link-time constants, so the code states the exact
 * address of the variable in this build).
 *
 * tokio's `context::set_current_task_id(id)` stores its argument into
 * CONTEXT.current_task_id this way.
 *
 * Two other shapes LLVM emits for the same store (thin LTO, opt-level "z"):
 * - `mov R, imm` then `mov qword fs:[R + F], ARG`: the variable's offset
 *   from the thread pointer held in a register;
 * - `call GETTER` returning the variable's address in rax (a small accessor
 *   that computes fs:[0] + D), then `mov qword [rax + F], ARG`. GETTER is
 *   resolved by `callTlsOffset` (see tlsGetterOffset), when given.
 * Both come with an early return before the store, hence `pastReturns`.
 * Being approximate (a linear walk), the caller trusts these only when
 * they confirm an offset it knows from elsewhere.
 */
export function findTlsArgStores(
  code: Buffer, startVaddr: number, argRegister: 'RDI' | 'RSI' = 'RDI', maxInstructions = 200,
  callTlsOffset?: (target: number) => number | undefined, pastReturns = false,
): number[] {
  const { Mnemonic, OpKind, Register, RegisterExt, MemorySize } = loadIced();
  const full = (r: number) => RegisterExt.fullRegister(r);
  const args = new Set<number>([Register[argRegister]]);
  const tlsBase = new Map<number, number>(); // register -> offset from the thread pointer it holds
  const fsOffset = new Map<number, number>(); // register -> an immediate, used as fs:[R + F]
  const found = new Set<number>();
  // pastReturns: the register state at forward branch targets joins the
  // state of the walk when it gets there (a "may" union: the code after an
  // early return is reached from the branch, not from the return). After a
  // return or jump with no branch to the next instruction, the state is kept.
  type State = { args: Set<number>; tlsBase: Map<number, number>; fsOffset: Map<number, number> };
  const atTarget = new Map<number, State>();
  const join = (st: State) => {
    for (const r of st.args) args.add(r);
    for (const [r, v] of st.tlsBase) if (!tlsBase.has(r)) tlsBase.set(r, v);
    for (const [r, v] of st.fsOffset) if (!fsOffset.has(r)) fsOffset.set(r, v);
  };
  sweep(code, startVaddr, maxInstructions, (instr, written) => {
    const m = instr.mnemonic;
    if (pastReturns) {
      const ip = Number(instr.ip);
      const st = atTarget.get(ip);
      if (st) join(st);
      if (instr.isJccShortOrNear && Number(instr.nearBranchTarget) > ip && !atTarget.has(Number(instr.nearBranchTarget)))
        atTarget.set(Number(instr.nearBranchTarget), { args: new Set(args), tlsBase: new Map(tlsBase), fsOffset: new Map(fsOffset) });
    }
    let define: (() => void) | undefined;
    if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Memory &&
        instr.memorySegment === Register.FS && instr.memoryBase === Register.None && instr.memoryIndex === Register.None &&
        instr.memorySize === MemorySize.UInt64 && signed(instr.memoryDisplacement) === 0) {
      const dst = full(instr.op0Register);
      define = () => tlsBase.set(dst, 0);
    } else if (m === Mnemonic.Lea && instr.op1Kind === OpKind.Memory && tlsBase.has(instr.memoryBase) && instr.memoryIndex === Register.None) {
      const dst = full(instr.op0Register), d = tlsBase.get(instr.memoryBase)! + signed(instr.memoryDisplacement);
      define = () => tlsBase.set(dst, d);
    } else if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Register &&
        instr.op0Register === full(instr.op0Register)) {
      const src = full(instr.op1Register), dst = instr.op0Register;
      if (args.has(src)) define = () => args.add(dst);
      else if (tlsBase.has(src)) { const d = tlsBase.get(src)!; define = () => tlsBase.set(dst, d); }
    } else if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Memory && instr.op1Kind === OpKind.Register &&
        instr.memorySize === MemorySize.UInt64 && args.has(full(instr.op1Register)) && instr.memoryIndex === Register.None) {
      if (instr.memorySegment === Register.FS && instr.memoryBase === Register.None) found.add(signed(instr.memoryDisplacement));
      else if (instr.memorySegment === Register.FS && fsOffset.has(instr.memoryBase)) found.add(fsOffset.get(instr.memoryBase)! + signed(instr.memoryDisplacement));
      else if (instr.memorySegment !== Register.FS && tlsBase.has(instr.memoryBase)) found.add(tlsBase.get(instr.memoryBase)! + signed(instr.memoryDisplacement));
    } else if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op0Register === full(instr.op0Register) &&
        (instr.op1Kind === OpKind.Immediate32to64 || instr.op1Kind === OpKind.Immediate64)) {
      const dst = instr.op0Register, v = signed(instr.immediate(1));
      define = () => fsOffset.set(dst, v);
    } else if (m === Mnemonic.Call && instr.op0Kind === OpKind.NearBranch64 && callTlsOffset) {
      const d = callTlsOffset(Number(instr.nearBranch64));
      // The callee returns the variable's address; caller-saved registers are not trusted after it.
      define = () => {
        forget([Register.RAX, Register.RCX, Register.RDX, Register.RSI, Register.RDI, Register.R8, Register.R9, Register.R10, Register.R11], args, tlsBase, fsOffset);
        if (d !== undefined) tlsBase.set(Register.RAX, d);
      };
    }
    forget(written, args, tlsBase, fsOffset);
    define?.();
    // pastReturns: an early return (a thread-local's "destroyed" check) may
    // come before the store; the code after it is reached from before it.
    return m === Mnemonic.Ret && !pastReturns;
  });
  return [...found];
}

/**
 * When a small function is a thread-local accessor (it computes
 * `fs:[0] + D` with `mov R, qword fs:[0]` and `lea R2, [R + D]`, once, and
 * returns), the offset D of the variable whose address it returns. LLVM
 * outlines such accessors at opt-level "z" (often named after a closure's
 * `FnOnce::call_once`); undefined for anything else. Only ever used to
 * confirm an offset the database gives (tokio/context.ts), never alone.
 */
export function tlsGetterOffset(code: Buffer, startVaddr: number, maxInstructions = 40): number | undefined {
  const { Mnemonic, OpKind, Register, RegisterExt, MemorySize } = loadIced();
  const bases = new Set<number>();
  const offsets = new Set<number>();
  let returns = false;
  sweep(code, startVaddr, maxInstructions, (instr) => {
    const m = instr.mnemonic;
    if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Memory &&
        instr.memorySegment === Register.FS && instr.memoryBase === Register.None && instr.memoryIndex === Register.None &&
        instr.memorySize === MemorySize.UInt64 && signed(instr.memoryDisplacement) === 0) bases.add(RegisterExt.fullRegister(instr.op0Register));
    else if (m === Mnemonic.Lea && instr.op1Kind === OpKind.Memory && bases.has(instr.memoryBase) && instr.memoryIndex === Register.None)
      offsets.add(signed(instr.memoryDisplacement));
    else if (m === Mnemonic.Ret) returns = true;
  });
  return returns && bases.size === 1 && offsets.size === 1 ? [...offsets][0] : undefined;
}

/**
 * Finds `mov P, qword [ARG + A]` followed by a locked instruction on
 * `[P + B]` (a mutex or reference count taken through a pointer field of the
 * argument) in the first `maxInstructions` of a function. Returns each
 * distinct (A, B). h2's StreamRef methods start by locking the connection's
 * Mutex through the Arc their StreamRef holds: A is the Arc's offset in the
 * StreamRef, B the futex word's offset in the ArcInner.
 */
export function findLoadThenLocked(code: Buffer, startVaddr: number, argRegister: 'RSI' | 'RDI' | 'RDX', maxInstructions = 120): { outer: number; inner: number }[] {
  const { Mnemonic, OpKind, Register, RegisterExt, MemorySize } = loadIced();
  const full = (r: number) => RegisterExt.fullRegister(r);
  const aliases = new Set<number>([Register[argRegister]]);
  const loaded = new Map<number, number>();
  const found = new Map<string, { outer: number; inner: number }>();
  sweep(code, startVaddr, maxInstructions, (instr, written) => {
    const m = instr.mnemonic;
    let define: (() => void) | undefined;
    if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Register &&
        aliases.has(full(instr.op1Register)) && instr.op0Register === full(instr.op0Register)) {
      const dst = instr.op0Register;
      define = () => aliases.add(dst);
    } else if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Memory &&
        instr.memorySize === MemorySize.UInt64 && aliases.has(instr.memoryBase) && instr.memoryIndex === Register.None) {
      const dst = full(instr.op0Register), a = Number(instr.memoryDisplacement);
      define = () => loaded.set(dst, a);
    } else if (instr.hasLockPrefix && loaded.has(instr.memoryBase) && instr.memoryIndex === Register.None) {
      const a = loaded.get(instr.memoryBase)!, b = signed(instr.memoryDisplacement);
      found.set(`${a}:${b}`, { outer: a, inner: b });
    }
    forget(written, aliases, loaded);
    define?.();
    return m === Mnemonic.Ret;
  });
  return [...found.values()];
}

/**
 * Registers and stack slots known to hold the value an argument register had
 * at entry, followed in a straight line through the code: register copies,
 * spills (`mov [rsp+X], r`) and reloads (`mov r, [rsp+X]`). Anything that
 * writes a register or a slot forgets what was known about it; a change of
 * rsp after the prologue forgets every slot. This is a linear sweep, not a
 * control-flow analysis: it tells what the code does with the argument in
 * the common case, which callers then check against an independent source
 * (the offsets database) or treat only as a candidate.
 */
class ArgTracker {
  private readonly regs = new Set<number>();
  private readonly slots = new Set<number>();
  constructor(private readonly iced: Iced, argRegister: number) {
    this.regs.add(argRegister);
  }
  private full(r: number): number { return this.iced.RegisterExt.fullRegister(r); }
  /** Is `[base + disp]` (no index) an operand based on the argument? */
  isArgBase(instr: Instr): boolean {
    return this.regs.has(instr.memoryBase) && instr.memoryIndex === this.iced.Register.None;
  }
  /** Updates the facts for one executed instruction (`written`: the full registers it writes). */
  step(instr: Instr, written: number[]): void {
    const { Mnemonic, OpKind, Register, MemorySize, FlowControl } = this.iced;
    const m = instr.mnemonic;
    let define: (() => void) | undefined;
    if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Register &&
        this.regs.has(this.full(instr.op1Register)) && instr.op0Register === this.full(instr.op0Register)) {
      const dst = instr.op0Register;
      define = () => this.regs.add(dst);
    } else if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Memory && instr.op1Kind === OpKind.Register &&
        instr.memoryBase === Register.RSP && instr.memoryIndex === Register.None && instr.memorySize === MemorySize.UInt64 &&
        this.regs.has(this.full(instr.op1Register)) && instr.op1Register === this.full(instr.op1Register)) {
      const slot = Number(instr.memoryDisplacement);
      define = () => this.slots.add(slot);
    } else if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Memory &&
        instr.memoryBase === Register.RSP && instr.memoryIndex === Register.None && instr.memorySize === MemorySize.UInt64 &&
        this.slots.has(Number(instr.memoryDisplacement))) {
      const dst = this.full(instr.op0Register);
      define = () => this.regs.add(dst);
    }
    // Writes to the stack: a store over a slot forgets it; moving rsp forgets all.
    if (instr.op0Kind === OpKind.Memory && instr.memoryBase === Register.RSP) {
      const d = Number(instr.memoryDisplacement);
      for (const s of this.slots) if (Math.abs(s - d) < 8) this.slots.delete(s);
    }
    for (const r of written) {
      // A call moves rsp and puts it back: the frame's slots survive it.
      if (r === Register.RSP && instr.flowControl !== FlowControl.Call && instr.flowControl !== FlowControl.IndirectCall) this.slots.clear();
      this.regs.delete(r);
    }
    define?.();
  }
}

/**
 * Offsets of the u16 fields `[ARG + B]` that the function compares with `imm`
 * (`movzx r32, word [ARG + B]` then `cmp r16, imm`, or `cmp word [ARG + B], imm`),
 * where ARG is what `argRegister` held at entry, through copies and stack
 * spills. Inlined code keeps the shape of the function it came from:
 * hyper's Conn::write_head, into which fat LTO inlines Server::encode, tests
 * `head.subject == 101` on its `head: &MessageHead` argument.
 */
export function findU16ArgCompare(code: Buffer, startVaddr: number, argRegister: 'RSI' | 'RDI' | 'RDX', imm: number, maxInstructions = 4000): { offset: number; at: number }[] {
  const iced = loadIced();
  const { Mnemonic, OpKind, RegisterExt, MemorySize } = iced;
  const args = new ArgTracker(iced, iced.Register[argRegister]);
  const widened = new Map<number, number>(); // register holding the u16 -> B
  const found = new Map<number, { offset: number; at: number }>();
  const isImm = (k: number) => k === OpKind.Immediate8to16 || k === OpKind.Immediate16 || k === OpKind.Immediate8to32 || k === OpKind.Immediate32;
  sweep(code, startVaddr, maxInstructions, (instr, written) => {
    const m = instr.mnemonic;
    let define: (() => void) | undefined;
    if (m === Mnemonic.Movzx && instr.op1Kind === OpKind.Memory && instr.memorySize === MemorySize.UInt16 && args.isArgBase(instr)) {
      const dst = RegisterExt.fullRegister(instr.op0Register), b = Number(instr.memoryDisplacement);
      define = () => widened.set(dst, b);
    } else if (m === Mnemonic.Cmp && instr.op0Kind === OpKind.Register && widened.has(RegisterExt.fullRegister(instr.op0Register)) &&
        isImm(instr.op1Kind) && Number(instr.immediate(1)) === imm) {
      const b = widened.get(RegisterExt.fullRegister(instr.op0Register))!;
      if (!found.has(b)) found.set(b, { offset: b, at: Number(instr.ip) });
    } else if (m === Mnemonic.Cmp && instr.op0Kind === OpKind.Memory && instr.memorySize === MemorySize.UInt16 && args.isArgBase(instr) &&
        isImm(instr.op1Kind) && Number(instr.immediate(1)) === imm) {
      const b = Number(instr.memoryDisplacement);
      if (!found.has(b)) found.set(b, { offset: b, at: Number(instr.ip) });
    }
    forget(written, widened);
    args.step(instr, written);
    define?.();
  });
  return [...found.values()];
}

/**
 * Offsets of the 8-byte words the function loads from `[ARG + A]` in its
 * first `maxInstructions` (ARG followed as in findU16ArgCompare). The
 * expected argument use of a function that takes `&mut BytesMut` is loads of
 * its ptr and len words.
 */
export function argWordLoads(code: Buffer, startVaddr: number, argRegister: 'RSI' | 'RDI' | 'RDX', maxInstructions = 400): Set<number> {
  const iced = loadIced();
  const { Mnemonic, OpKind, MemorySize } = iced;
  const args = new ArgTracker(iced, iced.Register[argRegister]);
  const out = new Set<number>();
  sweep(code, startVaddr, maxInstructions, (instr, written) => {
    if (instr.mnemonic === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Memory &&
        instr.memorySize === MemorySize.UInt64 && args.isArgBase(instr)) out.add(Number(instr.memoryDisplacement));
    args.step(instr, written);
  });
  return out;
}

/**
 * Finds the chain `V = [ARG + vtableOff]`, `O = [V + F]`, `load [ARG + O]`
 * (ARG or a copy of it, base and index either way round, scale 1) in the
 * first `maxInstructions` of a function: a field F of a struct reached
 * through a pointer at ARG + vtableOff, used as an offset back into ARG.
 * Returns each distinct F.
 *
 * tokio's `OwnedTasks::bind_inner(task)` reads its new task's id this way
 * (`Header::get_id`: header.vtable.id_offset, then the id at header + that
 * offset) to pick the task list shard, so the code states where `id_offset`
 * is inside tokio's repr(Rust) Vtable.
 */
export function findOffsetThroughPointer(code: Buffer, startVaddr: number, argRegister: 'RSI' | 'RDI' | 'RDX', vtableOff: number, maxInstructions = 120): number[] {
  const { Mnemonic, OpKind, Register, RegisterExt, MemorySize } = loadIced();
  const full = (r: number) => RegisterExt.fullRegister(r);
  const args = new Set<number>([Register[argRegister]]);
  const vtables = new Set<number>();
  const offsets = new Map<number, number>(); // register -> F it was loaded from
  const found = new Set<number>();
  sweep(code, startVaddr, maxInstructions, (instr, written) => {
    const m = instr.mnemonic;
    let define: (() => void) | undefined;
    const loadsQword = m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Memory &&
      instr.memorySize === MemorySize.UInt64 && instr.memorySegment !== Register.FS && instr.memorySegment !== Register.GS;
    if (loadsQword && instr.memoryIndex === Register.None && args.has(instr.memoryBase) && signed(instr.memoryDisplacement) === vtableOff) {
      const dst = full(instr.op0Register);
      define = () => vtables.add(dst);
    } else if (loadsQword && instr.memoryIndex === Register.None && vtables.has(instr.memoryBase)) {
      const dst = full(instr.op0Register), f = signed(instr.memoryDisplacement);
      define = () => offsets.set(dst, f);
    } else if (instr.op1Kind === OpKind.Memory && instr.memoryIndexScale === 1 && signed(instr.memoryDisplacement) === 0 &&
        instr.memorySegment !== Register.FS && instr.memorySegment !== Register.GS &&
        ((args.has(instr.memoryBase) && offsets.has(instr.memoryIndex)) || (offsets.has(instr.memoryBase) && args.has(instr.memoryIndex)))) {
      found.add(offsets.get(offsets.has(instr.memoryIndex) ? instr.memoryIndex : instr.memoryBase)!);
    } else if (m === Mnemonic.Mov && instr.op0Kind === OpKind.Register && instr.op1Kind === OpKind.Register &&
        instr.op0Register === full(instr.op0Register) && args.has(full(instr.op1Register))) {
      const dst = instr.op0Register;
      define = () => args.add(dst);
    }
    forget(written, args, vtables, offsets);
    define?.();
    return m === Mnemonic.Ret || m === Mnemonic.Call || m === Mnemonic.Jmp;
  });
  return [...found];
}
