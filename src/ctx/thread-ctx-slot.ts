// OTEP 4947: where the executable's `otel_thread_ctx_v1` slot is, for the BPF
// reader in src/libs/otel-sdk/current.h (read at reqwest's call probe).
//
// The slot is an 8-byte STT_TLS symbol (the spec: size 8, type TLS). In the
// main executable the linker relaxes every access to local-exec, so, as for
// tokio's CONTEXT (src/libs/tokio/context.ts), the slot of a thread is at
//   fs_base + st_value - round_up(PT_TLS memsz, PT_TLS align)
// (x86-64 variant II). A slot in a shared library (libotelctx.so, an
// LD_PRELOADed writer) is dynamic TLS, reached through the DTV: not located.
import type { BinaryInfo } from '../binary';
import { STT_TLS } from '../binary/elf';

export const THREAD_CTX_SYMBOL = 'otel_thread_ctx_v1';

export type ThreadCtxSlotResult = { ok: true; offset: number; detail: string } | { ok: false; reason: string } | undefined;

/** undefined: the executable does not name the slot at all (nothing to say). */
export function locateThreadCtxSlot(binary: BinaryInfo): ThreadCtxSlotResult {
  const elf = binary.elf;
  const syms = elf.symbols().filter((s) => s.name === THREAD_CTX_SYMBOL);
  if (syms.length === 0) return undefined;
  const tlsSyms = syms.filter((s) => s.type === STT_TLS && s.size === 8);
  const values = [...new Set(tlsSyms.map((s) => s.value))];
  if (values.length !== 1) return { ok: false, reason: `${THREAD_CTX_SYMBOL} is not one 8-byte TLS symbol` };
  if (elf.header.type !== 2 && !(elf.header.type === 3 && elf.programHeaders.some((p) => p.type === 3 /* PT_INTERP */)))
    return { ok: false, reason: 'not a main executable (TLS of a shared library is not located)' };
  const tls = elf.tlsSegment();
  if (!tls) return { ok: false, reason: 'the executable has no TLS segment' };
  const a = tls.align > 1 ? Math.ceil(tls.memsz / tls.align) * tls.align : tls.memsz;
  const offset = values[0] - a;
  const show = offset < 0 ? `-0x${(-offset).toString(16)}` : `+0x${offset.toString(16)}`;
  return { ok: true, offset, detail: `${THREAD_CTX_SYMBOL} at fs${show} (OTEP 4947 record read at client calls; the SDK's confirmed current span wins over it)` };
}
