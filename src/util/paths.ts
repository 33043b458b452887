// Where the agent's own files live. Compiled code runs from dist/src/..., the
// package root holds build/bpf/*.o and offsets/.
import * as fs from 'node:fs';
import * as path from 'node:path';

let root: string | undefined;
export function repoRoot(): string {
  if (root) return root;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'offsets'))) return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the otel-rust-agent package root');
    dir = up;
  }
}

export function bpfObjectPath(name: string): string {
  return path.join(repoRoot(), 'build', 'bpf', name);
}

let version: string | undefined;
export function agentVersion(): string {
  version ??= (JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}
