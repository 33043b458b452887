// The processes the agent knows: each traced process with its resource, and
// the ones seen running an attached file but left out by a selector (their
// spans are dropped: the probes sit on the file, which they share).
//
// A process's resource is built once, when it is first seen, from what it
// says about itself (/proc/<pid>/environ: OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, downward-API variables), its cgroup (container.id,
// the pod uid) and, when configured, the API server's pod.
import * as path from 'node:path';
import type { ProcessResource, Attributes } from '../spans/types';
import {
  ProcessInfo, ProcessDetails, K8sFacts, readProcessInfo, readProcessDetails, k8sFactsOf, buildResource, serviceNameOf,
  startTimeOf,
} from '../targets/process';
import { decide, factsNeeded, Selector, SelectorFacts, SelectionVerdict } from '../targets/selectors';
import { PodCache, K8sApiSettings } from '../targets/k8s';
import { log } from '../util/log';

/** How a process came to be watched: named on the command line, or found by discovery. */
export type Origin = 'pid' | 'exe' | 'discovered';

export interface TracedProcess {
  info: ProcessInfo;
  resource: ProcessResource;
  origin: Origin;
  /** false: excluded by a selector; its spans are dropped. */
  selected: boolean;
  why: string;
}

export interface ProcessTableConfig {
  serviceName?: string;
  resourceAttributes: Attributes;
  include: Selector[];
  exclude: Selector[];
  k8sApi?: K8sApiSettings;
}

export class ProcessTable {
  readonly procs = new Map<number, TracedProcess>();
  readonly pods: PodCache | undefined;
  private readonly needs: ReturnType<typeof factsNeeded>;
  private readonly discoveredExtra: Attributes;

  /**
   * `onMembership`: a pid entered or left the table (the agent keeps the BPF
   * map of pids whose execs it wants to hear of in step with it).
   */
  constructor(private readonly cfg: ProcessTableConfig, onPodsUpdated: () => void,
    private readonly onMembership: (pid: number, present: boolean) => void = () => undefined) {
    this.pods = cfg.k8sApi ? new PodCache(cfg.k8sApi, onPodsUpdated) : undefined;
    this.needs = factsNeeded([...cfg.include, ...cfg.exclude]);
    // The agent's own OTEL_RESOURCE_ATTRIBUTES apply to every process, except
    // a service.name in them: discovered services are named by themselves.
    const { ['service.name']: _name, ...rest } = cfg.resourceAttributes;
    this.discoveredExtra = rest;
  }

  get(pid: number): TracedProcess | undefined {
    return this.procs.get(pid);
  }

  tracedCount(): number {
    let n = 0;
    for (const p of this.procs.values()) if (p.selected) n++;
    return n;
  }

  /** The cheap facts (no reads beyond what `info` holds) for a first decision. */
  static cheapFacts(info: ProcessInfo): SelectorFacts {
    const exe = info.exePath.replace(/ \(deleted\)$/, '');
    return { exe, names: [info.comm, path.basename(exe)] };
  }

  decideCheap(info: ProcessInfo): SelectionVerdict {
    return decide(this.cfg.include, this.cfg.exclude, ProcessTable.cheapFacts(info));
  }

  private k8sOf(d: ProcessDetails): K8sFacts {
    const pods = this.pods;
    const pod = pods && d.podUid ? pods.byUid(d.podUid) : undefined;
    if (pods && d.podUid && !pod) pods.want(d.podUid);
    return k8sFactsOf(d, { configured: pods !== undefined, loaded: pods?.loaded ?? false, pod });
  }

  /**
   * Reads everything about `pid` and decides whether it is traced. Processes
   * of explicitly named targets always are; discovered ones go through the
   * selectors. Returns undefined when the process is gone, or (discovered)
   * when a fact a selector needs is not known yet (the pod list has not
   * arrived): the caller asks again later.
   */
  resolve(pid: number, origin: Origin, rustcVersion: string | undefined, info?: ProcessInfo): TracedProcess | undefined {
    info ??= readProcessInfo(pid);
    if (!info) return undefined;
    const details = readProcessDetails(pid);
    const k8s = this.k8sOf(details);
    const explicit = origin !== 'discovered';
    // A pod's process waits (briefly) for the API server's word on its pod,
    // so its resource is built once, from the best source.
    if (!explicit && details.podUid && this.pods?.pending(details.podUid)) return undefined;
    const rc = {
      serviceName: explicit ? this.cfg.serviceName : undefined,
      extra: explicit ? this.cfg.resourceAttributes : this.discoveredExtra,
      rustcVersion,
      details,
      k8s,
      nodeName: this.cfg.k8sApi?.nodeName ?? details.env.K8S_NODE_NAME ?? details.env.OTEL_RESOURCE_ATTRIBUTES_NODE_NAME,
    };
    let verdict: SelectionVerdict = { selected: true, why: origin === 'pid' ? 'named by --pid' : 'runs an --exe target' };
    if (!explicit) {
      const facts: SelectorFacts = {
        ...ProcessTable.cheapFacts(info),
        cgroup: details.cgroup,
        containerId: details.containerId,
        serviceName: serviceNameOf(info, rc),
        k8sNamespace: k8s.namespace,
        k8sPod: k8s.podName,
        k8sContainer: k8s.containerName,
        k8sLabels: k8s.labels,
      };
      verdict = decide(this.cfg.include, this.cfg.exclude, facts);
      if (verdict.selected === undefined) return undefined;
    }
    return {
      info, origin, selected: verdict.selected!, why: verdict.why,
      resource: buildResource(info, rc),
    };
  }

  /** Remembers a resolved process and says so. */
  add(tp: TracedProcess): TracedProcess {
    this.procs.set(tp.info.pid, tp);
    this.onMembership(tp.info.pid, true);
    const a = tp.resource.attributes;
    if (tp.selected) {
      const extra = ['container.id', 'k8s.namespace.name', 'k8s.pod.name'].filter((k) => a[k] !== undefined).map((k) => ` ${k}=${String(a[k])}`).join('');
      log.info(`process ${tp.info.pid} traced (${tp.info.exePath}, service.name=${String(a['service.name'])}${extra})`);
    } else {
      log.info(`process ${tp.info.pid} not traced (${tp.info.exePath}): ${tp.why}`);
    }
    return tp;
  }

  /** Pids whose process exited, was replaced by another with the same pid, or exec'd another file. */
  gone(): number[] {
    const out: number[] = [];
    for (const [pid, tp] of this.procs) if (startTimeOf(pid) !== tp.info.startTime) out.push(pid);
    return out;
  }

  delete(pid: number): void {
    if (this.procs.delete(pid)) this.onMembership(pid, false);
  }

  /** Whether selectors need more than the cheap facts (for the discovery stage). */
  needsSlowFacts(): boolean {
    return this.needs.cgroup || this.needs.environ || this.needs.k8s;
  }
}
