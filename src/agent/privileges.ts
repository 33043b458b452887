// What the kernel asks of the agent, checked up front so the user gets one
// clear line instead of an errno from deep inside libbpf. Measured on kernel
// 6.18 (tests in test/container/, README "Capabilities"):
//   - loading the BPF programs: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN);
//   - uprobe_multi links (kernel >= 6.6, the default): nothing more;
//   - perf-event uprobes (the fallback): CAP_SYS_ADMIN (Linux 6.16 made it
//     a requirement for uprobes again);
//   - reading other processes' /proc/<pid>/exe, environ, root: CAP_SYS_PTRACE
//     (checked where it is needed, with its own message).
// A container runtime's seccomp profile may refuse bpf() without
// CAP_SYS_ADMIN whatever the capabilities (podman 4's default does).
import * as fs from 'node:fs';
import { UserError, EXIT } from '../util/errors';
import type { AttachMode } from '../bpf/loader';

const CAP_SYS_ADMIN = 21n, CAP_PERFMON = 38n, CAP_BPF = 39n;

export function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt('0x' + m[1]) : 0n;
}

/** Whether the capabilities allow loading BPF programs at all (asked before the kernel is probed for uprobe_multi). */
export function checkBpfPrivileges(caps = effectiveCaps()): void {
  const has = (c: bigint) => ((caps >> c) & 1n) === 1n;
  if (has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) return;
  throw new UserError('permission denied: loading eBPF needs root (or CAP_BPF and CAP_PERFMON; CAP_SYS_ADMIN covers both); run with sudo', EXIT.PRIVILEGE);
}

/** Whether they allow attaching uprobes the way `mode` does. */
export function checkTracingPrivileges(mode: AttachMode, caps = effectiveCaps()): void {
  checkBpfPrivileges(caps);
  if (mode === 'perf' && ((caps >> CAP_SYS_ADMIN) & 1n) !== 1n) {
    throw new UserError('permission denied: perf-event uprobes (this kernel has no uprobe_multi links, or OTEL_RUST_AGENT_ATTACH=perf) need CAP_SYS_ADMIN', EXIT.PRIVILEGE);
  }
}
