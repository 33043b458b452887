// Agent log: one line per message on stderr, filtered by OTEL_LOG_LEVEL.
// stdout is reserved for the trace tree (OTEL_STDOUT / console exporter) and
// for command output, so logs never interleave with it.

export type LogLevel = 'none' | 'error' | 'warn' | 'info' | 'debug' | 'verbose';
const ORDER: Record<LogLevel, number> = { none: 0, error: 1, warn: 2, info: 3, debug: 4, verbose: 5 };

let current: LogLevel = 'info';

export function parseLogLevel(v: string | undefined): LogLevel | undefined {
  if (!v) return undefined;
  const s = v.trim().toLowerCase();
  if (s === 'all') return 'verbose';
  if (s === 'warning') return 'warn';
  return s in ORDER ? (s as LogLevel) : undefined;
}

export function setLogLevel(l: LogLevel): void { current = l; }
export function logLevel(): LogLevel { return current; }

function emit(level: LogLevel, msg: string): void {
  if (ORDER[level] > ORDER[current] || current === 'none') return;
  process.stderr.write(`otel-rust-agent ${level}: ${msg}\n`);
}

export const log = {
  error: (m: string) => emit('error', m),
  warn: (m: string) => emit('warn', m),
  info: (m: string) => emit('info', m),
  debug: (m: string) => emit('debug', m),
  verbose: (m: string) => emit('verbose', m),
  enabled: (l: LogLevel) => ORDER[l] <= ORDER[current] && current !== 'none',
};

/** Throttled warning: the same key warns at most once per `everyMs`. */
const lastWarn = new Map<string, number>();
export function warnEvery(key: string, everyMs: number, msg: string): void {
  const now = Date.now();
  const t = lastWarn.get(key);
  if (t !== undefined && now - t < everyMs) return;
  lastWarn.set(key, now);
  log.warn(msg);
}
