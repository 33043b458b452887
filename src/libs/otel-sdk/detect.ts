// Which OpenTelemetry Rust crates a binary links, for `inspect`: the crate
// versions come from their source paths in read-only data (panic locations,
// the SDK's internal-log call sites: `opentelemetry_sdk-0.33.1/src/...`),
// as for every crate; a crate with no such path but with functions in the
// symbol table is reported with its version unknown.
import * as fs from 'node:fs';
import type { BinaryInfo } from '../../binary';

export const OTEL_CRATES = ['opentelemetry', 'opentelemetry_sdk', 'opentelemetry-otlp', 'tracing-opentelemetry'] as const;

export interface OtelCrateUse {
  crate: string;
  /** Empty when only symbols show the crate. */
  versions: string[];
  /** How it was found. */
  from: 'source paths' | 'symbols';
}

/** The path prefix of a crate's items in demangled symbols (dashes become underscores), not inside a longer name. */
function symbolPrefix(crate: string): RegExp {
  return new RegExp(`(?<![A-Za-z0-9_])${crate.replace(/-/g, '_')}::`);
}

export function detectOtelSdk(bin: BinaryInfo): OtelCrateUse[] {
  const out: OtelCrateUse[] = [];
  let byName: Set<string> | undefined;
  const prefixes = new Map(OTEL_CRATES.map((c) => [c, symbolPrefix(c)]));
  for (const crate of OTEL_CRATES) {
    const versions = bin.crates.get(crate);
    if (versions && versions.length) { out.push({ crate, versions, from: 'source paths' }); continue; }
    if (!byName) {
      byName = new Set();
      for (const fn of bin.findFunctions((f) => f.demangled.includes('opentelemetry'))) {
        for (const [c, re] of prefixes) if (re.test(fn.demangled)) byName.add(c);
      }
    }
    if (byName.has(crate)) out.push({ crate, versions: [], from: 'symbols' });
  }
  return out;
}

/**
 * Whether the kernel would let a BPF program write user memory
 * (bpf_probe_write_user), the other way to put a manual root span under an
 * agent span. Read from the lockdown LSM: `integrity` and `confidentiality`
 * refuse it. The agent has no write path yet; this tells the user which
 * way this host allows (`inspect`).
 */
export function userMemoryWrites(readLockdown: () => string = () => fs.readFileSync('/sys/kernel/security/lockdown', 'utf8')): { allowed: boolean | null; detail: string } {
  let text: string;
  try { text = readLockdown(); } catch { return { allowed: null, detail: 'unknown: /sys/kernel/security/lockdown unreadable (securityfs not mounted?)' }; }
  const active = /\[(\w+)\]/.exec(text)?.[1] ?? 'unknown';
  if (active === 'none') return { allowed: true, detail: 'kernel lockdown is off' };
  return { allowed: false, detail: `kernel lockdown=${active} refuses bpf_probe_write_user` };
}
