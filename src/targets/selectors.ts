// Discovery selectors: which of the processes that link a supported library
// are traced. A selector is a list of criteria that must all match
// (`exe=/srv/**,k8s.namespace=shop`); a process is traced when any include
// selector matches (or there is none) and no exclude selector does.
//
// Facts about a process are read lazily (its cgroup, environment and pod
// metadata cost reads of /proc, or the API server), so matching is
// three-valued: a criterion whose fact is not known yet is `undefined`, and
// the discovery stage first decides with the cheap facts (executable path and
// name) before it reads the binary or the rest.
import { UserError, EXIT } from '../util/errors';
import { parseKeyValueList } from '../util/kv';

export type SelectorKey =
  | 'exe' | 'name' | 'cgroup' | 'container.id' | 'service.name'
  | 'k8s.namespace' | 'k8s.pod' | 'k8s.container' | `k8s.label.${string}`;

/** What a criterion is matched against. `undefined` = not known (yet). */
export interface SelectorFacts {
  /** Executable path as the process sees it (its own mount namespace). */
  exe?: string;
  /** Process names: /proc/<pid>/comm and the executable's base name. */
  names?: string[];
  cgroup?: string;
  containerId?: string | null;
  serviceName?: string;
  k8sNamespace?: string | null;
  k8sPod?: string | null;
  k8sContainer?: string | null;
  /** Pod labels; null when the pod is known to have none readable (no API server, not a pod). */
  k8sLabels?: Record<string, string> | null;
}

export interface Criterion {
  key: SelectorKey;
  value: string;
  test(f: SelectorFacts): boolean | undefined;
}

export interface Selector {
  /** As the user wrote it, for messages. */
  text: string;
  criteria: Criterion[];
}

export const SELECTOR_KEYS = 'exe, name, cgroup, container.id, service.name, k8s.namespace, k8s.pod, k8s.container, k8s.label.<key>';

/**
 * Glob to RegExp. `?` one character, `[...]` a class, `*` any run of
 * characters; with `path`, `*` stops at `/` and `**` crosses it.
 */
export function globToRegExp(glob: string, path: boolean): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (path && glob[i + 1] === '*') {
        i++;
        // "/**/" also matches "/": a/**/b matches a/b.
        if (glob[i + 1] === '/') { i++; re += '(?:.*/)?'; } else re += '.*';
      } else re += path ? '[^/]*' : '.*';
    } else if (c === '?') {
      re += path ? '[^/]' : '.';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = glob.slice(i + 1, end);
      if (body[0] === '!') body = '^' + body.slice(1);
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else {
      re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`, 's');
}

function globTest(glob: string, path: boolean): (s: string) => boolean {
  const re = globToRegExp(glob, path);
  return (s) => re.test(s);
}

/** A fact that may be unknown (undefined) or known absent (null). */
function maybe(v: string | null | undefined, t: (s: string) => boolean): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === null) return false;
  return t(v);
}

function criterion(key: string, value: string, where: string): Criterion {
  const bad = (why: string) => new UserError(`${where}: ${why}`, EXIT.USAGE);
  if (value === '') throw bad(`"${key}" needs a value`);
  switch (key) {
    case 'exe': {
      if (!value.startsWith('/') && !value.startsWith('*')) throw bad(`exe=${value}: give an absolute path or a glob starting with / or *`);
      const t = globTest(value, true);
      return { key, value, test: (f) => (f.exe === undefined ? undefined : t(f.exe)) };
    }
    case 'name': {
      const t = globTest(value, false);
      return { key, value, test: (f) => (f.names === undefined ? undefined : f.names.some(t)) };
    }
    case 'cgroup': {
      const t = globTest(value, true);
      return { key, value, test: (f) => (f.cgroup === undefined ? undefined : t(f.cgroup)) };
    }
    case 'container.id': {
      const v = value.toLowerCase();
      if (!/^[0-9a-f]{12,64}$/.test(v)) throw bad(`container.id=${value}: give the id or a prefix of at least 12 hex digits`);
      return { key, value, test: (f) => maybe(f.containerId, (id) => id.startsWith(v)) };
    }
    case 'service.name': {
      const t = globTest(value, false);
      return { key, value, test: (f) => (f.serviceName === undefined ? undefined : t(f.serviceName)) };
    }
    case 'k8s.namespace': {
      const t = globTest(value, false);
      return { key, value, test: (f) => maybe(f.k8sNamespace, t) };
    }
    case 'k8s.pod': {
      const t = globTest(value, false);
      return { key, value, test: (f) => maybe(f.k8sPod, t) };
    }
    case 'k8s.container': {
      const t = globTest(value, false);
      return { key, value, test: (f) => maybe(f.k8sContainer, t) };
    }
    default: {
      if (key.startsWith('k8s.label.') && key.length > 'k8s.label.'.length) {
        const label = key.slice('k8s.label.'.length);
        const t = globTest(value, false);
        return {
          key: key as SelectorKey, value,
          test: (f) => (f.k8sLabels === undefined ? undefined : f.k8sLabels === null ? false : label in f.k8sLabels && t(f.k8sLabels[label])),
        };
      }
      throw bad(`unknown selector key "${key}" (use ${SELECTOR_KEYS})`);
    }
  }
}

/** `key=value[,key=value...]` (percent-decoded, like the other OTel lists), every criterion must match. */
export function parseSelector(text: string, where: string): Selector {
  const kv = parseKeyValueList(text, where);
  const keys = Object.keys(kv);
  if (keys.length === 0) throw new UserError(`${where}: empty selector (use key=value, with keys ${SELECTOR_KEYS})`, EXIT.USAGE);
  // A key given twice would silently keep the last value: say so instead.
  const seen = new Set<string>();
  for (const part of text.split(',')) {
    const k = part.slice(0, part.indexOf('=')).trim();
    if (k && seen.has(k)) throw new UserError(`${where}: "${k}" is given twice in "${text}"`, EXIT.USAGE);
    seen.add(k);
  }
  return { text: text.trim(), criteria: keys.map((k) => criterion(k, kv[k], `${where} "${text.trim()}"`)) };
}

/** Kleene AND over a selector's criteria. */
export function matchSelector(s: Selector, f: SelectorFacts): boolean | undefined {
  let unknown = false;
  for (const c of s.criteria) {
    const r = c.test(f);
    if (r === false) return false;
    if (r === undefined) unknown = true;
  }
  return unknown ? undefined : true;
}

/** Kleene OR over selectors; `undefined` also tells which fact is still missing. */
function anyMatch(list: Selector[], f: SelectorFacts): { result: boolean | undefined; which?: Selector } {
  let unknown = false;
  for (const s of list) {
    const r = matchSelector(s, f);
    if (r === true) return { result: true, which: s };
    if (r === undefined) unknown = true;
  }
  return { result: unknown ? undefined : false };
}

export interface SelectionVerdict {
  /** true: trace; false: do not; undefined: needs facts not known yet. */
  selected: boolean | undefined;
  why: string;
}

export function decide(include: Selector[], exclude: Selector[], f: SelectorFacts): SelectionVerdict {
  const ex = anyMatch(exclude, f);
  if (ex.result === true) return { selected: false, why: `excluded by "${ex.which!.text}"` };
  const inc = include.length === 0 ? { result: true as const, which: undefined } : anyMatch(include, f);
  if (inc.result === false) return { selected: false, why: 'matches no include selector' };
  if (inc.result === undefined || ex.result === undefined) return { selected: undefined, why: 'waiting for facts' };
  return { selected: true, why: inc.which ? `included by "${inc.which.text}"` : 'discovered' };
}

/** Which slow facts any selector looks at, so the discovery stage reads only those. */
export function factsNeeded(list: Selector[]): { cgroup: boolean; environ: boolean; k8s: boolean; labels: boolean } {
  const keys = list.flatMap((s) => s.criteria.map((c) => c.key));
  return {
    cgroup: keys.some((k) => k === 'cgroup' || k === 'container.id' || k.startsWith('k8s.')),
    environ: keys.some((k) => k === 'service.name' || k.startsWith('k8s.')),
    k8s: keys.some((k) => k.startsWith('k8s.')),
    labels: keys.some((k) => k.startsWith('k8s.label.')),
  };
}
