// Facts about a traced process, read from /proc, and its OpenTelemetry resource.
//
// A process in a container is read through the host's /proc like any other:
// /proc/<pid>/exe opens the very file it runs (in its own mount namespace),
// /proc/<pid>/root/... reaches its files, /proc/<pid>/environ and
// /proc/<pid>/cgroup say who it is. All of these need ptrace-read access to
// the process (root, or CAP_SYS_PTRACE over processes of other users or with
// more capabilities than the agent).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Attributes, ProcessResource } from '../spans/types';
import { agentVersion } from '../util/paths';
import { parseKeyValueListLenient } from '../util/kv';
import { cgroupPathOf, containerIdFromCgroup, containerIdFromMountinfo, podUidFromCgroup } from './container';
import type { PodMeta } from './k8s';

export interface ProcessInfo {
  pid: number;
  /** Path of the executable as the kernel reports it (may end in " (deleted)"). */
  exePath: string;
  /** Device and inode of the executable: uprobes are keyed by inode. */
  exeId: string;
  startTime: string; // /proc/<pid>/stat field 22, tells a reused pid apart
  commandLine: string[];
  /** /proc/<pid>/comm: the name the process goes by (at most 15 bytes). */
  comm: string;
}

export function processExists(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or undefined if the process is gone. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function readProcessInfo(pid: number): ProcessInfo | undefined {
  try {
    const exePath = fs.readlinkSync(`/proc/${pid}/exe`);
    const st = fs.statSync(`/proc/${pid}/exe`);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const afterComm = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
    return { pid, exePath, exeId: `${st.dev}:${st.ino}`, startTime: afterComm[19] ?? '', commandLine: cmd, comm };
  } catch {
    return undefined;
  }
}

/** One entry of a /proc scan: a process and the file it runs. */
export interface ProcEntry {
  pid: number;
  exeId: string;
}

/**
 * Every process that runs an executable (kernel threads and zombies have
 * none), with the executable's device and inode: one readdir and one stat per
 * process. The discovery stage and every executable target share one scan
 * per tick.
 */
export function scanProcesses(counts?: { denied: number }): ProcEntry[] {
  const out: ProcEntry[] = [];
  let names: string[];
  try { names = fs.readdirSync('/proc'); } catch { return out; }
  for (const d of names) {
    const c = d.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    try {
      // throwIfNoEntry: kernel threads and zombies answer ENOENT, and an
      // exception per kernel thread would cost more than the stat itself.
      const st = fs.statSync(`/proc/${d}/exe`, { throwIfNoEntry: false });
      if (st) out.push({ pid: Number(d), exeId: `${st.dev}:${st.ino}` });
    } catch (e) {
      // EACCES: not ours to see (no CAP_SYS_PTRACE over it); ESRCH: gone.
      if (counts && (e as NodeJS.ErrnoException).code === 'EACCES') counts.denied++;
    }
  }
  return out;
}

/** Every running process whose executable is the file with id `exeId`. */
export function processesOfExecutable(exeId: string): number[] {
  return scanProcesses().filter((e) => e.exeId === exeId).map((e) => e.pid);
}

// The variables of a target's environment the agent uses. Nothing else is kept
// (an environment can hold secrets).
const ENV_KEYS = new Set([
  'OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES', 'HOSTNAME', 'KUBERNETES_SERVICE_HOST',
  // Downward-API variables as commonly named, and those the OpenTelemetry operator injects.
  'K8S_POD_NAME', 'K8S_POD_UID', 'K8S_NAMESPACE_NAME', 'K8S_CONTAINER_NAME', 'K8S_NODE_NAME',
  'POD_NAME', 'POD_UID', 'POD_NAMESPACE',
  'OTEL_RESOURCE_ATTRIBUTES_POD_NAME', 'OTEL_RESOURCE_ATTRIBUTES_POD_UID', 'OTEL_RESOURCE_ATTRIBUTES_NODE_NAME',
]);

export interface ProcessDetails {
  /** The variables of ENV_KEYS that the process has; empty if its environment cannot be read. */
  env: Record<string, string>;
  /** Its OTEL_RESOURCE_ATTRIBUTES, parsed (bad entries skipped). */
  attributes: Record<string, string>;
  /** The cgroup path (v2 when there is one); '' if unreadable. */
  cgroup: string;
  containerId: string | null;
  podUid: string | null;
  /** The namespace of the pod's service account, read inside the container (if mounted). */
  saNamespace: string | null;
}

/** Parses /proc/<pid>/environ, keeping only `keys`. */
export function parseEnviron(raw: Buffer, keys: Set<string> = ENV_KEYS): Record<string, string> {
  const out: Record<string, string> = {};
  let start = 0;
  while (start < raw.length) {
    let end = raw.indexOf(0, start);
    if (end < 0) end = raw.length;
    const eq = raw.indexOf(61 /* = */, start);
    if (eq > start && eq < end) {
      const k = raw.toString('latin1', start, eq);
      if (keys.has(k)) out[k] = raw.toString('utf8', eq + 1, end);
    }
    start = end + 1;
  }
  return out;
}

function readOrEmpty(p: string): string {
  try { return fs.readFileSync(p, 'utf8'); } catch { return ''; }
}

export function readProcessDetails(pid: number): ProcessDetails {
  let env: Record<string, string> = {};
  try { env = parseEnviron(fs.readFileSync(`/proc/${pid}/environ`)); } catch { /* not readable: no facts from it */ }
  const cg = readOrEmpty(`/proc/${pid}/cgroup`);
  let containerId = containerIdFromCgroup(cg);
  if (!containerId) containerId = containerIdFromMountinfo(readOrEmpty(`/proc/${pid}/mountinfo`));
  const podUid = podUidFromCgroup(cg);
  let saNamespace: string | null = null;
  if (podUid) {
    const ns = readOrEmpty(`/proc/${pid}/root/var/run/secrets/kubernetes.io/serviceaccount/namespace`).trim();
    if (ns) saNamespace = ns;
  }
  return { env, attributes: parseKeyValueListLenient(env.OTEL_RESOURCE_ATTRIBUTES), cgroup: cgroupPathOf(cg), containerId, podUid, saNamespace };
}

/** Kubernetes facts about a process; null = known not to be there, undefined = not known yet. */
export interface K8sFacts {
  podUid: string | null;
  podName: string | null;
  namespace: string | null;
  containerName: string | null;
  /** Pod labels (from the API server only). */
  labels: Record<string, string> | null | undefined;
}

/**
 * Where each fact comes from, best first: the API server's pod (when
 * configured), the process's own OTEL_RESOURCE_ATTRIBUTES, downward-API
 * variables, and what the kubelet leaves in the cgroup path, the pod's
 * hostname and the service-account mount.
 */
export function k8sFactsOf(d: ProcessDetails, api: { configured: boolean; loaded: boolean; pod?: PodMeta }): K8sFacts {
  const e = d.env;
  const a = d.attributes;
  const podUid = d.podUid ?? a['k8s.pod.uid'] ?? e.K8S_POD_UID ?? e.POD_UID ?? e.OTEL_RESOURCE_ATTRIBUTES_POD_UID ?? null;
  const pod = api.pod;
  if (pod) {
    return {
      podUid: pod.uid, podName: pod.name, namespace: pod.namespace,
      containerName: (d.containerId && pod.containers.get(d.containerId)) ?? a['k8s.container.name'] ?? e.K8S_CONTAINER_NAME ?? null,
      labels: pod.labels,
    };
  }
  const inPod = d.podUid !== null;
  return {
    podUid,
    podName: a['k8s.pod.name'] ?? e.K8S_POD_NAME ?? e.POD_NAME ?? e.OTEL_RESOURCE_ATTRIBUTES_POD_NAME ??
      (inPod && e.HOSTNAME ? e.HOSTNAME : null),
    namespace: a['k8s.namespace.name'] ?? e.K8S_NAMESPACE_NAME ?? e.POD_NAMESPACE ?? d.saNamespace ?? null,
    containerName: a['k8s.container.name'] ?? e.K8S_CONTAINER_NAME ?? null,
    // Labels are only known from the API server: until its first answer, not
    // known yet; a pod it does not list (or no pod at all) has none.
    labels: !api.configured ? null : !api.loaded ? undefined : null,
  };
}

export interface ResourceConfig {
  /** The agent's own service name (its flag or OTEL_SERVICE_NAME): names explicitly given targets only. */
  serviceName?: string;
  /** The agent's OTEL_RESOURCE_ATTRIBUTES. */
  extra: Attributes;
  rustcVersion?: string;
  /** What the process says about itself, and its container and pod. */
  details?: ProcessDetails;
  k8s?: K8sFacts;
  nodeName?: string;
}

/**
 * service.name, first found: the agent's service name (for targets named on
 * its command line), the process's own OTEL_SERVICE_NAME, service.name in the
 * process's OTEL_RESOURCE_ATTRIBUTES, in the agent's, the executable's name.
 */
export function serviceNameOf(info: ProcessInfo, cfg: ResourceConfig): string {
  const own = cfg.details;
  return cfg.serviceName ?? (own?.env.OTEL_SERVICE_NAME || undefined) ?? own?.attributes['service.name'] ??
    (cfg.extra['service.name'] as string | undefined) ?? path.basename(info.exePath.replace(/ \(deleted\)$/, ''));
}

export function buildResource(info: ProcessInfo, cfg: ResourceConfig): ProcessResource {
  const exePath = info.exePath.replace(/ \(deleted\)$/, '');
  const exeName = path.basename(exePath);
  const attributes: Attributes = {
    // The agent's OTEL_RESOURCE_ATTRIBUTES, then the process's own (it knows
    // itself better); what the agent detects wins for process, container and
    // pod facts; service.name follows serviceNameOf.
    ...cfg.extra,
    ...(cfg.details?.attributes ?? {}),
    'service.name': serviceNameOf(info, cfg),
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
  if (cfg.details?.containerId) attributes['container.id'] = cfg.details.containerId;
  const k = cfg.k8s;
  if (k) {
    if (k.podUid) attributes['k8s.pod.uid'] = k.podUid;
    if (k.podName) attributes['k8s.pod.name'] = k.podName;
    if (k.namespace) attributes['k8s.namespace.name'] = k.namespace;
    if (k.containerName) attributes['k8s.container.name'] = k.containerName;
    if (k.podUid && cfg.nodeName) attributes['k8s.node.name'] = cfg.nodeName;
  }
  return { pid: info.pid, attributes };
}
