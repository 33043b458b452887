// Field order of the Rust values our BPF programs read (Vec<u8>, BytesMut).
// repr(Rust) layouts are chosen by rustc, so they come from an offsets database
// generated from DWARF of real builds (offsets/layouts.json, written by
// tools/gen-layouts.ts). The BPF side re-checks every value it reads
// (pointer-shaped ptr, len <= cap) and counts failures, so a layout that is
// wrong for some future rustc shows up as `bad_layout` and the probe is
// disabled with a reason instead of producing garbage.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../util/paths';

export type RustLayoutName = 'Vec<u8>' | 'BytesMut';

export interface LayoutEntry {
  type: RustLayoutName | string;
  rustc: string;
  crate?: string;
  crateVersion?: string;
  fields: Record<string, number>;
  size: number;
}

export interface ResolvedLayout {
  type: RustLayoutName;
  ptrIdx: number;
  lenIdx: number;
  capIdx: number;
  /** How sure we are: exact rustc match in the DB, or the nearest entry. */
  source: 'db-exact' | 'db-nearest';
  from: string;
}

let cached: LayoutEntry[] | undefined;
export function layoutDb(): LayoutEntry[] {
  if (!cached) {
    const file = path.join(repoRoot(), 'offsets', 'layouts.json');
    cached = (JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: LayoutEntry[] }).entries;
  }
  return cached;
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  const pb = b.split(/[.-]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** Picks the DB entry for this rustc: the exact version, else the newest one
 * not newer than it, else the oldest one (the newest when rustc is unknown).
 * Layouts of these std/bytes types change rarely; the BPF-side check covers
 * the gap. */
export function resolveLayout(type: RustLayoutName, rustc: string | undefined): ResolvedLayout | undefined {
  const cands = layoutDb().filter((e) => e.type === type).sort((a, b) => compareVersions(a.rustc, b.rustc));
  if (cands.length === 0) return undefined;
  let pick = rustc ? cands.find((e) => compareVersions(e.rustc, rustc) === 0) : undefined;
  let source: ResolvedLayout['source'] = 'db-exact';
  if (!pick) {
    source = 'db-nearest';
    const older = rustc ? cands.filter((e) => compareVersions(e.rustc, rustc) <= 0) : [];
    // Older than every entry: the oldest is the nearest. Unknown rustc: the newest.
    pick = older.length ? older[older.length - 1] : rustc ? cands[0] : cands[cands.length - 1];
  }
  const f = pick.fields;
  return {
    type, source, from: `rustc ${pick.rustc}`,
    ptrIdx: f.ptr / 8, lenIdx: f.len / 8, capIdx: f.cap / 8,
  };
}

/** The layout bits of an attach cookie (see bpf/include/events.h). */
export function layoutCookieBits(l: ResolvedLayout): bigint {
  return BigInt((l.ptrIdx & 3) | ((l.lenIdx & 3) << 2) | ((l.capIdx & 3) << 4)) << 16n;
}

export interface FoundLayout {
  entry: LayoutEntry;
  /** The entry is for this very crate version and rustc. */
  exact: boolean;
  /** "hyper 1.12.0, rustc 1.95.0" */
  from: string;
}

/**
 * The database entry of a crate's type for one crate version: the exact
 * version, else the nearest one of the same major.minor (older first); for
 * that version the entry of the same rustc, else the newest rustc. A layout
 * from a nearest entry is a guess the probe's live checks must confirm.
 */
export function findLayout(type: string, crate: string, version: string, rustc: string | undefined): FoundLayout | undefined {
  const all = layoutDb().filter((e) => e.type === type && e.crate === crate && e.crateVersion !== undefined);
  if (all.length === 0) return undefined;
  const mm = (v: string) => v.split('.').slice(0, 2).join('.');
  let versions = [...new Set(all.map((e) => e.crateVersion!))];
  let pickVersion = versions.find((v) => v === version);
  if (!pickVersion) {
    versions = versions.filter((v) => mm(v) === mm(version)).sort(compareVersions);
    const older = versions.filter((v) => compareVersions(v, version) <= 0);
    pickVersion = older.length ? older[older.length - 1] : versions[0];
  }
  if (!pickVersion) return undefined;
  const es = all.filter((e) => e.crateVersion === pickVersion).sort((a, b) => compareVersions(b.rustc, a.rustc));
  const entry = es.find((e) => e.rustc === rustc) ?? es[0];
  return { entry, exact: pickVersion === version && entry.rustc === rustc, from: `${crate} ${pickVersion}, rustc ${entry.rustc}` };
}

/** A field offset from findLayout, or undefined. */
export function layoutField(type: string, field: string, crate: string, version: string, rustc: string | undefined): { offset: number; found: FoundLayout } | undefined {
  const found = findLayout(type, crate, version, rustc);
  const offset = found?.entry.fields[field];
  return found && offset !== undefined ? { offset, found } : undefined;
}
