// A target executable held open for as long as probes are attached to it.
//
// Offsets are computed from a file's contents and applied by the kernel to an
// inode. Reading the file by one path and attaching by the same path later is
// a race: a deploy can rename another build into place in between, and the
// breakpoints would land mid-instruction in a different binary. So the file is
// opened once; it is analysed and attached through /proc/self/fd/N, which can
// only ever name that inode. Its identity (size, mtime, ctime) is kept so an
// in-place rewrite of the same inode is noticed and the probes come off.
import * as fs from 'node:fs';

export interface FileIdentity {
  dev: number;
  ino: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

export function identityOfStats(st: fs.BigIntStats): FileIdentity {
  return { dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs };
}

/** Identity of whatever file `p` names now, or undefined if there is none. */
export function identityOf(p: string): FileIdentity | undefined {
  try { return identityOfStats(fs.statSync(p, { bigint: true })); } catch { return undefined; }
}

export function inodeKey(id: FileIdentity): string {
  return `${id.dev}:${id.ino}`;
}

export function sameContent(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export class PinnedFile {
  private closed = false;
  private constructor(readonly fd: number, readonly identity: FileIdentity, readonly openedAs: string) {}

  static open(p: string): PinnedFile {
    const fd = fs.openSync(p, 'r');
    try {
      return new PinnedFile(fd, identityOfStats(fs.fstatSync(fd, { bigint: true })), p);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** A path that resolves to exactly this inode, for analysis and for the kernel. */
  get path(): string { return `/proc/self/fd/${this.fd}`; }
  get key(): string { return inodeKey(this.identity); }

  /** True when the inode's contents changed since it was opened (written in place). */
  changed(): boolean {
    try { return !sameContent(this.identity, identityOfStats(fs.fstatSync(this.fd, { bigint: true }))); } catch { return true; }
  }

  /**
   * Idempotent: an owner that closes a file another already closed (a failed
   * attach drops the binary, then its caller lets go of the file) must not
   * close whatever descriptor reused the number since.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { fs.closeSync(this.fd); } catch { /* already closed */ }
  }
}
