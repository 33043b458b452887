// Loading eBPF and attaching uprobes needs root, or CAP_SYS_ADMIN (uprobes,
// since Linux 6.16 again) plus CAP_BPF and CAP_PERFMON. Checked up front so the
// user gets one clear line instead of an errno from deep inside libbpf.
import * as fs from 'node:fs';
import { UserError, EXIT } from '../util/errors';

const CAP_SYS_ADMIN = 21n, CAP_PERFMON = 38n, CAP_BPF = 39n;

export function effectiveCaps(): bigint {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? BigInt('0x' + m[1]) : 0n;
}

export function checkTracingPrivileges(): void {
  const caps = effectiveCaps();
  const has = (c: bigint) => (caps >> c) & 1n;
  if (has(CAP_SYS_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN)) && (has(CAP_PERFMON) || has(CAP_SYS_ADMIN))) return;
  throw new UserError('permission denied: loading eBPF and attaching uprobes needs root (or CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON); run with sudo', EXIT.PRIVILEGE);
}
