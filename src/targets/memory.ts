// Reading a traced process's memory from user space (/proc/PID/mem), for
// data a probe points at that lives as long as the process (a router's route
// table). Read-only; the agent runs as root. Each read is one pread.
import * as fs from 'node:fs';

export class ProcessMemory {
  private fds = new Map<number, number>();

  /** Bytes [addr, addr + len) of process `pid`, or undefined when they cannot be read. */
  read(pid: number, addr: number, len: number): Buffer | undefined {
    if (len <= 0 || len > 1 << 20 || addr < 0x10000 || addr + len > 0x800000000000) return undefined;
    let fd = this.fds.get(pid);
    try {
      if (fd === undefined) this.fds.set(pid, (fd = fs.openSync(`/proc/${pid}/mem`, 'r')));
      const buf = Buffer.alloc(len);
      const n = fs.readSync(fd, buf, 0, len, addr);
      return n === len ? buf : undefined;
    } catch {
      return undefined;
    }
  }

  forget(pid: number): void {
    const fd = this.fds.get(pid);
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* already gone */ }
      this.fds.delete(pid);
    }
  }
}
