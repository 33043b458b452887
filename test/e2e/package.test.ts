// The agent as an npm package: `npm pack` (which builds it), install the
// tarball into an empty prefix, and trace a request with the installed command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { repoRoot } from '../helpers/rustbuild';
import { startService, serviceBinary, rawExchange, Output } from '../helpers/procs';

test('npm pack + install gives a working otel-rust-agent command', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pkg-'));
  try {
    const out = execFileSync('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: repoRoot(), encoding: 'utf8' }).trim().split('\n').pop()!;
    const tgz = path.join(dir, out);
    assert.ok(fs.existsSync(tgz), tgz);
    const prefix = path.join(dir, 'prefix');
    execFileSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tgz], { stdio: 'ignore' });
    const bin = path.join(prefix, 'bin', 'otel-rust-agent');
    const version = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')).version;
    assert.equal(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim(), `otel-rust-agent ${version}`);

    const svc = await startService(serviceBinary('demo-service'));
    const agent = spawn(bin, ['--pid', String(svc.pid), '--exporter', 'none', '--stdout'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout = new Output(agent.stdout);
    const stderr = new Output(agent.stderr);
    const exited = new Promise<number | null>((r) => agent.on('exit', (c) => r(c)));
    try {
      await stderr.wait(/tracing process/, 30_000);
      await rawExchange(svc.port, ['GET /users/9?from=package HTTP/1.1\r\nHost: pkg\r\n\r\n'], 1);
      await stdout.wait(/SERVER\s+GET \/users\/\{id\}\s+[\d.]+ ms\s+GET \/users\/9\?from=package -> 200/, 10_000);
    } finally {
      agent.kill('SIGINT');
      assert.equal(await exited, 0, stderr.text);
      await svc.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
