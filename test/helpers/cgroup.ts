// Real cgroups for tests: a test puts the processes it starts into cgroup v2
// directories named as container runtimes and the kubelet name theirs, so the
// agent reads a container id and a pod uid from a real /proc/<pid>/cgroup.
// Only directories under one test-owned parent are made, and all are removed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

/** Where the unified (v2) hierarchy is mounted, or undefined. */
export function cgroup2Mount(): string | undefined {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const parts = line.split(' ');
    const sep = parts.indexOf('-');
    if (sep > 0 && parts[sep + 1] === 'cgroup2') return parts[4];
  }
  return undefined;
}

export interface TestCgroups {
  /** Makes `rel` (a/b/c) under the test's parent; returns its absolute directory and its path as /proc/<pid>/cgroup shows it. */
  make(rel: string): { dir: string; cgroupPath: string };
  /** Removes every directory made (the processes in them must have exited). */
  remove(): void;
}

export function testCgroups(tag: string): TestCgroups | undefined {
  const mnt = cgroup2Mount();
  if (!mnt) return undefined;
  const parentName = `otel-rust-agent-test-${tag}-${randomBytes(4).toString('hex')}`;
  const parent = path.join(mnt, parentName);
  try { fs.mkdirSync(parent); } catch { return undefined; }
  const made: string[] = [parent];
  return {
    make(rel) {
      let dir = parent;
      for (const part of rel.split('/')) {
        dir = path.join(dir, part);
        if (!fs.existsSync(dir)) { fs.mkdirSync(dir); made.push(dir); }
      }
      return { dir, cgroupPath: `/${parentName}/${rel}` };
    },
    remove() {
      for (const d of made.reverse()) { try { fs.rmdirSync(d); } catch { /* still busy */ } }
    },
  };
}

export function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A pod uid as the kubelet writes it. */
export function randomUid(): string {
  const h = randomHex(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
