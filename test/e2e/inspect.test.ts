// `inspect`: what the agent finds in a binary, without attaching; and with the
// PID of a traced process, the running agent's live counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { runAgentSync, serviceBinary, startService, attachAgent, waitForStats, rawExchange } from '../helpers/procs';

const cargoLock = fs.readFileSync(require.resolve('../../../apps/Cargo.lock'), 'utf8');
function lockVersion(name: string, major: string): string {
  const re = new RegExp(`name = "${name}"\\nversion = "(${major.replace('.', '\\.')}[^"]*)"`, 'g');
  const m = re.exec(cargoLock);
  assert.ok(m, `${name} ${major} in Cargo.lock`);
  return m[1];
}

test('inspect names rustc, the hyper version and each probe with its status', () => {
  const r = runAgentSync(['inspect', serviceBinary('demo-service')]);
  assert.equal(r.code, 0, r.stderr);
  const rustc = execFileSync('rustc', ['--version'], { encoding: 'utf8' }).trim().replace(/^rustc /, '');
  assert.match(r.stdout, new RegExp(`^rustc\\s+rustc version ${rustc.replace(/[.()]/g, '\\$&')}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^\\s+hyper ${lockVersion('hyper', '1.')}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^\\s+axum ${lockVersion('axum', '0.8')}$`, 'm'));
  assert.match(r.stdout, /hyper-h1-server: active/);
  for (const p of ['parse', 'encode_status']) assert.match(r.stdout, new RegExp(`\\[found\\] ${p} `));
  for (const p of ['encode', 'encode_ret']) assert.match(r.stdout, new RegExp(`\\[standby\\] ${p} `));
  assert.match(r.stdout, /Encode<StatusCode>\.head = 16, hyper::proto::MessageHead<StatusCode>\.subject = 104 \((db\+code|code)/);
});

test('inspect --json gives the same facts, machine-readable', () => {
  const r = runAgentSync(['inspect', serviceBinary('hyper014-server'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.isRust, true);
  assert.deepEqual(j.crates.hyper, [lockVersion('hyper', '0.14')]);
  const m = j.modules.find((x: { name: string }) => x.name === 'hyper-h1-server');
  assert.equal(m.active, true);
  assert.equal(j.symbols.source, 'own');
  assert.deepEqual(m.probes.map((p: { probe: string; status: string }) => `${p.probe}:${p.status}`),
    ['parse:ready', 'encode_status:ready', 'encode:standby', 'encode_ret:standby', 'write_head_status:disabled', 'encode_head_status:disabled']);
  for (const p of m.probes.slice(0, 4)) {
    assert.equal(p.functions.length, 1);
    assert.equal(p.sites.length, 1);
  }
  // The fat-LTO fallbacks are not even looked for when encode is there.
  assert.deepEqual(m.probes.slice(4).map((p: { reason: string }) => p.reason), ['not needed: encode_status, encode found', 'not needed: encode_status, encode found']);
});

test('inspect on a non-Rust binary says so and exits 3', () => {
  const r = runAgentSync(['inspect', '/bin/ls']);
  assert.equal(r.code, 3);
  assert.match(r.stdout, /not a Rust binary/);
});

test('inspect <pid> shows the live counters of the agent tracing it', async () => {
  const svc = await startService(serviceBinary('demo-service'));
  const agent = await attachAgent(['--pid', String(svc.pid), '--exporter', 'none'], {});
  try {
    // One connection, four requests: exact hit counts.
    const reqs = [0, 1, 2, 3].map((i) => `GET /users/${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await rawExchange(svc.port, reqs, 4);
    await waitForStats(agent, (s) => s.probes.find((p) => p.probe === 'encode_status')!.hits >= 4);
    // inspect finds the agent through its stats file under /run; this agent
    // writes elsewhere (--stats-file), so point a copy there for the lookup.
    fs.mkdirSync('/run/otel-rust-agent', { recursive: true });
    const link = `/run/otel-rust-agent/test-${process.pid}.json`;
    fs.copyFileSync(agent.statsFile, link);
    try {
      const r = runAgentSync(['inspect', String(svc.pid)]);
      assert.equal(r.code, 0, r.stderr);
      const live = [...r.stdout.matchAll(/\[(\w+)\] (\w+)[\s\S]*?live: (\d+) hits, (\d+) events, (\d+) drops, (\d+) bad layout/g)].map((m) => `${m[2]}:${m[3]}/${m[4]}/${m[5]}/${m[6]}`);
      // parse: + the preface sniff; the standby fallbacks are not attached.
      assert.deepEqual(live, ['parse:5/5/0/0', 'encode_status:4/4/0/0', 'encode:0/0/0/0', 'encode_ret:0/0/0/0']);
    } finally {
      fs.rmSync(link, { force: true });
    }
  } finally {
    await svc.stop();
    await agent.exited;
  }
});
