// Release profiles beyond cargo's default. With fat LTO and one codegen unit,
// hyper's Server::encode is inlined into generic code, so the HTTP/1 module
// cannot end spans: the agent must say so and refuse, never attach half a
// module that costs probe hits and yields nothing. Thin LTO with one codegen
// unit keeps the probe points and must be traced as usual.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../helpers/rustbuild';
import { runAgentSync, startService, attachAgent, rawExchange } from '../helpers/procs';
import { startOtlpReceiver } from '../helpers/otlp-receiver';

/** The demo service built with one codegen unit and the given LTO mode, in its own target dir. */
function buildDemo(dir: string, lto: 'fat' | 'thin'): string {
  const apps = path.join(repoRoot(), 'apps');
  const targetDir = path.join(apps, 'target', dir);
  execFileSync('cargo', ['build', '--release', '--locked', '-q', '-p', 'demo-service', '--target-dir', targetDir], {
    cwd: apps, stdio: 'inherit',
    env: { ...process.env, CARGO_PROFILE_RELEASE_LTO: lto, CARGO_PROFILE_RELEASE_CODEGEN_UNITS: '1' },
  });
  return path.join(targetDir, 'release', 'demo-service');
}

test('fat LTO build: inspect explains, run refuses with exit 3', () => {
  const bin = buildDemo('lto', 'fat');
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

test('thin LTO with one codegen unit (a common production profile) is traced as usual', async () => {
  const bin = buildDemo('thin-lto', 'thin');
  const recv = await startOtlpReceiver({ grpc: true });
  const svc = await startService(bin);
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint]);
  try {
    const res = await rawExchange(svc.port, ['GET /fail HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /users/4 HTTP/1.1\r\nHost: x\r\n\r\n'], 2);
    assert.deepEqual(res.map((r) => r.status), [500, 200]);
    const spans = await recv.waitForSpans(2, 15_000);
    const status = Object.fromEntries(spans.map((s) => [s.attributes['url.path'], s.attributes['http.response.status_code']]));
    assert.deepEqual(status, { '/fail': 500, '/users/4': 200 });
  } finally {
    assert.equal(await agent.stop(), 0);
    await svc.stop();
    await recv.close();
  }
});
