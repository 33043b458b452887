// A minimal DWARF (versions 2 to 5) reader: the member offsets of named
// structures, from .debug_info. A build with `debug = true` (or its separate
// debug file) describes the exact layouts of the binary, so the agent takes
// the offsets its probes read from there before its offsets database.
// Only what that needs: compile units, abbreviations, namespaces, structure
// types and their members with constant offsets. 32-bit DWARF only (what
// rustc and LLVM emit for x86-64 Linux); anything else ends the walk.
import { ElfFile, SHT_NOBITS } from './elf';

export interface DwarfStruct {
  /** Namespace-qualified name, e.g. hyper::proto::MessageHead<http::status::StatusCode>. */
  name: string;
  size: number;
  members: Record<string, number>;
}

const TAG_namespace = 0x39;
const TAG_structure_type = 0x13;
const TAG_member = 0x0d;
const AT_name = 0x03;
const AT_byte_size = 0x0b;
const AT_data_member_location = 0x38;
const AT_declaration = 0x3c;
const AT_str_offsets_base = 0x72;

interface Abbrev { tag: number; children: boolean; attrs: { at: number; form: number; implicit: number }[] }

class Cursor {
  constructor(readonly b: Buffer, public p: number) {}
  u8(): number { return this.b[this.p++]; }
  u16(): number { const v = this.b.readUInt16LE(this.p); this.p += 2; return v; }
  u32(): number { const v = this.b.readUInt32LE(this.p); this.p += 4; return v; }
  uleb(): number {
    let r = 0, m = 1, x: number;
    do { x = this.b[this.p++]; r += (x & 0x7f) * m; m *= 128; } while (x & 0x80);
    return r;
  }
  sleb(): number {
    let r = 0, m = 1, x: number;
    do { x = this.b[this.p++]; r += (x & 0x7f) * m; m *= 128; } while (x & 0x80);
    return x & 0x40 ? r - m : r;
  }
}

function readAbbrevs(data: Buffer, off: number): Map<number, Abbrev> {
  const out = new Map<number, Abbrev>();
  const c = new Cursor(data, off);
  for (;;) {
    const code = c.uleb();
    if (code === 0) break;
    const tag = c.uleb();
    const children = c.u8() === 1;
    const attrs: Abbrev['attrs'] = [];
    for (;;) {
      const at = c.uleb(), form = c.uleb();
      if (at === 0 && form === 0) break;
      attrs.push({ at, form, implicit: form === 0x21 ? c.sleb() : 0 });
    }
    out.set(code, { tag, children, attrs });
  }
  return out;
}

interface Unit { version: number; addrSize: number; strOffsetsBase: number }

/**
 * Structures whose qualified name is in `wanted`, with their members. A name
 * found more than once (one copy per compile unit) is returned once per
 * distinct layout, so callers can tell agreeing copies from conflicting ones.
 */
export function dwarfStructs(elf: ElfFile, wanted: Set<string>): DwarfStruct[] {
  const sec = (n: string) => { const s = elf.sectionByName(n); return s && s.type !== SHT_NOBITS ? elf.sectionData(s) : undefined; };
  const info = sec('.debug_info');
  const abbrev = sec('.debug_abbrev');
  if (!info || !abbrev || wanted.size === 0) return [];
  const str = sec('.debug_str');
  const lineStr = sec('.debug_line_str');
  const strOffsets = sec('.debug_str_offsets');
  const cstr = (b: Buffer | undefined, o: number) => { if (!b || o >= b.length) return ''; const e = b.indexOf(0, o); return b.toString('utf8', o, e < 0 ? b.length : e); };
  const abbrevCache = new Map<number, Map<number, Abbrev>>();
  const found = new Map<string, DwarfStruct>();
  // Names are compared before they are decoded: a structure's last name
  // component must be one of the wanted ones, found once in .debug_str.
  const lastNames = new Set([...wanted].map((w) => lastComponent(w)));
  const strCache = new Map<number, string>();
  const wantedOffsets = new Set<number>();
  if (str) {
    for (const n of lastNames) {
      const needle = Buffer.from(`\0${n}\0`);
      for (let at = str.indexOf(needle); at >= 0; at = str.indexOf(needle, at + 1)) wantedOffsets.add(at + 1);
      if (str.subarray(0, needle.length - 1).equals(needle.subarray(1))) wantedOffsets.add(0);
    }
  }
  const strAt = (b: Buffer | undefined, o: number): string => {
    if (b !== str) return cstr(b, o);
    let v = strCache.get(o);
    if (v === undefined) strCache.set(o, (v = cstr(b, o)));
    return v;
  };
  let pos = 0;
  try {
    while (pos + 11 <= info.length) {
      const c = new Cursor(info, pos);
      const len = c.u32();
      if (len === 0xffffffff || len === 0) break; // 64-bit DWARF: not emitted for x86-64 Linux
      const end = pos + 4 + len;
      const version = c.u16();
      let abbrevOff: number, addrSize: number;
      if (version >= 5) {
        const unitType = c.u8();
        addrSize = c.u8();
        abbrevOff = c.u32();
        if (unitType === 2 /* type */ || unitType === 6 /* split_type */) c.p += 12;
        else if (unitType === 4 /* skeleton */ || unitType === 5 /* split_compile */) c.p += 8;
      } else {
        abbrevOff = c.u32();
        addrSize = c.u8();
      }
      let abbrevs = abbrevCache.get(abbrevOff);
      if (!abbrevs) abbrevCache.set(abbrevOff, (abbrevs = readAbbrevs(abbrev, abbrevOff)));
      const unit: Unit = { version, addrSize, strOffsetsBase: 8 };
      walkUnit(c, end, abbrevs, unit);
      pos = end;
    }
  } catch { /* a unit we cannot read ends the walk; what was found is kept */ }
  return [...found.values()];

  function walkUnit(c: Cursor, end: number, abbrevs: Map<number, Abbrev>, unit: Unit): void {
    // Stack of (namespace name or undefined, structure being collected or undefined) per nesting level.
    const names: (string | undefined)[] = [];
    const structs: (DwarfStruct | undefined)[] = [];
    let first = true;
    while (c.p < end) {
      const code = c.uleb();
      if (code === 0) { names.pop(); const s = structs.pop(); if (s) keep(s); continue; }
      const ab = abbrevs.get(code);
      if (!ab) throw new Error(`bad abbreviation ${code}`);
      const parentOpen = structs.length > 0 && structs[structs.length - 1] !== undefined;
      const interesting = ab.tag === TAG_namespace || ab.tag === TAG_structure_type || (ab.tag === TAG_member && parentOpen) || first;
      let name: string | undefined, size = -1, loc = -1, decl = false;
      for (const a of ab.attrs) {
        if (!interesting) { skipForm(c, a.form, unit); continue; }
        // A structure's name in .debug_str is only decoded when its offset
        // holds one of the wanted names.
        if (a.at === AT_name && a.form === 0x0e && ab.tag === TAG_structure_type) {
          const off = c.u32();
          name = wantedOffsets.has(off) ? strAt(str, off) : '';
          continue;
        }
        const v = readForm(c, a.form, unit, a.implicit);
        if (a.at === AT_name) name = typeof v === 'string' ? v : undefined;
        else if (a.at === AT_byte_size && typeof v === 'number') size = v;
        else if (a.at === AT_data_member_location && typeof v === 'number') loc = v;
        else if (a.at === AT_declaration) decl = true;
        else if (a.at === AT_str_offsets_base && typeof v === 'number') unit.strOffsetsBase = v;
      }
      first = false;
      const parent = structs.length ? structs[structs.length - 1] : undefined;
      if (ab.tag === TAG_member && parent && name !== undefined && loc >= 0) parent.members[name] = loc;
      if (!ab.children) continue;
      let open: DwarfStruct | undefined;
      if (ab.tag === TAG_structure_type && name !== undefined && !decl && lastNames.has(name)) {
        const q = [...names.filter((n): n is string => n !== undefined), name].join('::');
        if (wanted.has(q)) open = { name: q, size, members: {} };
      }
      names.push(ab.tag === TAG_namespace || ab.tag === TAG_structure_type ? name ?? '?' : undefined);
      structs.push(open);
    }
  }

  function keep(s: DwarfStruct): void {
    const key = `${s.name}\0${s.size}\0${JSON.stringify(Object.entries(s.members).sort())}`;
    if (!found.has(key)) found.set(key, s);
  }

  function readForm(c: Cursor, form: number, unit: Unit, implicit: number): string | number | undefined {
    switch (form) {
      case 0x08: { const e = c.b.indexOf(0, c.p); const s = c.b.toString('utf8', c.p, e); c.p = e + 1; return s; }
      case 0x0e: return strAt(str, c.u32());
      case 0x1f: return strAt(lineStr, c.u32());
      case 0x1a: return strx(c.uleb(), unit);
      case 0x25: return strx(c.u8(), unit);
      case 0x26: return strx(c.u16(), unit);
      case 0x27: { const v = c.b.readUIntLE(c.p, 3); c.p += 3; return strx(v, unit); }
      case 0x28: return strx(c.u32(), unit);
      case 0x0b: return c.u8();
      case 0x05: return c.u16();
      case 0x06: return c.u32();
      case 0x0f: return c.uleb();
      case 0x0d: return c.sleb();
      case 0x17: return c.u32();
      case 0x21: return implicit;
      case 0x19: return 1;
      case 0x0c: return c.u8();
      default: skipForm(c, form, unit); return undefined;
    }
  }

  function strx(i: number, unit: Unit): string {
    if (!strOffsets) return '';
    return strAt(str, strOffsets.readUInt32LE(unit.strOffsetsBase + i * 4));
  }
}

/** `Foo<a::B, c::D>` of `x::y::Foo<a::B, c::D>`: the part after the last `::` outside angle brackets. */
export function lastComponent(q: string): string {
  let depth = 0, cut = 0;
  for (let i = 0; i < q.length; i++) {
    const ch = q[i];
    if (ch === '<') depth++;
    else if (ch === '>') depth--;
    else if (ch === ':' && depth === 0 && q[i + 1] === ':') cut = i + 2;
  }
  return q.slice(cut);
}

function skipForm(c: Cursor, form: number, unit: Unit): void {
  switch (form) {
    case 0x01: c.p += unit.addrSize; return;
    // `c.p += c.u16()` would read c.p before the call moves it.
    case 0x03: { const n = c.u16(); c.p += n; return; }
    case 0x04: { const n = c.u32(); c.p += n; return; }
    case 0x05: case 0x12: case 0x26: case 0x2a: c.p += 2; return;
    case 0x06: case 0x13: case 0x0e: case 0x17: case 0x1f: case 0x1c: case 0x1d: case 0x28: case 0x2c: c.p += 4; return;
    case 0x07: case 0x14: case 0x20: case 0x24: c.p += 8; return;
    case 0x08: c.p = c.b.indexOf(0, c.p) + 1; return;
    case 0x09: case 0x18: { const n = c.uleb(); c.p += n; return; }
    case 0x0a: { const n = c.u8(); c.p += n; return; }
    case 0x0b: case 0x0c: case 0x11: case 0x25: case 0x29: c.p += 1; return;
    case 0x0d: c.sleb(); return;
    case 0x0f: case 0x15: case 0x1a: case 0x1b: case 0x22: case 0x23: c.uleb(); return;
    case 0x10: c.p += unit.version <= 2 ? unit.addrSize : 4; return;
    case 0x16: skipForm(c, c.uleb(), unit); return;
    case 0x19: case 0x21: return;
    case 0x1e: c.p += 16; return;
    case 0x27: case 0x2b: c.p += 3; return;
    default: throw new Error(`unknown DWARF form 0x${form.toString(16)}`);
  }
}
