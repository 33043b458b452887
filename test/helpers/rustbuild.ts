// Builds the Rust binaries the tests run against, at test time: the repository
// holds no binaries, and the fixtures must match the installed toolchain.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../../src/util/paths';

export interface RustcOptions {
  /** Crate name: symbols are `<name>::…`. Must be a Rust identifier. */
  name: string;
  /** Build with -O (release-like). Default true. */
  opt?: boolean;
  extraArgs?: string[];
}

let tempDir: string | undefined;
const built = new Map<string, string>();

function workDir(): string {
  if (!tempDir) {
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'otel-rust-agent-test-'));
    const dir = tempDir;
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return tempDir;
}

function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Compiles one Rust source file with rustc; identical requests within a run reuse the binary. */
export function buildRustc(srcText: string, opts: RustcOptions): string {
  const args = [...(opts.opt === false ? [] : ['-O']), '--crate-name', opts.name, ...(opts.extraArgs ?? [])];
  const key = createHash('sha256').update(JSON.stringify([srcText, args])).digest('hex').slice(0, 16);
  const cached = built.get(key);
  if (cached) return cached;
  const dir = workDir();
  const src = path.join(dir, `${opts.name}-${key}.rs`);
  const out = path.join(dir, `${opts.name}-${key}`);
  fs.writeFileSync(src, srcText);
  run('rustc', [...args, src, '-o', out]);
  built.set(key, out);
  return out;
}

/** The repository root, found from this file whether it runs from test/ or dist/test/. */
export { repoRoot };

let appsBuilt = false;

/** Builds the apps/ cargo workspace (release, locked) once per run and returns the binary's path. */
export function appBinary(name: 'demo-service' | 'hyper014-server' | 'threads-demo' | 'axum08-server' | 'axum07-server' | 'tonic-server' | 'reqwest12-client' | 'reqwest11-client'): string {
  const apps = path.join(repoRoot(), 'apps');
  if (!appsBuilt) {
    // Cargo waits on its own lock if another build of the workspace is running.
    run('cargo', ['build', '--release', '--locked'], apps);
    appsBuilt = true;
  }
  return path.join(apps, 'target', 'release', name);
}

/** Runs a tool (objdump, readelf, …) and returns its stdout. */
export function tool(cmd: string, ...args: string[]): string {
  return run(cmd, args);
}
