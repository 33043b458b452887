// Facts about a traced process, read from /proc, and its OpenTelemetry resource.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Attributes, ProcessResource } from '../spans/types';
import { agentVersion } from '../util/paths';

export interface ProcessInfo {
  pid: number;
  /** Path of the executable as the kernel reports it (may end in " (deleted)"). */
  exePath: string;
  /** Device and inode of the executable: uprobes are keyed by inode. */
  exeId: string;
  startTime: string; // /proc/<pid>/stat field 22, tells a reused pid apart
  commandLine: string[];
}

export function processExists(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}

export function readProcessInfo(pid: number): ProcessInfo | undefined {
  try {
    const exePath = fs.readlinkSync(`/proc/${pid}/exe`);
    const st = fs.statSync(`/proc/${pid}/exe`);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const afterComm = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
    return { pid, exePath, exeId: `${st.dev}:${st.ino}`, startTime: afterComm[19] ?? '', commandLine: cmd };
  } catch {
    return undefined;
  }
}

/** Every running process whose executable is the file with id `exeId`. */
export function processesOfExecutable(exeId: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.statSync(`/proc/${d}/exe`);
      if (`${st.dev}:${st.ino}` === exeId) out.push(Number(d));
    } catch { /* gone, or a kernel thread */ }
  }
  return out;
}

export interface ResourceConfig {
  serviceName?: string;
  extra: Attributes; // from OTEL_RESOURCE_ATTRIBUTES
  rustcVersion?: string;
}

export function buildResource(info: ProcessInfo, cfg: ResourceConfig): ProcessResource {
  const exePath = info.exePath.replace(/ \(deleted\)$/, '');
  const exeName = path.basename(exePath);
  const attributes: Attributes = {
    // OTEL_RESOURCE_ATTRIBUTES first: the spec gives OTEL_SERVICE_NAME precedence
    // for service.name, and what we detect wins for process.* facts.
    ...cfg.extra,
    'service.name': cfg.serviceName ?? (cfg.extra['service.name'] as string | undefined) ?? exeName,
    'process.pid': info.pid,
    'process.executable.name': exeName,
    'process.executable.path': exePath,
    'host.name': os.hostname(),
    'telemetry.sdk.name': 'opentelemetry',
    'telemetry.sdk.language': 'rust',
    'telemetry.sdk.version': agentVersion(),
    'telemetry.distro.name': 'otel-rust-agent',
    'telemetry.distro.version': agentVersion(),
  };
  if (info.commandLine.length) attributes['process.command'] = info.commandLine[0];
  if (cfg.rustcVersion) {
    attributes['process.runtime.name'] = 'rustc';
    attributes['process.runtime.version'] = cfg.rustcVersion;
  }
  return { pid: info.pid, attributes };
}
