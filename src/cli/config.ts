// Configuration: OpenTelemetry environment variables, with command-line flags
// that mirror them (a flag wins over its variable). Invalid values are
// UserErrors with one clear line.
import { UserError, EXIT } from '../util/errors';
import { parseLogLevel, LogLevel } from '../util/log';
import type { Attributes } from '../spans/types';

export type Protocol = 'grpc' | 'http/protobuf';
export type ExporterName = 'otlp' | 'console' | 'none';

export interface AgentConfig {
  targetExe?: string;
  targetPid?: number;
  serviceName?: string;
  endpoint?: string;          // undefined: the protocol's default
  protocol: Protocol;
  headers: Record<string, string>;
  resourceAttributes: Attributes;
  exporter: ExporterName;
  stdout: boolean;
  logLevel: LogLevel;
  /** Stop after this many seconds (0 = run until signalled or the target exits). */
  durationSec: number;
  /** Where live counters are written for `inspect --pid` and the bench. */
  statsFile?: string;
}

/** Flag name -> environment variable it mirrors. */
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

function bool(v: string | undefined, name: string): boolean {
  if (v === undefined || v === '') return false;
  const s = v.trim().toLowerCase();
  if (s === 'true' || s === '1' || s === 'yes') return true;
  if (s === 'false' || s === '0' || s === 'no') return false;
  throw new UserError(`${name}: expected true or false, got "${v}"`, EXIT.USAGE);
}

export function buildConfig(flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): AgentConfig {
  const get = (flag: string): string | undefined => {
    const f = flags[flag];
    if (f !== undefined) return f === true ? 'true' : f === false ? 'false' : f;
    const v = env[FLAG_ENV[flag]];
    return v === undefined || v === '' ? undefined : v;
  };

  let targetPid: number | undefined;
  const pidS = get('pid');
  if (pidS !== undefined) {
    if (!/^\d+$/.test(pidS.trim()) || Number(pidS) <= 0) throw new UserError(`invalid PID "${pidS}"`, EXIT.USAGE);
    targetPid = Number(pidS);
  }
  const targetExe = get('exe');
  if (targetPid !== undefined && targetExe !== undefined)
    throw new UserError('give either a PID (OTEL_TARGET_PID / --pid) or an executable (OTEL_TARGET_EXE / --exe), not both', EXIT.USAGE);

  const protoS = (get('protocol') ?? 'grpc').trim();
  if (protoS !== 'grpc' && protoS !== 'http/protobuf')
    throw new UserError(`OTEL_EXPORTER_OTLP_PROTOCOL: "${protoS}" is not supported (use grpc or http/protobuf)`, EXIT.USAGE);

  const expS = (get('exporter') ?? 'otlp').trim().toLowerCase();
  // The spec allows a comma-separated list; we support one of these at a time.
  if (expS !== 'otlp' && expS !== 'console' && expS !== 'none')
    throw new UserError(`OTEL_TRACES_EXPORTER: "${expS}" is not supported (use otlp, console or none)`, EXIT.USAGE);

  const endpoint = get('endpoint');
  if (endpoint !== undefined) {
    try { new URL(endpoint); } catch { throw new UserError(`OTEL_EXPORTER_OTLP_ENDPOINT: "${endpoint}" is not a URL`, EXIT.USAGE); }
  }

  const lvlS = get('log-level');
  const logLevel = lvlS === undefined ? 'info' : parseLogLevel(lvlS);
  if (!logLevel) throw new UserError(`OTEL_LOG_LEVEL: "${lvlS}" is not a level (none, error, warn, info, debug, verbose)`, EXIT.USAGE);

  const durS = flags['duration'];
  let durationSec = 0;
  if (typeof durS === 'string') {
    durationSec = Number(durS);
    if (!Number.isFinite(durationSec) || durationSec < 0) throw new UserError(`--duration: "${durS}" is not a number of seconds`, EXIT.USAGE);
  }

  return {
    targetExe,
    targetPid,
    serviceName: get('service-name'),
    endpoint,
    protocol: protoS,
    headers: parseKeyValueList(get('headers'), 'OTEL_EXPORTER_OTLP_HEADERS'),
    resourceAttributes: parseKeyValueList(get('resource-attributes'), 'OTEL_RESOURCE_ATTRIBUTES'),
    exporter: expS,
    stdout: bool(get('stdout'), 'OTEL_STDOUT'),
    logLevel,
    durationSec,
    statsFile: typeof flags['stats-file'] === 'string' ? (flags['stats-file'] as string) : undefined,
  };
}
