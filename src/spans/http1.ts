// Parsing of raw HTTP/1 heads captured by the probes. Defensive: the bytes come
// from another process and may be partial or truncated by the capture limit.

export interface RequestHead {
  method: string;
  target: string;
  version: string; // "1.1", "1.0"
  headers: Map<string, string>; // lowercase name -> first value
  /** The head ends inside the captured bytes (\r\n\r\n seen). */
  complete: boolean;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Returns the parsed head, or undefined when the bytes do not start with a
 * request line. `truncated` says the capture limit cut the buffer, so a missing
 * end of head is not evidence of a partial read.
 */
export function parseRequestHead(buf: Buffer, truncated: boolean): RequestHead | undefined {
  const end = buf.indexOf('\r\n\r\n');
  const complete = end >= 0;
  if (!complete && !truncated) return undefined; // partial read: hyper will parse again
  const text = buf.subarray(0, complete ? end : buf.length).toString('latin1');
  const lines = text.split('\r\n');
  const m = /^(\S+) (\S+) HTTP\/(\d\.\d)$/.exec(lines[0]);
  if (!m || !TOKEN.test(m[1])) return undefined;
  const headers = new Map<string, string>();
  // With a truncated capture the last line may be cut: drop it.
  const last = complete ? lines.length : lines.length - 1;
  for (let i = 1; i < last; i++) {
    const c = lines[i].indexOf(':');
    if (c <= 0) continue;
    const name = lines[i].slice(0, c).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, lines[i].slice(c + 1).trim());
  }
  return { method: m[1], target: m[2], version: m[3], headers, complete };
}

export interface StatusLine {
  version: string;
  status: number;
}

export function parseStatusLine(buf: Buffer): StatusLine | undefined {
  const m = /^HTTP\/(\d\.\d) (\d{3})/.exec(buf.subarray(0, 32).toString('latin1'));
  if (!m) return undefined;
  return { version: m[1], status: parseInt(m[2], 10) };
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
export function normalizeMethod(m: string): { method: string; original?: string } {
  return KNOWN_METHODS.has(m) ? { method: m } : { method: '_OTHER', original: m };
}

/** Splits an origin-form or absolute-form request target into path and query. */
export function splitTarget(target: string): { path: string; query?: string } {
  let t = target;
  const abs = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(t);
  // An empty path after the authority is "/", also when a query follows.
  if (abs) { t = t.slice(abs[0].length); if (!t.startsWith('/')) t = '/' + t; }
  const hash = t.indexOf('#');
  if (hash >= 0) t = t.slice(0, hash);
  const q = t.indexOf('?');
  if (q < 0) return { path: t };
  return { path: t.slice(0, q), query: t.slice(q + 1) };
}

/** Host header -> server.address / server.port (IPv6 literals in brackets). */
export function splitHost(host: string, defaultPort: number): { address: string; port: number } | undefined {
  const h = host.trim();
  if (!h) return undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(h);
  if (v6) return { address: v6[1], port: v6[2] ? parseInt(v6[2], 10) : defaultPort };
  const c = h.lastIndexOf(':');
  if (c > 0 && /^\d+$/.test(h.slice(c + 1))) return { address: h.slice(0, c), port: parseInt(h.slice(c + 1), 10) };
  return { address: h, port: defaultPort };
}
