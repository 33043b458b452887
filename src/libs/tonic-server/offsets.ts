// Probe config of the trailers probe (events.h GT_CFG_*). The function is
// h2's StreamRef<B>::send_trailers, so its offsets are h2's: they come from
// the h2 stack the binary links (h2-server's resolver: h2, its http, bytes).
import type { ConfigContext, ConfigResult } from '../../plan/module';
import { Missing, StackLayouts, stackVersions, streamRefOffsets } from '../h2-server/offsets';
import { TONIC_SERVER_LAYOUTS } from './layouts';

const C = TONIC_SERVER_LAYOUTS.constants;

export function trailersConfig(ctx: ConfigContext): ConfigResult {
  // The module's crate is tonic; the offsets belong to the h2 it runs on.
  const v = stackVersions(ctx.binary, ctx.binary.crates.get('h2') ?? []);
  if (typeof v === 'string') return { ok: false, reason: v };
  const l = new StackLayouts(ctx.binary, v);
  try {
    const vals = new Array<number>(C.GT_CFG_SLOTS).fill(0);
    const s = streamRefOffsets(l, ctx);
    vals[C.GT_CFG_SELF_ARC] = s.arc;
    vals[C.GT_CFG_SELF_STREAM_ID] = s.streamId;
    vals[C.GT_CFG_ARC_INNER] = s.arcInner;
    l.headerMap().forEach((x, i) => { vals[C.GT_CFG_HM + i] = x; });
    return { ok: true, values: vals, detail: l.detail('trailers') };
  } catch (e) {
    if (e instanceof Missing) return { ok: false, reason: e.message };
    throw e;
  }
}
