// Probe configs of the h2 server probes (events.h, H2_CFG_* / H2R_CFG_*),
// from the offsets database: h2's own structs keyed by the h2 version, the
// http crate's (HeaderMap, Method, Parts) by the http version h2 uses (0.2
// for h2 0.3, 1.x for h2 0.4), Bytes by the bytes version. The BPF programs
// re-check every read (see probes.bpf.c); offsets.ts refuses a config when a
// type is missing or two entries that must agree do not.
import type { BinaryInfo } from '../../binary';
import type { ConfigContext, ConfigResult } from '../../plan/module';
import { findLayout, type FoundLayout } from '../../plan/layouts';
import { findLoadThenLocked } from '../../binary/patterns';
import { H2_SERVER_LAYOUTS } from './layouts';

const C = H2_SERVER_LAYOUTS.constants;
const HV = 'http::header::value::HeaderValue';
const INNER = 'h2::proto::streams::streams::Inner';

/** HeaderMap walk block (bpf/include/http_headermap.h HM_* slots, relative to the block). */
export const HM = {
  ENTRIES: 0, VEC_PTR: 1, VEC_LEN: 2, VEC_CAP: 3, BUCKET_SIZE: 4, BUCKET_KEY: 5, BUCKET_VALUE: 6,
  NAME_TAG: 7, NAME_STD_TAG: 8, NAME_STD: 9, NAME_CUSTOM: 10, BYTES_PTR: 11, BYTES_LEN: 12, BYTES_VTABLE: 13, SLOTS: 14,
} as const;

export class Missing extends Error {}

/** Offsets of one binary's h2 stack: h2, its http, bytes; records where they came from. */
export class StackLayouts {
  readonly sources = new Set<string>();
  exact = true;

  constructor(readonly binary: BinaryInfo, readonly versions: { h2: string; http: string; bytes: string }) {}

  private entry(type: string, crate: 'h2' | 'http' | 'bytes'): FoundLayout {
    const f = findLayout(type, crate, this.versions[crate], this.binary.rustc?.version);
    if (!f) throw new Missing(`no database entry for ${type} of ${crate} ${this.versions[crate]}`);
    this.sources.add(f.from);
    if (!f.exact) this.exact = false;
    return f;
  }

  field(type: string, crate: 'h2' | 'http' | 'bytes', field: string): number {
    const v = this.entry(type, crate).entry.fields[field];
    if (v === undefined) throw new Missing(`${type} of ${crate} ${this.versions[crate]} has no "${field}" in the database`);
    return v;
  }

  optional(type: string, crate: 'h2' | 'http' | 'bytes', field: string): number | undefined {
    return this.entry(type, crate).entry.fields[field];
  }

  size(type: string, crate: 'h2' | 'http' | 'bytes'): number {
    return this.entry(type, crate).entry.size;
  }

  /** The HeaderMap walk block: 14 values. */
  headerMap(): number[] {
    const v = new Array<number>(HM.SLOTS).fill(0);
    const vec = `alloc::vec::Vec<http::header::map::Bucket<${HV}>>`;
    const bucket = `http::header::map::Bucket<${HV}>`;
    const repr = 'http::header::name::Repr<Custom>';
    const bytes = 'bytes::bytes::Bytes';
    v[HM.ENTRIES] = this.field(`http::header::map::HeaderMap<${HV}>`, 'http', 'entries');
    v[HM.VEC_PTR] = this.field(vec, 'http', 'ptr');
    v[HM.VEC_LEN] = this.field(vec, 'http', 'len');
    v[HM.VEC_CAP] = this.field(vec, 'http', 'cap');
    v[HM.BUCKET_SIZE] = this.size(bucket, 'http');
    v[HM.BUCKET_KEY] = this.field(bucket, 'http', 'key') + this.field('http::header::name::HeaderName', 'http', 'inner');
    v[HM.BUCKET_VALUE] = this.field(bucket, 'http', 'value') + this.field(HV, 'http', 'inner');
    v[HM.NAME_TAG] = this.field(repr, 'http', '$tag');
    if (this.field(repr, 'http', '$tagSize') !== 8) throw new Missing(`${repr}: its discriminant is not a word`);
    v[HM.NAME_STD_TAG] = this.field(repr, 'http', 'Standard');
    v[HM.NAME_STD] = this.field(repr, 'http', 'Standard.__0');
    v[HM.NAME_CUSTOM] = this.field(repr, 'http', 'Custom.__0'); // Custom(ByteStr(Bytes)): newtypes at 0
    v[HM.BYTES_PTR] = this.field(bytes, 'bytes', 'ptr');
    v[HM.BYTES_LEN] = this.field(bytes, 'bytes', 'len');
    v[HM.BYTES_VTABLE] = this.field(bytes, 'bytes', 'vtable');
    for (const i of [HM.BYTES_PTR, HM.BYTES_LEN, HM.BYTES_VTABLE, HM.VEC_PTR, HM.VEC_LEN, HM.VEC_CAP])
      if (v[i] % 8 !== 0 || v[i] > 24) throw new Missing('a Bytes or Vec word is not word-aligned inside it');
    return v;
  }

  detail(what: string): string {
    return `${what} offsets from the database (${[...this.sources].join('; ')})${this.exact ? '' : ', nearest entries: checked on every hit'}`;
  }
}

/** The h2, http and bytes versions this binary's h2 stack uses, or why not. */
export function stackVersions(binary: BinaryInfo, h2Versions: string[]): { h2: string; http: string; bytes: string } | string {
  if (h2Versions.length !== 1) return h2Versions.length === 0 ? 'h2 version not found in the binary' : `several h2 versions linked (${h2Versions.join(', ')}): which symbol is which cannot be told`;
  const h2 = h2Versions[0];
  const httpMajor = h2.startsWith('0.3.') ? '0.2.' : '1.';
  const http = (binary.crates.get('http') ?? []).filter((v) => v.startsWith(httpMajor));
  if (http.length !== 1) return `the http ${httpMajor}x that h2 ${h2} uses is ${http.length ? `ambiguous (${http.join(', ')})` : 'not found in the binary'}`;
  const bytes = (binary.crates.get('bytes') ?? []).filter((v) => v.startsWith('1.'));
  if (bytes.length !== 1) return `bytes 1.x ${bytes.length ? `is ambiguous (${bytes.join(', ')})` : 'not found in the binary'}`;
  return { h2, http: http[0], bytes: bytes[0] };
}

function resolve(ctx: ConfigContext, what: string, build: (l: StackLayouts) => number[]): ConfigResult {
  const v = stackVersions(ctx.binary, ctx.crateVersions);
  if (typeof v === 'string') return { ok: false, reason: v };
  const l = new StackLayouts(ctx.binary, v);
  try {
    return { ok: true, values: build(l), detail: l.detail(what) };
  } catch (e) {
    if (e instanceof Missing) return { ok: false, reason: e.message };
    throw e;
  }
}

/** recv_headers: where the request is in the decoded HEADERS frame. */
export function requestConfig(ctx: ConfigContext): ConfigResult {
  return resolve(ctx, 'request', (l) => {
    const v = new Array<number>(C.H2_CFG_REQUEST_SLOTS).fill(0);
    const headers = 'h2::frame::headers::Headers', block = 'h2::frame::headers::HeaderBlock', pseudo = 'h2::frame::headers::Pseudo';
    const optMethod = 'core::option::Option<http::method::Method>', inner = 'http::method::Inner';
    v[C.H2_CFG_FRAME_STREAM_ID] = l.field(headers, 'h2', 'stream_id');
    v[C.H2_CFG_FRAME_FLAGS] = l.field(headers, 'h2', 'flags');
    v[C.H2_CFG_PSEUDO] = l.field(headers, 'h2', 'header_block') + l.field(block, 'h2', 'pseudo');
    v[C.H2_CFG_FIELDS] = l.field(headers, 'h2', 'header_block') + l.field(block, 'h2', 'fields');
    v[C.H2_CFG_P_METHOD] = l.field(pseudo, 'h2', 'method');
    v[C.H2_CFG_P_SCHEME] = l.field(pseudo, 'h2', 'scheme');
    v[C.H2_CFG_P_AUTHORITY] = l.field(pseudo, 'h2', 'authority');
    v[C.H2_CFG_P_PATH] = l.field(pseudo, 'h2', 'path');
    v[C.H2_CFG_P_STATUS] = l.field(pseudo, 'h2', 'status');
    // Option<Method> keeps None in Method's own discriminant byte (a niche).
    const method = l.field(optMethod, 'http', 'Some.__0') + l.field('http::method::Method', 'http', '__0');
    const tag = l.field(optMethod, 'http', '$tag');
    if (tag !== method + l.field(inner, 'http', '$tag') || l.field(inner, 'http', '$tagSize') !== 1)
      throw new Missing("Option<Method> does not keep None in the method's discriminant byte");
    v[C.H2_CFG_M_TAG] = tag;
    v[C.H2_CFG_M_NONE] = l.field(optMethod, 'http', 'None');
    const names = ['Get', 'Head', 'Post', 'Put', 'Delete', 'Connect', 'Options', 'Trace', 'Patch', 'Query'];
    names.forEach((n, i) => { v[C.H2_CFG_M_GET + i] = n === 'Query' ? l.optional(inner, 'http', n) ?? -1 : l.field(inner, 'http', n); });
    v[C.H2_CFG_M_INLINE] = l.field(inner, 'http', 'ExtensionInline');
    const inl = method + l.field(inner, 'http', 'ExtensionInline.__0');
    v[C.H2_CFG_M_INLINE_BYTES] = inl + l.field('http::method::extension::InlineExtension', 'http', '__0');
    v[C.H2_CFG_M_INLINE_LEN] = inl + l.field('http::method::extension::InlineExtension', 'http', '__1');
    v[C.H2_CFG_M_ALLOC] = l.field(inner, 'http', 'ExtensionAllocated');
    const alloc = method + l.field(inner, 'http', 'ExtensionAllocated.__0') + l.field('http::method::extension::AllocatedExtension', 'http', '__0');
    v[C.H2_CFG_M_ALLOC_PTR] = alloc + l.field('alloc::boxed::Box<[u8]>', 'http', 'data_ptr');
    v[C.H2_CFG_M_ALLOC_LEN] = alloc + l.field('alloc::boxed::Box<[u8]>', 'http', 'length');
    v[C.H2_CFG_PTR_STORE] = l.field('h2::proto::streams::store::Ptr', 'h2', 'store');
    v[C.H2_CFG_PTR_STREAM_ID] = l.field('h2::proto::streams::store::Ptr', 'h2', 'key') + l.field('h2::proto::streams::store::Key', 'h2', 'stream_id');
    v[C.H2_CFG_INNER_STORE] = l.field(INNER, 'h2', 'store');
    v[C.H2_CFG_INNER_COUNTS] = l.field(INNER, 'h2', 'counts');
    v[C.H2_CFG_INNER_RECV] = l.field(INNER, 'h2', 'actions') + l.field('h2::proto::streams::streams::Actions', 'h2', 'recv');
    v[C.H2_CFG_STD_UA] = l.field('http::header::name::StandardHeader', 'http', 'UserAgent');
    v[C.H2_CFG_STD_CTYPE] = l.field('http::header::name::StandardHeader', 'http', 'ContentType');
    v[C.H2_CFG_STD_HOST] = l.field('http::header::name::StandardHeader', 'http', 'Host');
    l.headerMap().forEach((x, i) => { v[C.H2_CFG_HM + i] = x; });
    return v;
  });
}

/**
 * Where a StreamRef keeps its connection and stream id, and how the
 * connection's Arc leads to its Inner. Shared by send_response and
 * send_trailers (tonic-server). The function's code states the Arc word:
 * it loads it from its argument and takes the mutex inside with a locked
 * instruction at ArcInner.data + Mutex.inner; the database must agree.
 */
export function streamRefOffsets(l: StackLayouts, ctx: ConfigContext): { arc: number; streamId: number; arcInner: number } {
  const sr = 'h2::proto::streams::streams::StreamRef<B>', osr = 'h2::proto::streams::streams::OpaqueStreamRef';
  const arcInner = `alloc::sync::ArcInner<std::sync::Mutex<${INNER}>>`, mutex = `std::sync::Mutex<${INNER}>`;
  const arc = l.field(sr, 'h2', 'opaque') + l.field(osr, 'h2', 'inner');
  const streamId = l.field(sr, 'h2', 'opaque') + l.field(osr, 'h2', 'key') + l.field('h2::proto::streams::store::Key', 'h2', 'stream_id');
  const lock = l.field(arcInner, 'h2', 'data') + l.field(mutex, 'h2', 'inner');
  let code: { outer: number; inner: number }[] = [];
  try {
    code = findLoadThenLocked(ctx.binary.elf.readAtVaddr(ctx.fn.vaddr, ctx.fn.size), ctx.fn.vaddr, 'RDI');
  } catch { /* unreadable: the database alone */ }
  if (code.length > 0 && !code.some((c) => c.outer === arc && c.inner === lock))
    throw new Missing(`the database (Arc at ${arc}, lock at ${lock}) and the code (${code.map((c) => `${c.outer}, ${c.inner}`).join('; ')}) disagree`);
  if (code.length > 0) l.sources.add('Arc and lock confirmed by the code');
  return { arc, streamId, arcInner: l.field(arcInner, 'h2', 'data') + l.field(mutex, 'h2', 'data') };
}

/** send_response: the stream, and the status and headers of the response. */
export function responseConfig(ctx: ConfigContext): ConfigResult {
  return resolve(ctx, 'response', (l) => {
    const v = new Array<number>(C.H2R_CFG_SLOTS).fill(0);
    const s = streamRefOffsets(l, ctx);
    v[C.H2R_CFG_SELF_ARC] = s.arc;
    v[C.H2R_CFG_SELF_STREAM_ID] = s.streamId;
    v[C.H2R_CFG_ARC_INNER] = s.arcInner;
    const head = l.field('http::response::Response<()>', 'http', 'head');
    v[C.H2R_CFG_STATUS] = head + l.field('http::response::Parts', 'http', 'status');
    v[C.H2R_CFG_HEADERS] = head + l.field('http::response::Parts', 'http', 'headers');
    l.headerMap().forEach((x, i) => { v[C.H2R_CFG_HM + i] = x; });
    return v;
  });
}

/** recv_reset: the connection from the Counts and Recv it is given. */
export function resetConfig(ctx: ConfigContext): ConfigResult {
  return resolve(ctx, 'reset', (l) => {
    const v = new Array<number>(C.H2R_CFG_SLOTS).fill(0);
    v[C.H2R_CFG_INNER_COUNTS] = l.field(INNER, 'h2', 'counts');
    v[C.H2R_CFG_INNER_RECV] = l.field(INNER, 'h2', 'actions') + l.field('h2::proto::streams::streams::Actions', 'h2', 'recv');
    const reset = 'h2::frame::reset::Reset';
    // The frame arrives as a pair of u32 registers, stream id first.
    if (l.field(reset, 'h2', 'stream_id') !== 0 || l.field(reset, 'h2', 'error_code') !== 4)
      throw new Missing('frame::Reset is not { stream_id, error_code } in that order');
    return v;
  });
}
