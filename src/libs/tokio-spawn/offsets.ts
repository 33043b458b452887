// Probe config of the spawn probes (events.h TOKIO_CFG_*): where
// `id_offset` sits inside tokio's task Vtable (repr(Rust), so not assumed).
// tokio's own code says it: OwnedTasks::bind_inner reads the new task's id
// through header.vtable.id_offset to pick its list shard. Every instance of
// bind_inner must show the same one offset, or the probes stay off.
import type { ConfigContext, ConfigResult } from '../../plan/module';
import type { BinaryInfo } from '../../binary';
import { findOffsetThroughPointer } from '../../binary/patterns';
import { TOKIO_SPAWN_LAYOUTS } from './layouts';

export const BIND_INNER = 'tokio::runtime::task::list::OwnedTasks<S>::bind_inner';
const C = TOKIO_SPAWN_LAYOUTS.constants;

const cache = new WeakMap<BinaryInfo, ConfigResult>();

export function vtableIdOffset(binary: BinaryInfo): ConfigResult {
  const hit = cache.get(binary);
  if (hit) return hit;
  const fns = binary.functionsByName(BIND_INNER);
  let r: ConfigResult;
  if (fns.length === 0) {
    r = { ok: false, reason: `${BIND_INNER} is not in the binary (inlined, or tokio < 1.32): the task id cannot be located` };
  } else {
    const seen = new Set<number>();
    let unread = 0;
    for (const fn of fns) {
      try {
        const fs = findOffsetThroughPointer(binary.elf.readAtVaddr(fn.vaddr, fn.size), fn.vaddr, 'RSI', C.TOKIO_HEADER_VTABLE);
        if (fs.length === 0) unread++;
        for (const f of fs) seen.add(f);
      } catch {
        unread++;
      }
    }
    if (seen.size === 1 && unread === 0) {
      const f = [...seen][0];
      r = { ok: true, values: [f], detail: `task id via Header.vtable (+${C.TOKIO_HEADER_VTABLE}) -> Vtable.id_offset (+${f}), from tokio's code (${fns.length} bind_inner instance${fns.length > 1 ? 's' : ''} agree)` };
    } else if (seen.size > 1) {
      r = { ok: false, reason: `bind_inner instances disagree on Vtable.id_offset (${[...seen].join(', ')})` };
    } else {
      r = { ok: false, reason: `the id load (header.vtable.id_offset) is not visible in ${unread} of ${fns.length} bind_inner instances` };
    }
  }
  cache.set(binary, r);
  return r;
}

export function spawnConfig(ctx: ConfigContext): ConfigResult {
  return vtableIdOffset(ctx.binary);
}
