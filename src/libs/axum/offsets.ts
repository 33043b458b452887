// Probe config of the axum probe (events.h AX_CFG_*), from the offsets
// database: the route map's layout keyed by the axum version, the request's
// Parts and HeaderMap by the http 1.x version axum uses.
import type { ConfigContext, ConfigResult } from '../../plan/module';
import { findLayout } from '../../plan/layouts';
import { AXUM_LAYOUTS } from './layouts';

const C = AXUM_LAYOUTS.constants;
const HV = 'http::header::value::HeaderValue';
const MAP = 'std::collections::HashMap<axum::routing::RouteId, alloc::sync::Arc<str>>';
const BUCKET = '(axum::routing::RouteId, alloc::sync::Arc<str>)';
const ARC_STR = 'alloc::sync::Arc<str>';

export function routeConfig(ctx: ConfigContext): ConfigResult {
  const { binary, crateVersions } = ctx;
  if (crateVersions.length !== 1) return { ok: false, reason: crateVersions.length ? `several axum versions linked (${crateVersions.join(', ')})` : 'axum version not found in the binary' };
  const axum = crateVersions[0];
  const http = (binary.crates.get('http') ?? []).filter((v) => v.startsWith('1.'));
  if (http.length !== 1) return { ok: false, reason: `the http 1.x axum uses is ${http.length ? `ambiguous (${http.join(', ')})` : 'not found in the binary'}` };
  const rustc = binary.rustc?.version;
  const sources = new Set<string>();
  let exact = true;
  const field = (type: string, crate: string, version: string, f: string): number => {
    const e = findLayout(type, crate, version, rustc);
    const v = e?.entry.fields[f];
    if (!e || v === undefined) throw new Error(`no database entry for ${type}.${f} of ${crate} ${version}`);
    sources.add(e.from);
    if (!e.exact) exact = false;
    return v;
  };
  const size = (type: string, crate: string, version: string): number => {
    const e = findLayout(type, crate, version, rustc);
    if (!e) throw new Error(`no database entry for ${type} of ${crate} ${version}`);
    return e.entry.size;
  };
  try {
    const v = new Array<number>(C.AX_CFG_SLOTS).fill(0);
    const parts = 'http::request::Parts';
    v[C.AX_CFG_EXT_TO_ENTRIES] = -field(parts, 'http', http[0], 'extensions') + field(parts, 'http', http[0], 'headers') +
      field(`http::header::map::HeaderMap<${HV}>`, 'http', http[0], 'entries') + field(`alloc::vec::Vec<http::header::map::Bucket<${HV}>>`, 'http', http[0], 'ptr');
    v[C.AX_CFG_MAP_CTRL] = field(MAP, 'axum', axum, 'ctrl');
    v[C.AX_CFG_MAP_MASK] = field(MAP, 'axum', axum, 'bucket_mask');
    v[C.AX_CFG_MAP_ITEMS] = field(MAP, 'axum', axum, 'items');
    v[C.AX_CFG_BUCKET_SIZE] = size(BUCKET, 'axum', axum);
    v[C.AX_CFG_BUCKET_ID] = field(BUCKET, 'axum', axum, '__0');
    v[C.AX_CFG_BUCKET_PTR] = field(BUCKET, 'axum', axum, '__1') + field(ARC_STR, 'axum', axum, 'data_ptr');
    v[C.AX_CFG_BUCKET_LEN] = field(BUCKET, 'axum', axum, '__1') + field(ARC_STR, 'axum', axum, 'length');
    v[C.AX_CFG_ARC_DATA] = 16; // ArcInner is repr(C) { strong, weak, data }: a str starts after the two counts
    return { ok: true, values: v, detail: `route offsets from the database (${[...sources].join('; ')})${exact ? '' : ', nearest entries: checked on every hit'}` };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
