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
const APPS = ['demo-service', 'hyper014-server', 'threads-demo', 'axum08-server', 'axum07-server', 'tonic-server', 'fault-server', 'reqwest12-client', 'reqwest11-client', 'reqwest13-client', 'tonic-client', 'otel-sdk-service', 'otel-sdk028-service', 'fanout-service', 'otelctx-service'] as const;

/**
 * Builds the apps/ cargo workspace (release, locked) once per run and returns
 * the binary's path: a copy in build/fixtures/, because builds of other
 * profiles (profileBuild) share the target directory and overwrite
 * target/release/<app>.
 */
export function appBinary(name: (typeof APPS)[number]): string {
  const root = repoRoot();
  const apps = path.join(root, 'apps');
  // One folder per build variant: the file keeps the app's name (the agent
  // names the service after the executable).
  const fixtures = path.join(root, 'build', 'fixtures', 'default-rustup');
  if (!appsBuilt) {
    // Cargo waits on its own lock if another build of the workspace is running.
    run('cargo', ['build', '--release', '--locked'], apps);
    fs.mkdirSync(fixtures, { recursive: true });
    for (const a of APPS) {
      fs.copyFileSync(path.join(apps, 'target', 'release', a), path.join(fixtures, `${a}.tmp`));
      fs.renameSync(path.join(fixtures, `${a}.tmp`), path.join(fixtures, a));
    }
    appsBuilt = true;
  }
  return path.join(fixtures, name);
}

/** Runs a tool (objdump, readelf, …) and returns its stdout. */
export function tool(cmd: string, ...args: string[]): string {
  return run(cmd, args);
}

/** Profile settings, as cargo's CARGO_PROFILE_RELEASE_* variables take them. */
/** strip is given to the final rustc only (see profileBuild). */
export interface ProfileSettings {
  lto?: 'false' | 'thin' | 'fat';
  codegenUnits?: number;
  optLevel?: '3' | 's' | 'z';
  panic?: 'unwind' | 'abort';
  strip?: 'none' | 'debuginfo' | 'symbols';
  debug?: boolean;
}

export function profileEnv(p: ProfileSettings): Record<string, string> {
  const env: Record<string, string> = {};
  if (p.lto) env.CARGO_PROFILE_RELEASE_LTO = p.lto;
  if (p.codegenUnits) env.CARGO_PROFILE_RELEASE_CODEGEN_UNITS = String(p.codegenUnits);
  if (p.optLevel) env.CARGO_PROFILE_RELEASE_OPT_LEVEL = p.optLevel;
  if (p.panic) env.CARGO_PROFILE_RELEASE_PANIC = p.panic;
  if (p.debug !== undefined) env.CARGO_PROFILE_RELEASE_DEBUG = p.debug ? 'true' : 'false';
  return env;
}

/** Debian toolchains the tests use besides rustup's (scripts/toolchains.sh fetches them once). */
export type Toolchain = 'rustup' | '1.85' | '1.96';

const toolchainEnvs = new Map<Toolchain, Record<string, string>>();
export function toolchainEnv(tc: Toolchain): Record<string, string> {
  if (tc === 'rustup') return {};
  let env = toolchainEnvs.get(tc);
  if (!env) {
    const out = execFileSync(path.join(repoRoot(), 'scripts', 'toolchains.sh'), ['--env', tc], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    env = Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    toolchainEnvs.set(tc, env);
  }
  return env;
}

/**
 * One app of apps/ built with a release profile and a toolchain, copied out
 * to build/fixtures/ (the next build overwrites target/release/<app>). All
 * profiles of one toolchain share one target directory: cargo keeps each
 * profile's artifacts apart and rebuilds only what the profile changes.
 */
export function profileBuild(app: 'demo-service' | 'hyper014-server', name: string, profile: ProfileSettings, tc: Toolchain = 'rustup'): string {
  const root = repoRoot();
  const apps = path.join(root, 'apps');
  const targetDir = tc === 'rustup' ? path.join(apps, 'target') : path.join(root, 'build', `cargo-${tc}`);
  const out = path.join(root, 'build', 'fixtures', `${name}-${tc}`, app);
  const env = { ...process.env, ...toolchainEnv(tc), ...profileEnv(profile) };
  // strip only changes the link of the final binary, but as a profile setting
  // it would rebuild every dependency: pass it to that one rustc instead
  // (what cargo does with the profile setting: -C strip=...).
  const args = profile.strip
    ? ['rustc', '--release', '--locked', '-q', '-p', app, '--bin', app, '--target-dir', targetDir, '--', '-C', `strip=${profile.strip}`]
    : ['build', '--release', '--locked', '-q', '-p', app, '--target-dir', targetDir];
  try {
    execFileSync(env.CARGO ?? 'cargo', args, { cwd: apps, env, stdio: ['ignore', 'inherit', 'pipe'] });
  } catch (e) {
    throw new Error(`cargo build of ${app} (${name}, ${tc}) failed: ${(e as { stderr?: Buffer }).stderr?.toString() ?? (e as Error).message}`);
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.copyFileSync(path.join(targetDir, 'release', app), `${out}.tmp`);
  fs.renameSync(`${out}.tmp`, out);
  return out;
}

/**
 * Several apps of apps/ built by one cargo invocation (`-p A -p B ...`) with a
 * release profile and a toolchain, each copied out to build/fixtures/ like
 * profileBuild. Cargo unifies the dependencies' features across the apps, so
 * each dependency is compiled once per profile for all of them (the matrix's
 * --group-builds: four fixtures cost about one build instead of four). strip
 * goes to the apps' own final rustc through a per-package profile override
 * (`--config profile.release.package.<app>.strip`), so the stripped variant
 * reuses every dependency, as profileBuild's `cargo rustc -- -C strip` does.
 */
export function profileBuildGroup(apps: string[], name: string, profile: ProfileSettings, tc: Toolchain = 'rustup'): Record<string, string> {
  const root = repoRoot();
  const appsDir = path.join(root, 'apps');
  const targetDir = tc === 'rustup' ? path.join(appsDir, 'target') : path.join(root, 'build', `cargo-${tc}`);
  const env = { ...process.env, ...toolchainEnv(tc), ...profileEnv(profile) };
  const args = ['build', '--release', '--locked', '-q', ...apps.flatMap((a) => ['-p', a]), '--target-dir', targetDir];
  if (profile.strip) for (const a of apps) args.push('--config', `profile.release.package."${a}".strip="${profile.strip}"`);
  try {
    execFileSync(env.CARGO ?? 'cargo', args, { cwd: appsDir, env, stdio: ['ignore', 'inherit', 'pipe'] });
  } catch (e) {
    throw new Error(`cargo build of ${apps.join(', ')} (${name}, ${tc}) failed: ${(e as { stderr?: Buffer }).stderr?.toString() ?? (e as Error).message}`);
  }
  const out: Record<string, string> = {};
  for (const a of apps) {
    const dst = path.join(root, 'build', 'fixtures', `${name}-${tc}`, a);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    fs.copyFileSync(path.join(targetDir, 'release', a), `${dst}.tmp`);
    fs.renameSync(`${dst}.tmp`, dst);
    out[a] = dst;
  }
  return out;
}
