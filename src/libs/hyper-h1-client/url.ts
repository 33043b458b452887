// url.full for client spans: credentials removed, the query values the HTTP
// semantic conventions list as sensitive replaced by REDACTED.
// (https://opentelemetry.io/docs/specs/semconv/http/http-spans/, url.full)

const SENSITIVE = new Set(['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature']);

/** The query string with sensitive values redacted (unchanged when none are present). */
export function redactQuery(q: string): string {
  if (!q) return q;
  let changed = false;
  const parts = q.split('&');
  for (let i = 0; i < parts.length; i++) {
    const eq = parts[i].indexOf('=');
    const name = eq < 0 ? parts[i] : parts[i].slice(0, eq);
    if (eq >= 0 && SENSITIVE.has(name)) { parts[i] = `${name}=REDACTED`; changed = true; }
  }
  return changed ? parts.join('&') : q;
}

/** scheme://authority + target (origin-form), or an absolute-form target, made safe for url.full. */
export function safeUrl(scheme: string, authority: string, target: string): string {
  let url: string;
  if (target.startsWith('/')) url = `${scheme}://${authority}${target}`;
  else if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(target)) url = target; // absolute-form (via a proxy)
  else url = `${scheme}://${authority}/${target === '*' ? '' : target}`;
  // Remove user:password@ from the authority.
  const s = url.indexOf('://') + 3;
  let e = s;
  while (e < url.length && url[e] !== '/' && url[e] !== '?' && url[e] !== '#') e++;
  const at = url.lastIndexOf('@', e - 1);
  if (at >= s) url = url.slice(0, s) + url.slice(at + 1);
  const hash = url.indexOf('#');
  if (hash >= 0) url = url.slice(0, hash);
  const qm = url.indexOf('?');
  if (qm >= 0) {
    const q = url.slice(qm + 1);
    const r = redactQuery(q);
    if (r !== q) url = `${url.slice(0, qm + 1)}${r}`;
  }
  return url;
}

/** A Location header resolved against the URL of the request it answered (absolute, or absolute-path). */
export function resolveLocation(base: string, loc: string): string | undefined {
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(loc)) return loc;
  const s = base.indexOf('://');
  if (s < 0) return undefined;
  let e = s + 3;
  while (e < base.length && base[e] !== '/' && base[e] !== '?') e++;
  if (loc.startsWith('//')) return `${base.slice(0, s + 1)}${loc}`;
  if (loc.startsWith('/')) return `${base.slice(0, e)}${loc}`;
  // relative path: against the base path's directory
  let path = base.slice(e);
  const qm = path.indexOf('?');
  if (qm >= 0) path = path.slice(0, qm);
  const dir = path.slice(0, path.lastIndexOf('/') + 1) || '/';
  return `${base.slice(0, e)}${dir}${loc}`;
}
