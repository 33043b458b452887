// Access to another process: its memory through /proc/<pid>/mem, and its
// threads' thread pointers through ptrace. Thread-context records may only be
// read while their thread is stopped (OTEP 4947: writers use compiler fences
// only), so a thread is ptrace-interrupted for the duration of its read.
import * as fs from 'node:fs';
import koffi from 'koffi';

export class RemoteMemory {
  private fd: number;
  constructor(readonly pid: number) {
    this.fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  }
  /** Reads exactly `len` bytes at `addr`; throws if the range is unmapped. */
  read(addr: bigint | number, len: number): Buffer {
    const buf = Buffer.alloc(len);
    const n = fs.readSync(this.fd, buf, 0, len, BigInt(addr) as unknown as number);
    if (n !== len) throw new Error(`short read at 0x${BigInt(addr).toString(16)} (${n}/${len})`);
    return buf;
  }
  u64(addr: bigint | number): bigint { return this.read(addr, 8).readBigUInt64LE(0); }
  close(): void { fs.closeSync(this.fd); }
}

const libc = koffi.load('libc.so.6');
const ptraceFn = libc.func('long ptrace(int request, int pid, void *addr, void *data)');
// The same call with the data argument as an integer (the arch_prctl code).
const ptraceCodeFn = libc.func('ptrace', 'long', ['int', 'int', 'void *', 'uint64_t']);
const waitpidFn = libc.func('int waitpid(int pid, _Out_ int *status, int options)');
const PTRACE_SEIZE = 0x4206, PTRACE_INTERRUPT = 0x4207, PTRACE_DETACH = 17, PTRACE_ARCH_PRCTL = 30;
const ARCH_GET_FS = 0x1003;
const __WALL = 0x40000000;

export class PtraceError extends Error {
  constructor(message: string, readonly errno: number) { super(message); }
}

/**
 * Stops thread `tid`, runs `fn` with its thread pointer (x86-64 fs base), and
 * lets it go again. The thread is stopped with PTRACE_SEIZE + INTERRUPT, which
 * does not send it a signal it could observe.
 */
export function withStoppedThread<T>(tid: number, fn: (threadPointer: bigint) => T): T {
  if (ptraceFn(PTRACE_SEIZE, tid, null, null) < 0) {
    const e = koffi.errno();
    throw new PtraceError(`ptrace(SEIZE, ${tid}) failed: errno ${e}`, e);
  }
  try {
    if (ptraceFn(PTRACE_INTERRUPT, tid, null, null) < 0) throw new PtraceError(`ptrace(INTERRUPT, ${tid}) failed`, koffi.errno());
    const status = [0];
    if (waitpidFn(tid, status, __WALL) < 0) throw new PtraceError(`waitpid(${tid}) failed`, koffi.errno());
    const out = Buffer.alloc(8);
    // PTRACE_ARCH_PRCTL: addr receives the value, data is the arch_prctl code.
    if (ptraceCodeFn(PTRACE_ARCH_PRCTL, tid, out, ARCH_GET_FS) < 0)
      throw new PtraceError(`ptrace(ARCH_PRCTL, ${tid}) failed`, koffi.errno());
    return fn(out.readBigUInt64LE(0));
  } finally {
    ptraceFn(PTRACE_DETACH, tid, null, null);
  }
}
