// A release build with fat LTO and one codegen unit (common in production):
// hyper's Server::encode is inlined into generic code, so the HTTP/1 module
// cannot end spans. The agent must say so and refuse, never attach half a
// module that costs probe hits and yields nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../helpers/rustbuild';
import { runAgentSync } from '../helpers/procs';

test('fat LTO build: inspect explains, run refuses with exit 3', () => {
  const apps = path.join(repoRoot(), 'apps');
  const targetDir = path.join(apps, 'target', 'lto');
  execFileSync('cargo', ['build', '--release', '--locked', '-q', '-p', 'demo-service', '--target-dir', targetDir], {
    cwd: apps, stdio: 'inherit',
    env: { ...process.env, CARGO_PROFILE_RELEASE_LTO: 'fat', CARGO_PROFILE_RELEASE_CODEGEN_UNITS: '1' },
  });
  const bin = path.join(targetDir, 'release', 'demo-service');
  const ins = runAgentSync(['inspect', bin]);
  assert.equal(ins.code, 0, ins.stderr);
  assert.match(ins.stdout, /\[found\] parse /);
  assert.match(ins.stdout, /\[NOT FOUND\] encode /);
  assert.match(ins.stdout, /hyper-h1-server: inactive \(required probe not available \(encode: symbol not found/);
  const run = runAgentSync(['--exe', bin]);
  assert.equal(run.code, 3);
  assert.match(run.stderr.trim(), /^otel-rust-agent: .*demo-service: nothing to instrument \(hyper-h1-server: required probe not available/);
  assert.equal(run.stderr.trim().split('\n').length, 1);
});
