// Pod metadata from the Kubernetes API server, when configured
// (OTEL_RUST_AGENT_K8S_API / --k8s-api): the pods of this node, listed with
// a field selector, so one request covers every process the agent can see.
// Needs RBAC "list" on pods (the Helm chart's ClusterRole grants exactly that).
//
// in-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT with the
//   pod's service-account token (re-read before every request: bound tokens
//   rotate) and CA;
// a URL: used as is, without credentials (kubectl proxy, or a test server).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { bareContainerId } from './container';
import { log, warnEvery } from '../util/log';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const REFRESH_MS = 30_000;
const MIN_GAP_MS = 2_000;
// A pod the list does not have yet (just started) is waited for this long;
// then its processes go on with what they say about themselves.
const NEW_POD_WAIT_MS = 5_000;
const TIMEOUT_MS = 10_000;

export interface K8sApiSettings {
  /** Base URL of the API server. */
  url: string;
  inCluster: boolean;
  nodeName: string;
}

export interface PodMeta {
  uid: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** Bare container id -> container name. */
  containers: Map<string, string>;
}

interface PodList {
  items?: {
    metadata?: { uid?: string; name?: string; namespace?: string; labels?: Record<string, string> };
    status?: {
      containerStatuses?: { name?: string; containerID?: string }[];
      initContainerStatuses?: { name?: string; containerID?: string }[];
      ephemeralContainerStatuses?: { name?: string; containerID?: string }[];
    };
  }[];
}

export function inClusterUrl(env: NodeJS.ProcessEnv): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) return undefined;
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function parsePodList(body: PodList): Map<string, PodMeta> {
  const out = new Map<string, PodMeta>();
  for (const it of body.items ?? []) {
    const md = it.metadata;
    if (!md?.uid || !md.name || !md.namespace) continue;
    const containers = new Map<string, string>();
    const st = it.status ?? {};
    for (const c of [...(st.containerStatuses ?? []), ...(st.initContainerStatuses ?? []), ...(st.ephemeralContainerStatuses ?? [])]) {
      if (c.containerID && c.name) containers.set(bareContainerId(c.containerID), c.name);
    }
    out.set(md.uid, { uid: md.uid, name: md.name, namespace: md.namespace, labels: md.labels ?? {}, containers });
  }
  return out;
}

export class PodCache {
  private pods = new Map<string, PodMeta>();
  private inflight: Promise<void> | undefined;
  private lastStart = 0;
  /** Pods asked for but not listed yet: uid -> when first asked. */
  private missing = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  /** True once one list succeeded: until then, pod facts are "not known yet". */
  loaded = false;
  lastError: string | undefined;
  requests = 0;
  failures = 0;

  constructor(private readonly cfg: K8sApiSettings, private readonly onUpdate: () => void) {}

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  byUid(uid: string): PodMeta | undefined {
    return this.pods.get(uid);
  }

  /** A pod we have not seen: list again soon (at most every 2 s). */
  want(uid: string): void {
    if (this.pods.has(uid)) return;
    if (!this.missing.has(uid)) this.missing.set(uid, Date.now());
    if (Date.now() - this.lastStart >= MIN_GAP_MS) void this.refresh();
  }

  /**
   * Whether facts about pod `uid` are still to come: before the first list
   * (unless it failed), or for a pod first asked about less than 5 s ago.
   */
  pending(uid: string): boolean {
    if (this.pods.has(uid)) return false;
    if (!this.loaded) return this.failures === 0;
    const since = this.missing.get(uid);
    return since !== undefined && Date.now() - since < NEW_POD_WAIT_MS;
  }

  refresh(): Promise<void> {
    if (this.inflight) return this.inflight;
    this.lastStart = Date.now();
    this.inflight = this.list().then(
      (pods) => {
        const first = !this.loaded;
        this.pods = pods;
        this.loaded = true;
        for (const uid of this.missing.keys()) if (pods.has(uid)) this.missing.delete(uid);
        this.lastError = undefined;
        if (first) log.info(`kubernetes: ${pods.size} pod(s) on node ${this.cfg.nodeName} from ${this.cfg.url}`);
        this.onUpdate();
      },
      (e: Error) => {
        this.failures++;
        this.lastError = e.message;
        warnEvery('k8s', 60_000, `kubernetes: cannot list the pods of node ${this.cfg.nodeName} from ${this.cfg.url}: ${e.message}`);
      },
    ).finally(() => { this.inflight = undefined; });
    return this.inflight;
  }

  private list(): Promise<Map<string, PodMeta>> {
    this.requests++;
    const url = new URL(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.cfg.nodeName}`)}`, this.cfg.url);
    const headers: Record<string, string> = { accept: 'application/json' };
    let ca: Buffer | undefined;
    if (this.cfg.inCluster) {
      try {
        headers.authorization = `Bearer ${fs.readFileSync(`${SA_DIR}/token`, 'utf8').trim()}`;
        ca = fs.readFileSync(`${SA_DIR}/ca.crt`);
      } catch (e) {
        return Promise.reject(new Error(`no service-account credentials in ${SA_DIR} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`));
      }
    }
    return new Promise((resolve, reject) => {
      const mod = url.protocol === 'https:' ? https : http;
      const req = mod.request(url, { method: 'GET', headers, ca, timeout: TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            const msg = (() => { try { return (JSON.parse(text) as { message?: string }).message; } catch { return undefined; } })();
            reject(new Error(`HTTP ${res.statusCode}${msg ? `: ${msg}` : ''}`));
            return;
          }
          try { resolve(parsePodList(JSON.parse(text) as PodList)); } catch (e) { reject(new Error(`bad pod list: ${(e as Error).message}`)); }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end();
    });
  }
}
