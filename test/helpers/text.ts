// Reads a traced process's code through /proc/<pid>/mem and compares it with
// the executable's file: a uprobe is an int3 (0xcc) written over the first
// byte of the probed instruction in the process's copy of the page, so after
// the agent is gone every probed byte must read as the file has it.
import * as fs from 'node:fs';

export interface Mapping { start: number; end: number; perms: string; offset: number; path: string }

export function exeMappings(pid: number): Mapping[] {
  const exe = fs.readlinkSync(`/proc/${pid}/exe`);
  const out: Mapping[] = [];
  for (const line of fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \d+\s+(.*)$/.exec(line);
    if (m && m[5] === exe) out.push({ start: parseInt(m[1], 16), end: parseInt(m[2], 16), perms: m[3], offset: parseInt(m[4], 16), path: m[5] });
  }
  return out;
}

/** The bytes [fileOffset, fileOffset + n) as the process sees them (its executable mapping). */
export function processBytesAt(pid: number, fileOffset: number, n: number, maps = exeMappings(pid)): Buffer {
  const m = maps.find((x) => x.perms.includes('x') && fileOffset >= x.offset && fileOffset + n <= x.offset + (x.end - x.start));
  if (!m) throw new Error(`file offset 0x${fileOffset.toString(16)} is in no executable mapping of ${pid}`);
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = fs.readSync(fd, b, 0, n, m.start + (fileOffset - m.offset));
    if (got !== n) throw new Error(`short read of /proc/${pid}/mem`);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

export function fileBytesAt(file: string, fileOffset: number, n: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    fs.readSync(fd, b, 0, n, fileOffset);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

/** File offsets in the process's executable mappings whose byte differs from the file's. */
export function textDifferences(pid: number, file: string): number[] {
  const diffs: number[] = [];
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    for (const m of exeMappings(pid).filter((x) => x.perms.includes('x'))) {
      const len = m.end - m.start;
      const mem = Buffer.alloc(len);
      fs.readSync(fd, mem, 0, len, m.start);
      const disk = fileBytesAt(file, m.offset, len);
      // The last page may run past the end of the file (zero-filled in memory).
      const size = Math.min(len, Math.max(0, fs.statSync(file).size - m.offset));
      for (let i = 0; i < size; i++) if (mem[i] !== disk[i]) diffs.push(m.offset + i);
    }
  } finally {
    fs.closeSync(fd);
  }
  return diffs;
}

/** The probe sites the agent's stats file reports, as file offsets. */
export function probeOffsets(stats: unknown): number[] {
  const files = (stats as { probeSites?: { sites: { fileOffsets: number[] }[] }[] }).probeSites ?? [];
  return files.flatMap((f) => f.sites.flatMap((s) => s.fileOffsets));
}
