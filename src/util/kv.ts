// W3C-baggage-like `k=v,k2=v2` lists with percent-encoding, as the OpenTelemetry
// environment-variable specification has them (OTEL_RESOURCE_ATTRIBUTES,
// OTEL_EXPORTER_OTLP_HEADERS), and discovery selectors.
import { UserError, EXIT } from './errors';

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

/** The same, for input that is not ours to reject (another process's environment): bad parts are skipped. */
export function parseKeyValueListLenient(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    try {
      const k = decodeURIComponent(part.slice(0, eq).trim());
      if (k) out[k] = decodeURIComponent(part.slice(eq + 1).trim());
    } catch { /* skipped */ }
  }
  return out;
}
