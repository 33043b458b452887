// Where a function can leave, found by decoding its x86-64 code: the offsets
// at which uprobes can observe a function's exit as an alternative to uretprobes.

import { loadIced } from './iced';

export interface ReturnSites {
  /** `ret` instructions. */
  rets: number[];
  /** Direct jumps (unconditional, or conditional: LLVM emits conditional tail
   *  calls) whose target is outside the function: the callee returns for us. */
  tailJumps: number[];
  /** `jmp reg` / `jmp [mem]`: a jump table or a tail call through a pointer;
   *  callers cannot tell which and must treat the function's exits as unknown. */
  indirectJumps: number[];
}

/** Decodes `code` (one function's bytes, mapped at `startVaddr`); all results are absolute vaddrs. */
export function findReturnSites(code: Buffer, startVaddr: number): ReturnSites {
  const { Decoder, DecoderOptions, FlowControl, Instruction } = loadIced();
  const end = startVaddr + code.length;
  const out: ReturnSites = { rets: [], tailJumps: [], indirectJumps: [] };
  const decoder = new Decoder(64, code, DecoderOptions.None);
  const instr = new Instruction();
  try {
    decoder.ip = BigInt(startVaddr);
    while (decoder.canDecode) {
      decoder.decodeOut(instr);
      const ip = Number(instr.ip);
      switch (instr.flowControl) {
        case FlowControl.Return:
          out.rets.push(ip);
          break;
        case FlowControl.UnconditionalBranch:
        case FlowControl.ConditionalBranch: {
          const target = Number(instr.nearBranchTarget);
          if (target < startVaddr || target >= end) out.tailJumps.push(ip);
          break;
        }
        case FlowControl.IndirectBranch:
          out.indirectJumps.push(ip);
          break;
      }
    }
  } finally {
    // The WASM objects live outside the JS heap and this build has no finalizers.
    instr.free();
    decoder.free();
  }
  return out;
}
