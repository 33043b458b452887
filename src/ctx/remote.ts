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
// The same call with the data argument as an integer: the arch_prctl code for
// PTRACE_ARCH_PRCTL, the signal to deliver for PTRACE_DETACH.
const ptraceCodeFn = libc.func('ptrace', 'long', ['int', 'int', 'void *', 'uint64_t']);
const waitpidFn = libc.func('int waitpid(int pid, _Out_ int *status, int options)');
const PTRACE_SEIZE = 0x4206, PTRACE_INTERRUPT = 0x4207, PTRACE_DETACH = 17, PTRACE_ARCH_PRCTL = 30;
const PTRACE_EVENT_STOP = 128;
const ARCH_GET_FS = 0x1003;
const __WALL = 0x40000000;
const EINTR = 4;
const SIGTRAP = 5, SIGSTOP = 19, SIGTSTP = 20, SIGTTIN = 21, SIGTTOU = 22;
const JOB_CONTROL_STOPS = new Set([SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU]);

export class PtraceError extends Error {
  constructor(message: string, readonly errno: number) { super(message); }
}

/** What waitpid reported for a seized-and-interrupted thread. */
export type StopKind =
  | { kind: 'exited'; code: number }
  | { kind: 'killed'; signal: number }
  /** Our PTRACE_INTERRUPT (PTRACE_EVENT_STOP with SIGTRAP). */
  | { kind: 'interrupt' }
  /** The thread is (or went) job-control stopped: PTRACE_EVENT_STOP with a stop signal. */
  | { kind: 'group-stop'; signal: number }
  /** A signal was about to be delivered: it must be passed on at detach. */
  | { kind: 'signal'; signal: number }
  | { kind: 'other'; status: number };

/** Decodes a waitpid status (the W* macros of <sys/wait.h>) for a ptrace tracer. */
export function decodeStopStatus(status: number): StopKind {
  const low = status & 0x7f;
  if (low === 0) return { kind: 'exited', code: (status >> 8) & 0xff };
  if ((status & 0xff) !== 0x7f) return { kind: 'killed', signal: low };
  const sig = (status >> 8) & 0xff;
  const event = (status >>> 16) & 0xffff;
  if (event === PTRACE_EVENT_STOP) {
    if (JOB_CONTROL_STOPS.has(sig)) return { kind: 'group-stop', signal: sig };
    if (sig === SIGTRAP) return { kind: 'interrupt' };
    return { kind: 'other', status };
  }
  if (event === 0) return { kind: 'signal', signal: sig };
  return { kind: 'other', status };
}

/**
 * Stops thread `tid`, runs `fn` with its thread pointer (x86-64 fs base), and
 * lets it go again. The thread is stopped with PTRACE_SEIZE + INTERRUPT, which
 * does not send it a signal it could observe.
 *
 * A signal can reach the thread between SEIZE and INTERRUPT; waitpid then
 * reports a signal-delivery-stop instead of the interrupt. The thread is
 * stopped all the same (reading is fine), and the signal is handed back at
 * PTRACE_DETACH so that it is delivered (detaching with 0 would discard it).
 * A thread that is job-control stopped reports a group-stop and stays stopped.
 */
export function withStoppedThread<T>(tid: number, fn: (threadPointer: bigint) => T): T {
  if (ptraceFn(PTRACE_SEIZE, tid, null, null) < 0) {
    const e = koffi.errno();
    throw new PtraceError(`ptrace(SEIZE, ${tid}) failed: errno ${e}`, e);
  }
  // Signal to deliver at detach; undefined once the thread is known to be gone
  // (nothing to detach from).
  let detachSignal: number | undefined = 0;
  try {
    if (ptraceFn(PTRACE_INTERRUPT, tid, null, null) < 0) {
      const e = koffi.errno();
      throw new PtraceError(`ptrace(INTERRUPT, ${tid}) failed: errno ${e}`, e);
    }
    const status = [0];
    for (;;) {
      if (waitpidFn(tid, status, __WALL) >= 0) break;
      const e = koffi.errno();
      if (e !== EINTR) throw new PtraceError(`waitpid(${tid}) failed: errno ${e}`, e);
    }
    const stop = decodeStopStatus(status[0]);
    switch (stop.kind) {
      case 'exited':
        detachSignal = undefined;
        throw new PtraceError(`thread ${tid} exited (status ${stop.code}) before it could be stopped`, 3 /* ESRCH */);
      case 'killed':
        detachSignal = undefined;
        throw new PtraceError(`thread ${tid} was killed by signal ${stop.signal} before it could be stopped`, 3 /* ESRCH */);
      case 'signal':
        detachSignal = stop.signal;
        break;
      case 'interrupt':
      case 'group-stop': // stays job-control stopped after a detach with 0
      case 'other': // some other ptrace-stop: the thread is stopped all the same
        break;
    }
    const out = Buffer.alloc(8);
    // PTRACE_ARCH_PRCTL: addr receives the value, data is the arch_prctl code.
    if (ptraceCodeFn(PTRACE_ARCH_PRCTL, tid, out, ARCH_GET_FS) < 0) {
      const e = koffi.errno();
      throw new PtraceError(`ptrace(ARCH_PRCTL, ${tid}) failed: errno ${e}`, e);
    }
    return fn(out.readBigUInt64LE(0));
  } finally {
    if (detachSignal !== undefined) ptraceCodeFn(PTRACE_DETACH, tid, null, detachSignal);
  }
}
