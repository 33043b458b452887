// Configuration: OpenTelemetry environment variables, with command-line flags
// that mirror them. This is the single place where settings are resolved: the
// export stage gets final values (TLS files already read) and never looks at
// the environment.
//
// Precedence, per setting: flag > OTEL_EXPORTER_OTLP_TRACES_* (signal-specific)
// > OTEL_EXPORTER_OTLP_* (general) > default. Headers from the two variables
// are merged, the signal-specific one winning per header (as the official JS
// exporter does); a --headers flag replaces both.
//
// Validation follows the OpenTelemetry environment-variable specification:
// an unknown value of an enum-like variable (exporter, protocol, log level)
// or a boolean other than true/false is warned about (AgentConfig.warnings,
// one line each) and ignored, so the next source or the default applies.
// Flags are strict: a bad flag value is a UserError (exit code 2). What names
// the target (PID, executable) and what cannot be sent anywhere sensible (an
// endpoint that is not a URL, malformed header or attribute lists) is an error
// from either source.
import { UserError, EXIT } from '../util/errors';
import { parseKeyValueList } from '../util/kv';
import { parseLogLevel, LogLevel } from '../util/log';
import type { Attributes } from '../spans/types';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { resolveOtlpUrl, type ExportConfig, type Compression, type TlsFiles } from '../export/exporter';
import { parseSelector, type Selector } from '../targets/selectors';
import { inClusterUrl, type K8sApiSettings } from '../targets/k8s';
import { defaultDebuginfodCache, type SymbolOptions } from '../binary/symbol-sources';

export type Protocol = 'grpc' | 'http/protobuf';
export type ExporterName = 'otlp' | 'console';

export interface AgentConfig {
  /** Executables to trace every process of (repeated --exe, or a comma-separated OTEL_TARGET_EXE). */
  targetExes: string[];
  targetPid?: number;
  /** Discovery: every process whose executable links a supported library, filtered by the selectors. */
  discover: boolean;
  /** Discovery selectors: a process is traced when any include matches (or there is none) and no exclude does. */
  include: Selector[];
  exclude: Selector[];
  /** How often /proc is scanned for new processes and executables (ms). */
  scanIntervalMs: number;
  /** Where the Prometheus metrics, /healthz and /readyz are served; off when undefined. */
  metricsAddress?: MetricsAddress;
  /** Pod metadata from the Kubernetes API server; off when undefined. */
  k8sApi?: K8sApiSettings;
  /** The OTLP relay (the agent as the application's OTLP endpoint): OTLP/HTTP and OTLP/gRPC listeners; off when undefined. */
  relayAddress?: MetricsAddress;
  relayGrpcAddress?: MetricsAddress;
  /** The agent's own service name: names the processes of --pid / --exe targets (not discovered ones). */
  serviceName?: string;
  /** The URL spans are sent to, final: defaults applied, "/v1/traces" appended where the spec says so. */
  endpoint: string;
  protocol: Protocol;
  /** Export headers (HTTP headers or gRPC metadata), final. */
  headers: Record<string, string>;
  /** Timeout of one export request, in ms. */
  timeoutMs: number;
  /** OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION. */
  compression: Compression;
  /** TLS material for the exporter, read from the files the variables name. */
  tls: TlsFiles;
  resourceAttributes: Attributes;
  /** Exporters to run (OTEL_TRACES_EXPORTER); empty = none. */
  exporters: ExporterName[];
  stdout: boolean;
  logLevel: LogLevel;
  /** Stop after this many seconds (0 = run until signalled or the target exits). */
  durationSec: number;
  /** Where live counters are written for `inspect --pid` and the bench. */
  statsFile?: string;
  /** Size of the BPF ring buffer the probes write to (bytes: a power of two, a multiple of the page size). */
  ringBytes: number;
  /** The span queue of the OTLP exporter (OTEL_BSP_*); undefined = the exporter's defaults. */
  maxQueueSpans?: number;
  batchSize?: number;
  flushIntervalMs?: number;
  /** Where symbols of a stripped binary are looked for. */
  symbols: SymbolOptions;
  /** OTEL_SEMCONV_STABILITY_OPT_IN: rpc/dup adds the older experimental RPC attributes to gRPC spans. */
  semconvRpcDup: boolean;
  /** OTEL_RUST_AGENT_RECORD_EVENTS: a developer aid, raw ring records are appended to this file (make bench-pipeline). */
  recordEventsFile?: string;
  /** OTEL_RUST_AGENT_CPU_PROFILE: a developer aid, a V8 CPU profile of the agent from the BPF load to the stop is written to this file. */
  cpuProfileFile?: string;
  /** Environment values that were ignored, one line each, for the caller to log as warnings. */
  warnings: string[];
}

/**
 * Symbol sources for stripped binaries: --symbols FILE / OTEL_RUST_AGENT_SYMBOLS
 * (an unstripped build of the target), --debug-dir DIR / OTEL_RUST_AGENT_DEBUG_DIR
 * (colon-separated debug-file roots, searched before /usr/lib/debug), and the
 * debuginfod client's variables DEBUGINFOD_URLS (space-separated),
 * DEBUGINFOD_CACHE_PATH and DEBUGINFOD_TIMEOUT (seconds). A symbols file or
 * debug directory that does not exist is an error from either source; a
 * debuginfod URL that is not http(s) is warned about and skipped.
 */
export function symbolOptions(flags: Flags, env: NodeJS.ProcessEnv, warnings: string[]): SymbolOptions {
  const symSrc = sources(flags, env, 'symbols', ['OTEL_RUST_AGENT_SYMBOLS'])[0];
  let symbolsFile: string | undefined;
  if (symSrc) {
    symbolsFile = symSrc.value;
    let st: fs.Stats | undefined;
    try { st = fs.statSync(symbolsFile); } catch { /* reported below */ }
    if (!st) throw new UserError(`${symSrc.name}: ${symbolsFile}: no such file`, EXIT.USAGE);
    if (!st.isFile()) throw new UserError(`${symSrc.name}: ${symbolsFile}: not a regular file`, EXIT.USAGE);
  }
  const dirSrc = sources(flags, env, 'debug-dir', ['OTEL_RUST_AGENT_DEBUG_DIR'])[0];
  const debugDirs: string[] = [];
  for (const d of dirSrc ? dirSrc.value.split(':').map((x) => x.trim()).filter(Boolean) : []) {
    let ok = false;
    try { ok = fs.statSync(d).isDirectory(); } catch { /* reported below */ }
    if (!ok) throw new UserError(`${dirSrc!.name}: ${d}: not a directory`, EXIT.USAGE);
    debugDirs.push(d);
  }
  const debuginfodUrls: string[] = [];
  for (const u of (env.DEBUGINFOD_URLS ?? '').split(/\s+/).filter(Boolean)) {
    let proto = '';
    try { proto = new URL(u).protocol; } catch { /* not a URL */ }
    if (proto === 'http:' || proto === 'https:') debuginfodUrls.push(u);
    else warnings.push(`DEBUGINFOD_URLS: "${u}" is not an http(s) URL; ignored`);
  }
  let timeoutS = 90;
  const t = env.DEBUGINFOD_TIMEOUT?.trim();
  if (t) {
    if (/^\d+$/.test(t) && Number(t) > 0) timeoutS = Math.min(Number(t), 3600);
    else warnings.push(`DEBUGINFOD_TIMEOUT: "${t}" is not a number of seconds; ignored, using 90`);
  }
  return { symbolsFile, debugDirs, debuginfodUrls, debuginfodCache: defaultDebuginfodCache(env), debuginfodTimeoutMs: timeoutS * 1000 };
}

export interface MetricsAddress {
  /** undefined: every interface (Node listens on :: and 0.0.0.0). */
  host: string | undefined;
  port: number;
  /** As given, for messages. */
  text: string;
}

/** Flag name -> the (general) environment variable it mirrors. */
export const FLAG_ENV: Record<string, string> = {
  exe: 'OTEL_TARGET_EXE',
  pid: 'OTEL_TARGET_PID',
  discover: 'OTEL_RUST_AGENT_DISCOVER',
  include: 'OTEL_RUST_AGENT_DISCOVER_INCLUDE',
  exclude: 'OTEL_RUST_AGENT_DISCOVER_EXCLUDE',
  'metrics-address': 'OTEL_RUST_AGENT_METRICS_ADDRESS',
  'otlp-relay-address': 'OTEL_RUST_AGENT_OTLP_RELAY_ADDRESS',
  'otlp-relay-grpc-address': 'OTEL_RUST_AGENT_OTLP_RELAY_GRPC_ADDRESS',
  'k8s-api': 'OTEL_RUST_AGENT_K8S_API',
  'service-name': 'OTEL_SERVICE_NAME',
  endpoint: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  protocol: 'OTEL_EXPORTER_OTLP_PROTOCOL',
  headers: 'OTEL_EXPORTER_OTLP_HEADERS',
  'resource-attributes': 'OTEL_RESOURCE_ATTRIBUTES',
  exporter: 'OTEL_TRACES_EXPORTER',
  stdout: 'OTEL_STDOUT',
  'log-level': 'OTEL_LOG_LEVEL',
  compression: 'OTEL_EXPORTER_OTLP_COMPRESSION',
  'ring-size': 'OTEL_RUST_AGENT_RING_BYTES',
};

export const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * OTEL_EXPORTER_OTLP_TIMEOUT=0 means no limit; this is what stands for it
 * (23 days: Node timers, including the export watchdog 15 s beyond it, must
 * stay below 2^31 ms). Larger values are capped to it.
 */
export const MAX_TIMEOUT_MS = 2_000_000_000;
/** --duration at most 24 days (Node timers cannot wait more than 2^31 ms, ~24.8 days). */
export const MAX_DURATION_SEC = 24 * 24 * 3600;

/** The export stage's settings for `cfg`: every value final, nothing left to the environment. */
export function exportSettings(cfg: AgentConfig): ExportConfig {
  const otlp = cfg.exporters.includes('otlp');
  return {
    exporter: otlp ? 'otlp' : cfg.exporters.includes('console') ? 'console' : 'none',
    stdoutTree: cfg.stdout || cfg.exporters.includes('console'),
    protocol: cfg.protocol,
    // The resolved URL, used as is (the "signal-specific endpoint" slot).
    tracesEndpoint: cfg.endpoint,
    headers: { ...cfg.headers },
    timeoutMillis: cfg.timeoutMs,
    compression: cfg.compression,
    tls: cfg.tls,
    ...(cfg.maxQueueSpans !== undefined ? { maxQueueSpans: cfg.maxQueueSpans } : {}),
    ...(cfg.batchSize !== undefined ? { batchSize: cfg.batchSize } : {}),
    ...(cfg.flushIntervalMs !== undefined ? { flushIntervalMs: cfg.flushIntervalMs } : {}),
  };
}

/** 16 MiB: about 30k request records of the common size, over half a second of traffic at 50k requests/s. */
export const DEFAULT_RING_BYTES = 16 << 20;
/** x86-64 pages (the agent runs on x86-64 only). */
const PAGE_BYTES = 4096;
const MAX_RING_BYTES = 1 << 30;

/**
 * --ring-size / OTEL_RUST_AGENT_RING_BYTES: bytes, or with a K, M or G suffix
 * (KiB, MiB, GiB). The kernel takes only a power of two that is a multiple of
 * the page size; a wrong size is an error from either source (it sizes what
 * the agent can absorb, so a silent fallback would hide a misconfiguration).
 */
export function parseRingBytes(s: Source): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(s.value.trim());
  const unit = m?.[2]?.[0]?.toLowerCase();
  const n = m ? Number(m[1]) * (unit === 'k' ? 1024 : unit === 'm' ? 1 << 20 : unit === 'g' ? 1 << 30 : 1) : NaN;
  const why = !Number.isSafeInteger(n) ? 'is not a size (bytes, or a number with K, M or G)'
    : n < PAGE_BYTES || n % PAGE_BYTES !== 0 ? `is not a multiple of the page size (${PAGE_BYTES} bytes)`
      : (n & (n - 1)) !== 0 && n <= MAX_RING_BYTES ? 'is not a power of two (4K, 8K, ... 16M, ...)'
        : n > MAX_RING_BYTES ? 'is too large (at most 1G)' : undefined;
  if (why) throw new UserError(`${s.name}: "${s.value}" ${why}`, EXIT.USAGE);
  return n;
}

/** OTEL_BSP_* integers: a bad value is warned about and ignored, as the specification says. */
function bspInteger(flags: Flags, env: NodeJS.ProcessEnv, name: string, min: number, warnings: string[]): number | undefined {
  return resolve<number | undefined>(sources(flags, env, undefined, [name]),
    (v) => (/^\d+$/.test(v.trim()) && Number(v) >= min && Number(v) <= 2_000_000_000 ? Number(v) : undefined),
    `is not a whole number of at least ${min}`, undefined, (n) => (n === undefined ? 'the default' : String(n)), warnings);
}

/** W3C-baggage-like `k=v,k2=v2` lists (src/util/kv.ts). */
export { parseKeyValueList };

/** One place a value can come from: a flag or a variable. */
interface Source { value: string; name: string; flag: boolean }

type Flags = Record<string, string | boolean | string[] | undefined>;

/** The flag (as `--name`) and then the variables, in precedence order; empty variables count as unset. */
function sources(flags: Flags, env: NodeJS.ProcessEnv, flag: string | undefined, vars: string[]): Source[] {
  const out: Source[] = [];
  if (flag !== undefined) {
    const f = flags[flag];
    if (Array.isArray(f)) throw new Error(`--${flag} is a list flag`);
    if (f !== undefined) out.push({ value: f === true ? 'true' : f === false ? 'false' : f, name: `--${flag}`, flag: true });
  }
  for (const v of vars) {
    const s = env[v];
    if (s !== undefined && s !== '') out.push({ value: s, name: v, flag: false });
  }
  return out;
}

/**
 * The first source whose value `parse` accepts. A rejected flag is a usage
 * error; a rejected variable is a warning and the next source is tried.
 */
function resolve<T>(srcs: Source[], parse: (v: string) => T | undefined, expected: string,
  fallback: T, show: (v: T) => string, warnings: string[]): T {
  const ignored: Source[] = [];
  let result = fallback;
  for (const s of srcs) {
    const v = parse(s.value);
    if (v !== undefined) { result = v; break; }
    if (s.flag) throw new UserError(`${s.name}: "${s.value}" ${expected}`, EXIT.USAGE);
    ignored.push(s);
  }
  for (const s of ignored) warnings.push(`${s.name}: "${s.value}" ${expected}; ignored, using ${show(result)}`);
  return result;
}

function parseCompression(v: string): Compression | undefined {
  const s = v.trim().toLowerCase();
  return s === 'gzip' || s === 'none' ? s : undefined;
}

/** A PEM file named by a variable: read now, so a bad path is one clear error at start. */
function readPemFile(src: Source | undefined): Buffer | undefined {
  if (!src) return undefined;
  const p = src.value.trim();
  let b: Buffer;
  try {
    b = fs.readFileSync(p);
  } catch (e) {
    throw new UserError(`${src.name}: cannot read "${p}" (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, EXIT.USAGE);
  }
  if (!b.includes('-----BEGIN ')) throw new UserError(`${src.name}: "${p}" is not a PEM file`, EXIT.USAGE);
  return b;
}

function parseProtocol(v: string): Protocol | undefined {
  const s = v.trim().toLowerCase();
  return s === 'grpc' || s === 'http/protobuf' ? s : undefined;
}

/** Spec Boolean: only "true" (any case) is true; "false" is false; anything else is invalid. */
function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  return s === 'true' ? true : s === 'false' ? false : undefined;
}

/** Spec Timeout: non-negative integer milliseconds; 0 = no limit. */
function parseTimeout(v: string): number | undefined {
  const s = v.trim();
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n === 0 || n > MAX_TIMEOUT_MS ? MAX_TIMEOUT_MS : n;
}

const EXPORTERS = 'use otlp, console or none, or a comma-separated list such as otlp,console';

/**
 * OTEL_TRACES_EXPORTER / --exporter: a comma-separated list of otlp, console
 * and none (alone). From a flag anything unknown is an error; from the
 * variable unknown entries are warned about and skipped, and if none is left
 * the setting is ignored (default otlp).
 */
function resolveExporters(src: Source | undefined, warnings: string[]): ExporterName[] {
  if (!src) return ['otlp'];
  const entries = src.value.split(',').map((e) => e.trim().toLowerCase()).filter((e) => e !== '');
  const out = new Set<ExporterName>();
  let none = false;
  let usable = 0;
  for (const e of entries) {
    if (e === 'otlp' || e === 'console') { out.add(e); usable++; continue; }
    if (e === 'none') { none = true; usable++; continue; }
    if (src.flag) throw new UserError(`${src.name}: "${e}" is not supported (${EXPORTERS})`, EXIT.USAGE);
    warnings.push(`${src.name}: "${e}" is not supported (${EXPORTERS}); ignored`);
  }
  if (none && out.size > 0) {
    if (src.flag) throw new UserError(`${src.name}: "none" cannot be combined with other exporters`, EXIT.USAGE);
    warnings.push(`${src.name}: "none" cannot be combined with other exporters; ignored`);
  }
  if (usable === 0) {
    if (src.flag) throw new UserError(`${src.name}: no exporter given (${EXPORTERS})`, EXIT.USAGE);
    warnings.push(`${src.name}: no usable exporter in "${src.value}"; using otlp`);
    return ['otlp'];
  }
  return [...out];
}

/** Merges header records; a later record wins, header names compared without case. */
function mergeHeaders(...records: Record<string, string>[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      for (const existing of Object.keys(out)) if (existing.toLowerCase() === k.toLowerCase()) delete out[existing];
      out[k] = v;
    }
  }
  return out;
}

function checkUrl(s: Source): string {
  const v = s.value.trim();
  try { new URL(v); } catch { throw new UserError(`${s.name}: "${s.value}" is not a URL`, EXIT.USAGE); }
  return v;
}

export const DEFAULT_SCAN_INTERVAL_MS = 1000;

/**
 * --exe (repeatable; each flag is one path) or OTEL_TARGET_EXE (a
 * comma-separated list, as OpenTelemetry lists are). The flags replace the
 * variable. Duplicates are dropped.
 */
function resolveExes(flags: Flags, env: NodeJS.ProcessEnv): string[] {
  const f = flags.exe;
  let list: string[];
  if (f !== undefined) {
    list = (Array.isArray(f) ? f : [String(f)]).map((s) => s.trim());
    if (list.some((s) => s === '')) throw new UserError('--exe: empty path', EXIT.USAGE);
  } else {
    const v = env[FLAG_ENV.exe];
    if (v === undefined || v.trim() === '') return [];
    list = v.split(',').map((s) => s.trim());
    if (list.some((s) => s === '')) throw new UserError(`${FLAG_ENV.exe}: empty entry in "${v}" (a comma-separated list of paths)`, EXIT.USAGE);
  }
  return [...new Set(list)];
}

/**
 * --include / --exclude SELECTOR (repeatable), or their variables with
 * selectors separated by ";" (a selector's criteria are separated by ",").
 * Selectors decide what is traced, so a bad one is an error from either source.
 */
function resolveSelectors(flags: Flags, env: NodeJS.ProcessEnv, which: 'include' | 'exclude'): Selector[] {
  const f = flags[which];
  if (f !== undefined) return (Array.isArray(f) ? f : [String(f)]).map((t) => parseSelector(t, `--${which}`));
  const v = env[FLAG_ENV[which]];
  if (v === undefined || v.trim() === '') return [];
  return v.split(';').filter((t) => t.trim() !== '').map((t) => parseSelector(t, FLAG_ENV[which]));
}

/**
 * PORT (loopback only: 127.0.0.1), HOST:PORT, [IPv6]:PORT, or :PORT (every
 * interface). Port 0 picks a free port (the agent logs it).
 */
export function parseMetricsAddress(s: Source): MetricsAddress {
  const v = s.value.trim();
  const bad = () => new UserError(`${s.name}: "${s.value}" is not an address (PORT, HOST:PORT, [IPv6]:PORT or :PORT)`, EXIT.USAGE);
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):)?(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw bad();
  const port = Number(m[2]);
  if (m[1] === undefined) return { host: '127.0.0.1', port, text: v };
  if (m[1] === '') return { host: undefined, port, text: v };
  return { host: m[1].startsWith('[') ? m[1].slice(1, -1) : m[1], port, text: v };
}

/** off, in-cluster, or the API server's base URL (used without credentials: kubectl proxy). */
function parseK8sApi(s: Source, env: NodeJS.ProcessEnv, nodeName: string): K8sApiSettings | undefined {
  const v = s.value.trim();
  if (v.toLowerCase() === 'off') return undefined;
  if (v.toLowerCase() === 'in-cluster') {
    const url = inClusterUrl(env);
    if (!url) throw new UserError(`${s.name}: in-cluster needs KUBERNETES_SERVICE_HOST (set by the kubelet in a pod)`, EXIT.USAGE);
    return { url, inCluster: true, nodeName };
  }
  let u: URL;
  try { u = new URL(v); } catch { throw new UserError(`${s.name}: "${s.value}" is not off, in-cluster or a URL`, EXIT.USAGE); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`${s.name}: "${s.value}" is not an http(s) URL`, EXIT.USAGE);
  return { url: v, inCluster: false, nodeName };
}

export function buildConfig(flags: Flags, env: NodeJS.ProcessEnv): AgentConfig {
  const warnings: string[] = [];
  const firstSource = (flag: string): Source | undefined => sources(flags, env, flag, [FLAG_ENV[flag]])[0];
  const first = (flag: string): string | undefined => firstSource(flag)?.value;

  let targetPid: number | undefined;
  const pidS = first('pid');
  if (pidS !== undefined) {
    if (!/^\d+$/.test(pidS.trim()) || Number(pidS) <= 0) throw new UserError(`invalid PID "${pidS}"`, EXIT.USAGE);
    targetPid = Number(pidS);
  }
  const targetExes = resolveExes(flags, env);
  const discover = resolve(sources(flags, env, 'discover', [FLAG_ENV.discover]), parseBool,
    'is not a boolean (true or false)', false, String, warnings);
  if (targetPid !== undefined && (targetExes.length > 0 || discover))
    throw new UserError(targetExes.length > 0
      ? 'give either a PID (OTEL_TARGET_PID / --pid) or an executable (OTEL_TARGET_EXE / --exe), not both'
      : 'give either a PID (OTEL_TARGET_PID / --pid) or discovery (OTEL_RUST_AGENT_DISCOVER / --discover), not both', EXIT.USAGE);

  const include = resolveSelectors(flags, env, 'include');
  const exclude = resolveSelectors(flags, env, 'exclude');
  if (!discover && (include.length || exclude.length)) {
    const which = include.length ? 'include' : 'exclude';
    throw new UserError(`${flags[which] !== undefined ? `--${which}` : FLAG_ENV[which]}: selectors choose among discovered processes; turn discovery on (--discover / OTEL_RUST_AGENT_DISCOVER=true)`, EXIT.USAGE);
  }

  const scanIntervalMs = resolve(sources(flags, env, undefined, ['OTEL_RUST_AGENT_SCAN_INTERVAL']),
    (v) => (/^\d+$/.test(v.trim()) && Number(v) >= 100 && Number(v) <= 3_600_000 ? Number(v) : undefined),
    'is not a scan interval (whole milliseconds, 100 to 3600000)', DEFAULT_SCAN_INTERVAL_MS, (n) => `${n} ms`, warnings);

  const maSrc = firstSource('metrics-address');
  const metricsAddress = maSrc ? parseMetricsAddress(maSrc) : undefined;
  const relaySrc = firstSource('otlp-relay-address');
  const relayAddress = relaySrc ? parseMetricsAddress(relaySrc) : undefined;
  const relayGrpcSrc = firstSource('otlp-relay-grpc-address');
  const relayGrpcAddress = relayGrpcSrc ? parseMetricsAddress(relayGrpcSrc) : undefined;

  const k8sSrc = firstSource('k8s-api');
  const nodeName = sources(flags, env, undefined, ['OTEL_RUST_AGENT_K8S_NODE_NAME'])[0]?.value.trim();
  const k8sApi = k8sSrc ? parseK8sApi(k8sSrc, env, nodeName || os.hostname()) : undefined;
  const labelSel = [...include, ...exclude].find((s) => s.criteria.some((c) => c.key.startsWith('k8s.label.')));
  if (labelSel && !k8sApi)
    throw new UserError(`selector "${labelSel.text}": pod labels are only known from the API server; set --k8s-api (in-cluster or a URL)`, EXIT.USAGE);

  // The default protocol is grpc, not the spec's recommended http/protobuf (see README).
  const protocol = resolve(
    sources(flags, env, 'protocol', ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']),
    parseProtocol, 'is not supported (use grpc or http/protobuf)', 'grpc' as Protocol, (p) => p, warnings);

  // --endpoint and OTEL_EXPORTER_OTLP_ENDPOINT are base URLs (http/protobuf
  // appends /v1/traces); OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is.
  // Only the source that wins is read (and must be a URL).
  const epSrc = sources(flags, env, 'endpoint', ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'])[0];
  const endpoint = epSrc === undefined
    ? resolveOtlpUrl(protocol)
    : epSrc.name === 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'
      ? resolveOtlpUrl(protocol, undefined, checkUrl(epSrc))
      : resolveOtlpUrl(protocol, checkUrl(epSrc));

  let headers: Record<string, string>;
  if (flags['headers'] !== undefined) {
    headers = parseKeyValueList(String(flags['headers']), '--headers');
  } else {
    headers = mergeHeaders(
      parseKeyValueList(env.OTEL_EXPORTER_OTLP_HEADERS, 'OTEL_EXPORTER_OTLP_HEADERS'),
      parseKeyValueList(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'));
  }

  const timeoutMs = resolve(
    sources(flags, env, undefined, ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT']),
    parseTimeout, 'is not a timeout (a whole number of milliseconds, 0 for none)', DEFAULT_TIMEOUT_MS,
    (n) => `${n} ms`, warnings);

  const compression = resolve(
    sources(flags, env, 'compression', ['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION']),
    parseCompression, 'is not supported (use gzip or none)', 'none' as Compression, (c) => c, warnings);

  // TLS: the signal-specific variable wins over the general one, per setting.
  const tlsVar = (name: string) => sources(flags, env, undefined, [`OTEL_EXPORTER_OTLP_TRACES_${name}`, `OTEL_EXPORTER_OTLP_${name}`])[0];
  const tls: TlsFiles = {
    ca: readPemFile(tlsVar('CERTIFICATE')),
    clientKey: readPemFile(tlsVar('CLIENT_KEY')),
    clientCert: readPemFile(tlsVar('CLIENT_CERTIFICATE')),
    insecure: resolve(sources(flags, env, undefined, ['OTEL_EXPORTER_OTLP_TRACES_INSECURE', 'OTEL_EXPORTER_OTLP_INSECURE']),
      parseBool, 'is not a boolean (true or false)', false, String, warnings),
  };
  if ((tls.clientKey === undefined) !== (tls.clientCert === undefined)) {
    throw new UserError('OTEL_EXPORTER_OTLP_CLIENT_KEY and OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE go together: give both or neither', EXIT.USAGE);
  }

  const exporters = resolveExporters(sources(flags, env, 'exporter', [FLAG_ENV.exporter])[0], warnings);

  const stdout = resolve(sources(flags, env, 'stdout', [FLAG_ENV.stdout]), parseBool,
    'is not a boolean (true or false)', false, String, warnings);

  const logLevel = resolve(sources(flags, env, 'log-level', [FLAG_ENV['log-level']]), parseLogLevel,
    'is not a level (none, error, warn, info, debug, verbose)', 'info' as LogLevel, (l) => l, warnings);

  const durS = flags['duration'];
  let durationSec = 0;
  if (typeof durS === 'string') {
    durationSec = durS.trim() === '' ? NaN : Number(durS);
    if (!Number.isFinite(durationSec) || durationSec < 0) throw new UserError(`--duration: "${durS}" is not a number of seconds`, EXIT.USAGE);
    if (durationSec > MAX_DURATION_SEC)
      throw new UserError(`--duration: "${durS}" is too long (at most ${MAX_DURATION_SEC} seconds, 24 days)`, EXIT.USAGE);
  }

  // OTEL_SEMCONV_STABILITY_OPT_IN: comma-separated categories. The agent
  // emits the stable conventions; "rpc/dup" adds the older experimental RPC
  // names (it has precedence over "rpc", which is the default here). Other
  // categories have nothing older to duplicate and are accepted silently.
  const optIn = (env.OTEL_SEMCONV_STABILITY_OPT_IN ?? '').split(',').map((v) => v.trim().toLowerCase());
  const semconvRpcDup = optIn.includes('rpc/dup');

  const attrSrc = firstSource('resource-attributes');
  const resourceAttributes = parseKeyValueList(attrSrc?.value, attrSrc?.name ?? FLAG_ENV['resource-attributes']);

  const ringSrc = firstSource('ring-size');
  const ringBytes = ringSrc ? parseRingBytes(ringSrc) : DEFAULT_RING_BYTES;

  // The span queue, named as the batch span processor's settings are.
  const maxQueueSpans = bspInteger(flags, env, 'OTEL_BSP_MAX_QUEUE_SIZE', 1, warnings);
  let batchSize = bspInteger(flags, env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1, warnings);
  const flushIntervalMs = bspInteger(flags, env, 'OTEL_BSP_SCHEDULE_DELAY', 1, warnings);
  if (batchSize !== undefined && maxQueueSpans !== undefined && batchSize > maxQueueSpans) {
    warnings.push(`OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "${batchSize}" is larger than OTEL_BSP_MAX_QUEUE_SIZE; using ${maxQueueSpans}`);
    batchSize = maxQueueSpans;
  }
  const symbols = symbolOptions(flags, env, warnings);

  const serviceName = first('service-name');
  if (serviceName !== undefined && discover && targetExes.length === 0) {
    const why = 'names the processes of --pid / --exe targets; discovered processes are named by their own OTEL_SERVICE_NAME, or their executable';
    if (flags['service-name'] !== undefined) throw new UserError(`--service-name ${why}`, EXIT.USAGE);
    warnings.push(`OTEL_SERVICE_NAME="${serviceName}" ${why}; not used`);
  }

  return {
    targetExes,
    targetPid,
    symbols,
    discover,
    include,
    exclude,
    scanIntervalMs,
    metricsAddress,
    ...(relayAddress ? { relayAddress } : {}),
    ...(relayGrpcAddress ? { relayGrpcAddress } : {}),
    k8sApi,
    serviceName,
    endpoint,
    protocol,
    headers,
    timeoutMs,
    compression,
    tls,
    resourceAttributes,
    exporters,
    stdout,
    logLevel,
    durationSec,
    ringBytes,
    ...(maxQueueSpans !== undefined ? { maxQueueSpans } : {}),
    ...(batchSize !== undefined ? { batchSize } : {}),
    ...(flushIntervalMs !== undefined ? { flushIntervalMs } : {}),
    statsFile: typeof flags['stats-file'] === 'string' ? (flags['stats-file'] as string) : undefined,
    semconvRpcDup,
    ...(env.OTEL_RUST_AGENT_RECORD_EVENTS ? { recordEventsFile: env.OTEL_RUST_AGENT_RECORD_EVENTS } : {}),
    ...(env.OTEL_RUST_AGENT_CPU_PROFILE ? { cpuProfileFile: env.OTEL_RUST_AGENT_CPU_PROFILE } : {}),
    warnings,
  };
}
