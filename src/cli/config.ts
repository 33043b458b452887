// Configuration: OpenTelemetry environment variables, with command-line flags
// that mirror them. This is the single place where export settings are
// resolved; the export stage gets final values and the official OTLP exporter
// is kept from reading the environment itself (dropResolvedOtlpEnv).
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
import { parseLogLevel, LogLevel } from '../util/log';
import type { Attributes } from '../spans/types';
import { resolveOtlpUrl, type ExportConfig } from '../export/exporter';

export type Protocol = 'grpc' | 'http/protobuf';
export type ExporterName = 'otlp' | 'console';

export interface AgentConfig {
  targetExe?: string;
  targetPid?: number;
  serviceName?: string;
  /** The URL spans are sent to, final: defaults applied, "/v1/traces" appended where the spec says so. */
  endpoint: string;
  protocol: Protocol;
  /** Export headers (HTTP headers or gRPC metadata), final. */
  headers: Record<string, string>;
  /** Timeout of one export request, in ms. */
  timeoutMs: number;
  resourceAttributes: Attributes;
  /** Exporters to run (OTEL_TRACES_EXPORTER); empty = none. */
  exporters: ExporterName[];
  stdout: boolean;
  logLevel: LogLevel;
  /** Stop after this many seconds (0 = run until signalled or the target exits). */
  durationSec: number;
  /** Where live counters are written for `inspect --pid` and the bench. */
  statsFile?: string;
  /** OTEL_SEMCONV_STABILITY_OPT_IN: rpc/dup adds the older experimental RPC attributes to gRPC spans. */
  semconvRpcDup: boolean;
  /** Environment values that were ignored, one line each, for the caller to log as warnings. */
  warnings: string[];
}

/** Flag name -> the (general) environment variable it mirrors. */
export const FLAG_ENV: Record<string, string> = {
  exe: 'OTEL_TARGET_EXE',
  pid: 'OTEL_TARGET_PID',
  'service-name': 'OTEL_SERVICE_NAME',
  endpoint: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  protocol: 'OTEL_EXPORTER_OTLP_PROTOCOL',
  headers: 'OTEL_EXPORTER_OTLP_HEADERS',
  'resource-attributes': 'OTEL_RESOURCE_ATTRIBUTES',
  exporter: 'OTEL_TRACES_EXPORTER',
  stdout: 'OTEL_STDOUT',
  'log-level': 'OTEL_LOG_LEVEL',
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

/**
 * Variables the official OTLP exporters (0.223.x) read by themselves, in their
 * constructors, and merge with what they are given (headers) or fall back to.
 * buildConfig resolves them all, so they must not be read a second time.
 */
export const RESOLVED_OTLP_ENV = [
  'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_TIMEOUT', 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT',
  'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL',
] as const;

/**
 * Removes the variables buildConfig has resolved from `env` (process.env in
 * the CLI) so that the official exporter, created afterwards, cannot merge
 * them in again: it adds OTEL_EXPORTER_OTLP_[TRACES_]HEADERS to the headers
 * it is given. TLS and compression variables are left to it.
 */
export function dropResolvedOtlpEnv(env: NodeJS.ProcessEnv): void {
  for (const name of RESOLVED_OTLP_ENV) delete env[name];
}

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
  };
}

/** W3C-baggage-like `k=v,k2=v2` lists with percent-encoding (OTel env spec). */
export function parseKeyValueList(s: string | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s || !s.trim()) return out;
  for (const part of s.split(',')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UserError(`${what}: "${part.trim()}" is not key=value`, EXIT.USAGE);
    try {
      out[decodeURIComponent(part.slice(0, eq).trim())] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      throw new UserError(`${what}: "${part.trim()}" has a bad percent-encoding`, EXIT.USAGE);
    }
  }
  return out;
}

/** One place a value can come from: a flag or a variable. */
interface Source { value: string; name: string; flag: boolean }

type Flags = Record<string, string | boolean | undefined>;

/** The flag (as `--name`) and then the variables, in precedence order; empty variables count as unset. */
function sources(flags: Flags, env: NodeJS.ProcessEnv, flag: string | undefined, vars: string[]): Source[] {
  const out: Source[] = [];
  if (flag !== undefined) {
    const f = flags[flag];
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
  const targetExe = first('exe');
  if (targetPid !== undefined && targetExe !== undefined)
    throw new UserError('give either a PID (OTEL_TARGET_PID / --pid) or an executable (OTEL_TARGET_EXE / --exe), not both', EXIT.USAGE);

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

  return {
    targetExe,
    targetPid,
    serviceName: first('service-name'),
    endpoint,
    protocol,
    headers,
    timeoutMs,
    resourceAttributes,
    exporters,
    stdout,
    logLevel,
    durationSec,
    statsFile: typeof flags['stats-file'] === 'string' ? (flags['stats-file'] as string) : undefined,
    semconvRpcDup,
    warnings,
  };
}
