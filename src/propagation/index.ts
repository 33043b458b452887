// Outgoing W3C trace context (traceparent) for HTTP/1 client requests.
//
// Paths, in the order they are chosen:
//   sk_msg      socket-level insertion (propagation.bpf.c): a cgroup sock_ops
//               program files each traced process's outgoing TCP connections
//               in a sockhash, and an sk_msg program inserts the header line
//               into the plaintext request head as it is written. Works under
//               kernel lockdown. Needs BPF_PROG_TYPE_SOCK_OPS/SK_MSG and the
//               target's cgroup v2 directory.
//   user-write  writing the header into the process's own buffer with
//               bpf_probe_write_user: not built (refused under lockdown, as
//               here); only detected and reported.
//   off         neither: requests go out unchanged.
//
// What is decided where: the ids are made by the probes (context.h), the
// socket program decides per request (outcomes in the client's events), and
// this module only detects, loads, attaches and reports.
import * as fs from 'node:fs';
import * as path from 'node:path';
import koffi from 'koffi';
import { lib, c, errno, SYS_bpf } from '../bpf/libbpf';
import type { BpfRuntime } from '../bpf/loader';
import { log } from '../util/log';

const BPF_PROG_LOAD = 5;
const PROG_TYPE_KPROBE = 2;
const PROG_TYPE_SOCK_OPS = 13;
const PROG_TYPE_SK_MSG = 16;
const BPF_CGROUP_SOCK_OPS = 3;
const BPF_SK_MSG_VERDICT = 7;
const O_RDONLY_DIRECTORY = 0o200000;

export interface PropagationReport {
  /** The path in use (agent) or that would be used (inspect). */
  path: 'sk_msg' | 'off';
  why: string;
  /** bpf_probe_write_user: refused / allowed by this kernel. */
  userWrite: 'refused' | 'allowed';
  userWriteWhy: string;
  /** Kernel lockdown mode, when securityfs tells it. */
  lockdown?: string;
  /** cgroup v2 directories the sock_ops program is attached to (agent only). */
  cgroups: string[];
  /** Traced processes whose connections cannot be seen, and why (agent only). */
  skipped: { pid: number; why: string }[];
  /** Each wire protocol: is the header inserted there, and why (or why not). */
  paths: { http1: string; h2c: string; tls: string };
  /** The kernel-side lineage's counters (context.h, prop_link_stats; agent only). */
  links?: PropagationLinkCounters;
}

/** context.h's enum prop_link_counter, in order. */
export const PROP_LINK_COUNTERS = ['taskLinks', 'threadLinks', 'threadUnlinked', 'callsByTaskLink', 'callsByThreadLink', 'closedLinks', 'reusedTid', 'serverDone'] as const;
export type PropagationLinkCounters = Record<(typeof PROP_LINK_COUNTERS)[number], number> & { deletedAtExit: number };


function pathsFor(p: PropagationReport['path'], why: string): PropagationReport['paths'] {
  if (p !== 'sk_msg') return { http1: `off: ${why}`, h2c: `off: ${why}`, tls: 'unchanged: ciphertext at the socket' };
  return {
    http1: 'active: a "traceparent:" line after the request line of plaintext HTTP/1 request heads (reqwest, hyper clients)',
    h2c: 'active: an HPACK literal (without indexing, new name) appended to the header block of plaintext HTTP/2 (h2c prior knowledge) HEADERS frames of h2 0.4 clients (tonic, reqwest), the frame length updated; frames followed per socket from its preface',
    tls: 'unchanged: https / TLS connections carry ciphertext at the socket; such requests go out as written and are counted (propNotPlaintext)',
  };
}

/** Loads a tiny program: 0 when the kernel takes it, else errno. */
function tryLoad(type: number, insnsHex: string, expectedAttach = 0): number {
  const insns = Buffer.from(insnsHex, 'hex');
  const license = Buffer.from('GPL\0');
  const attr = Buffer.alloc(128);
  attr.writeUInt32LE(type, 0);
  attr.writeUInt32LE(insns.length / 8, 4);
  attr.writeBigUInt64LE(koffi.address(insns) as bigint, 8);
  attr.writeBigUInt64LE(koffi.address(license) as bigint, 16);
  attr.writeUInt32LE(expectedAttach, 68);
  const fd = Number(c.syscall_bpf(SYS_bpf, BPF_PROG_LOAD, attr, attr.length));
  if (fd < 0) return errno() || 1;
  c.close(fd);
  return 0;
}

const EXIT_1 = 'b701000001000000' + 'bf10000000000000' + '9500000000000000'; // r1 = 1; r0 = r1; exit
// *(u64 *)(r10 - 8) = 0; r1 = 0; r2 = r10; r2 += -8; r3 = 8; call bpf_probe_write_user; r0 = 0; exit
const WRITE_USER = '7a0af8ff00000000' + 'b701000000000000' + 'bfa2000000000000' + '07020000f8ffffff' +
  'b703000008000000' + '8500000024000000' + 'b700000000000000' + '9500000000000000';

function lockdownMode(): string | undefined {
  try {
    const s = fs.readFileSync('/sys/kernel/security/lockdown', 'utf8');
    return /\[(\w+)\]/.exec(s)?.[1];
  } catch {
    return undefined;
  }
}

/** What this kernel allows, asked of the kernel (no version guesses). */
export function detectPropagation(): PropagationReport {
  const lockdown = lockdownMode();
  const wu = tryLoad(PROG_TYPE_KPROBE, WRITE_USER);
  const userWrite = wu === 0 ? 'allowed' : 'refused';
  const userWriteWhy = wu === 0
    ? 'bpf_probe_write_user loads (not used: the socket path needs no write into the process)'
    : `bpf_probe_write_user refused by the verifier (errno ${wu})${lockdown ? `; kernel lockdown=${lockdown}` : ''}`;
  const so = tryLoad(PROG_TYPE_SOCK_OPS, EXIT_1);
  const sm = tryLoad(PROG_TYPE_SK_MSG, EXIT_1, BPF_SK_MSG_VERDICT);
  let p: PropagationReport['path'] = 'sk_msg';
  let why = 'sock_ops and sk_msg programs load: traceparent inserted into plaintext HTTP/1 request heads and h2c HEADERS frames at the socket (works under lockdown)';
  if (so !== 0 || sm !== 0) {
    p = 'off';
    why = `the kernel refuses ${so ? `sock_ops (errno ${so})` : ''}${so && sm ? ' and ' : ''}${sm ? `sk_msg (errno ${sm})` : ''} programs`;
  }
  return { path: p, why, userWrite, userWriteWhy, lockdown, cgroups: [], skipped: [], paths: pathsFor(p, why) };
}

export function describePropagation(r: PropagationReport): string {
  const where = r.path === 'sk_msg' && r.cgroups.length ? ` [cgroups: ${r.cgroups.join(', ')}]` : '';
  const paths = r.paths ? `; HTTP/1: ${r.paths.http1}; h2c: ${r.paths.h2c}; TLS: ${r.paths.tls}` : '';
  return `trace context propagation: ${r.path === 'sk_msg' ? 'socket-level insertion (sk_msg)' : 'off'}: ${r.why}${where}; user-memory write: ${r.userWriteWhy}${paths}`;
}

/** Where cgroup v2 is mounted (unified or hybrid layout). */
function cgroup2Mount(): string | undefined {
  try {
    for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const f = line.split(' ');
      if (f[2] === 'cgroup2') return f[1];
    }
  } catch { /* none */ }
  return undefined;
}

/** The cgroup v2 path of a process ("/" is the root), or undefined. */
function cgroupOf(pid: number): string | undefined {
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
      if (line.startsWith('0::')) return line.slice(3).trim() || '/';
    }
  } catch { /* gone */ }
  return undefined;
}

export class Propagation {
  readonly report: PropagationReport;
  private links = new Map<string, number>();
  private seen = new Set<number>();
  private sockopsFd = -1;
  private mount: string | undefined;

  /**
   * `allowRootCgroup`: attach sock_ops to the root cgroup when a traced
   * process lives there (then every connection on the host passes the sk_msg
   * program, which returns at once for threads that encoded no request).
   */
  constructor(private readonly rt: BpfRuntime, objectPath: string, private readonly allowRootCgroup: boolean) {
    this.report = detectPropagation();
    if (this.report.path !== 'sk_msg') return;
    const loaded = rt.loadExtra(objectPath);
    if (!loaded.ok) {
      this.off(`loading ${path.basename(objectPath)} failed: ${loaded.why}`);
      return;
    }
    try {
      const msgFd = rt.programFd('prop_sk_msg');
      const mapFd = rt.mapFdOf('prop_sk_msg', 'prop_socks');
      if (lib.prog_attach(msgFd, mapFd, BPF_SK_MSG_VERDICT, 0) !== 0) {
        this.off(`attaching the sk_msg program to its sockhash failed (errno ${errno()})`);
        return;
      }
      this.sockopsFd = rt.programFd('prop_sockops');
    } catch (e) {
      this.off((e as Error).message);
      return;
    }
    this.mount = cgroup2Mount();
    if (!this.mount) this.off('no cgroup v2 hierarchy is mounted (sock_ops attaches to a cgroup v2 directory)');
  }

  private off(why: string): void {
    this.report.path = 'off';
    this.report.why = why;
    this.report.paths = pathsFor('off', why);
  }

  /** A traced process: make sure its cgroup's connections reach the sk_msg program. */
  track(pid: number): void {
    if (this.report.path !== 'sk_msg' || this.seen.has(pid)) return;
    this.seen.add(pid);
    const cg = cgroupOf(pid);
    const skip = (why: string) => {
      this.report.skipped.push({ pid, why });
      if (this.report.skipped.length > 64) this.report.skipped.shift();
      log.info(`trace context propagation: process ${pid}: ${why}`);
    };
    if (!cg) return skip('no cgroup v2 membership in /proc/PID/cgroup');
    if (cg === '/' && !this.allowRootCgroup)
      return skip('it runs in the root cgroup; attaching there would put every connection of the host through the sk_msg program (set OTEL_RUST_AGENT_PROPAGATE_ROOT_CGROUP=1 to allow)');
    const dir = path.join(this.mount!, cg);
    if (this.links.has(dir)) return;
    const cgFd = Number(c.open(dir, O_RDONLY_DIRECTORY));
    if (cgFd < 0) return skip(`cannot open ${dir} (errno ${errno()})`);
    const linkFd = Number(lib.link_create(this.sockopsFd, cgFd, BPF_CGROUP_SOCK_OPS, null));
    const e = errno();
    c.close(cgFd);
    if (linkFd < 0) return skip(`attaching sock_ops to ${dir} failed (errno ${e})`);
    this.links.set(dir, linkFd);
    this.report.cgroups.push(cg);
    log.info(`trace context propagation: sock_ops attached to cgroup ${cg} (process ${pid})`);
  }

  forget(pid: number): void {
    this.seen.delete(pid);
    this.forgetContext(pid);
  }

  /**
   * The process's task-keyed context (context.h: prop_server_ctx, prop_links)
   * is deleted when it exits or exec's: a later image or process with its
   * pid starts its task ids at 1 again and must not find them (thread links
   * are also checked by the thread's start time).
   */
  forgetContext(pid: number): void {
    this.deletedAtExit += this.rt.deletePidEntries('prop_links', 16, pid) + this.rt.deletePidEntries('prop_server_ctx', 16, pid);
  }

  private deletedAtExit = 0;
  private lastSweep = 0;

  /**
   * At most once a second: the entries of processes that are gone although
   * the agent never had them in its table (they ran a traced file and exited
   * between two scans: the probes sit on the file, so their spawns and
   * requests were seen in BPF).
   */
  sweep(dead: (pid: number) => boolean): void {
    const now = Date.now();
    if (now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    this.deletedAtExit += this.rt.deletePidEntries('prop_links', 16, dead) + this.rt.deletePidEntries('prop_server_ctx', 16, dead);
  }

  /** The lineage counters, fresh from the kernel (put in the report for the stats). */
  refreshLinks(): void {
    const v = this.rt.perCpuCounters('prop_link_stats', PROP_LINK_COUNTERS.length);
    if (!v) return;
    const out = { deletedAtExit: this.deletedAtExit } as PropagationLinkCounters;
    PROP_LINK_COUNTERS.forEach((k, i) => { out[k] = v[i]; });
    this.report.links = out;
  }

  close(): void {
    for (const fd of this.links.values()) c.close(fd);
    this.links.clear();
  }
}
