// Reading a traced process's memory from user space (/proc/PID/mem), for
// data a probe points at that lives as long as the process (a router's route
// table). Read-only; the agent runs as root. Each read is one pread.
//
// A process whose mem file cannot be opened (gone, or not permitted) is not
// retried for RETRY_OPEN_MS: callers may ask once per span, and a failing
// openSync (path string, syscall, thrown Error with a stack) costs tens of
// µs — it was half the CPU of a replay of a finished process's events.
import * as fs from 'node:fs';

const RETRY_OPEN_MS = 1000;

/**
 * Developer aid (make bench-pipeline): `record` sees every successful read
 * (OTEL_RUST_AGENT_RECORD_EVENTS keeps them next to the ring records), and
 * `replay`, when set, answers reads instead of /proc (a replay of a recording
 * whose process is gone reads the route tables it read live).
 */
export const memoryTap: {
  record?: (addr: number, bytes: Buffer) => void;
  replay?: (addr: number, len: number) => Buffer | undefined;
} = {};

export class ProcessMemory {
  private fds = new Map<number, number>();
  /** pid -> time (Date.now()) before which an open is not tried again. */
  private failed = new Map<number, number>();

  /** Bytes [addr, addr + len) of process `pid`, or undefined when they cannot be read. */
  read(pid: number, addr: number, len: number): Buffer | undefined {
    if (len <= 0 || len > 1 << 20 || addr < 0x10000 || addr + len > 0x800000000000) return undefined;
    if (memoryTap.replay) return memoryTap.replay(addr, len);
    let fd = this.fds.get(pid);
    if (fd === undefined) {
      const until = this.failed.get(pid);
      if (until !== undefined && Date.now() < until) return undefined;
      try {
        fd = fs.openSync(`/proc/${pid}/mem`, 'r');
      } catch {
        this.failed.set(pid, Date.now() + RETRY_OPEN_MS);
        return undefined;
      }
      this.failed.delete(pid);
      this.fds.set(pid, fd);
    }
    try {
      const buf = Buffer.alloc(len);
      const n = fs.readSync(fd, buf, 0, len, addr);
      if (n !== len) return undefined;
      memoryTap.record?.(addr, buf);
      return buf;
    } catch {
      return undefined;
    }
  }

  forget(pid: number): void {
    this.failed.delete(pid);
    const fd = this.fds.get(pid);
    if (fd !== undefined) {
      try { fs.closeSync(fd); } catch { /* already gone */ }
      this.fds.delete(pid);
    }
  }
}
