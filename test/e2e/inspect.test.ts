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

test('inspect names h2, axum and tonic, their versions, the task id location and each probe with its status', () => {
  const r = runAgentSync(['inspect', serviceBinary('tonic-server')]);
  assert.equal(r.code, 0, r.stderr);
  for (const [crate, major] of [['h2', '0.4'], ['axum', '0.8'], ['tonic', '0.14'], ['tokio', '1.'], ['http', '1.']])
    assert.match(r.stdout, new RegExp(`^\\s+${crate} ${lockVersion(crate, major)}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^task id   current task id at fs-0x[0-9a-f]+ \\(database: tokio ${lockVersion('tokio', '1.')}, rustc [^;]+; confirmed by tokio's code\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^  h2-server: active \\(h2 ${lockVersion('h2', '0.4')}\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^  axum: active \\(axum ${lockVersion('axum', '0.8')}\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^  tonic-server: active \\(tonic ${lockVersion('tonic', '0.14')}\\)$`, 'm'));
  for (const p of ['recv_headers', 'send_response', 'recv_reset', 'matched_path', 'send_trailers']) assert.match(r.stdout, new RegExp(`\\[found\\] ${p} `));
  assert.match(r.stdout, /note: response offsets from the database \(h2 [^)]*Arc and lock confirmed by the code/);
  // No rustls in this build: its module says so.
  assert.match(r.stdout, /^  rustls-server: inactive \(required probe not available \(client_hello: symbol not found/m);

  const j = JSON.parse(runAgentSync(['inspect', serviceBinary('axum08-server'), '--json']).stdout);
  const mod = (n: string) => j.modules.find((m: { name: string }) => m.name === n);
  assert.equal(mod('rustls-server').active, true);
  assert.deepEqual(mod('rustls-server').probes.map((p: { probe: string; status: string }) => `${p.probe}:${p.status}`), ['client_hello:ready']);
  assert.deepEqual(mod('h2-server').probes.map((p: { probe: string; status: string }) => `${p.probe}:${p.status}`), ['recv_headers:ready', 'send_response:ready', 'recv_reset:ready']);
  assert.equal(typeof j.context.taskIdTlsOffset, 'number');
  const j014 = JSON.parse(runAgentSync(['inspect', serviceBinary('hyper014-server'), '--json']).stdout);
  const h2014 = j014.modules.find((m: { name: string }) => m.name === 'h2-server');
  assert.equal(h2014.active, true);
  assert.deepEqual(h2014.crateVersions, [lockVersion('h2', '0.3')]);
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
      const live = [...r.stdout.matchAll(/\[(\w+)\] (\w+)(?:(?!\n\s*\[)[\s\S])*?live: (\d+) hits, (\d+) events, (\d+) drops, (\d+) bad layout/g)].map((m) => `${m[2]}:${m[3]}/${m[4]}/${m[5]}/${m[6]}`);
      // parse: + the preface sniff; the standby fallbacks are not attached
      // (the fat-LTO fallback, not needed, has no live line);
      // h2 sees nothing of HTTP/1 requests; axum routes each of the four;
      // tokio-spawn sees the connection's task spawned by the accept loop
      // (outside any task: a hit, no event).
      assert.deepEqual(live, ['parse:5/5/0/0', 'encode_status:4/4/0/0', 'encode:0/0/0/0', 'encode_ret:0/0/0/0',
        'recv_headers:0/0/0/0', 'send_response:0/0/0/0', 'recv_reset:0/0/0/0', 'matched_path:4/4/0/0', 'spawn:1/0/0/0', 'spawn_blocking:0/0/0/0']);
    } finally {
      fs.rmSync(link, { force: true });
    }
  } finally {
    await svc.stop();
    await agent.exited;
  }
});

test('inspect shows the HTTP/1 client probes of a reqwest 0.12 service and of a reqwest 0.11 one', () => {
  for (const [app, hyper] of [['reqwest12-client', '1.'], ['reqwest11-client', '0.14']] as const) {
    const r = runAgentSync(['inspect', serviceBinary(app)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^  hyper-h1-client: active \\(hyper [0-9.]+`, 'm'));
    for (const p of ['client_encode', 'client_parse', 'reqwest_execute', 'reqwest_blocking_execute']) assert.match(r.stdout, new RegExp(`\\[found\\] ${p} `));
    const j = JSON.parse(runAgentSync(['inspect', serviceBinary(app), '--json']).stdout);
    const m = j.modules.find((x: { name: string }) => x.name === 'hyper-h1-client');
    assert.ok(m.crateVersions.includes(lockVersion('hyper', hyper)), JSON.stringify(m.crateVersions));
    for (const p of m.probes) {
      // reqwest::error::request (connect failures) exists from reqwest 0.12 on; 0.11 builds its errors elsewhere.
      if (p.probe === 'reqwest_request_error' && app === 'reqwest11-client') { assert.equal(p.status, 'missing'); continue; }
      // origin_form (issue8f): hyper 0.14's only where hyper 0.14's Client is linked, hyper-util's only
      // where its legacy client is (reqwest 0.11's binary has hyper-util for axum's server only).
      if (p.probe === 'hyper014_origin_form' && app === 'reqwest12-client') { assert.equal(p.status, 'missing'); continue; }
      if (p.probe === 'hyper_util_origin_form' && app === 'reqwest11-client') { assert.equal(p.status, 'missing'); continue; }
      assert.equal(p.status, 'ready', p.probe); assert.equal(p.sites.length, 1, p.probe);
    }
    if (app === 'reqwest12-client') assert.match(r.stdout, /\[found\] reqwest_request_error /);
    // reqwest 0.11's h2 0.3 beside the server's h2 0.4: the h2 client module must not read 0.3's send_headers with 0.4's offsets.
    if (app === 'reqwest11-client') assert.match(r.stdout, /^ {2}h2-client: inactive \(.*(several h2 versions linked \(0\.3\.\d+, 0\.4\.\d+\)|h2 0\.3\.\d+ is linked too)/m);
    // Spawn linking (issue 8): bind_inner of both schedulers, and the blocking pool's spawn_task.
    const t = j.modules.find((x: { name: string }) => x.name === 'tokio-spawn');
    assert.ok(t.active, JSON.stringify(t));
    const spawn = t.probes.find((p: { probe: string }) => p.probe === 'spawn');
    const blocking = t.probes.find((p: { probe: string }) => p.probe === 'spawn_blocking');
    assert.equal(spawn.status, 'ready');
    assert.ok(spawn.sites.length >= 2, 'OwnedTasks<S>::bind_inner of the multi-thread and the current-thread scheduler (one copy per codegen unit that uses it)');
    assert.equal(blocking.status, 'ready');
    assert.equal(blocking.sites.length, 1);
  }
});

test('inspect shows the HTTP/2 client probes (h2-client) of the tonic, reqwest 0.12 and 0.13 services and tonic-client on the tonic one; every site is a push', () => {
  const symbols: Record<string, string> = {
    client_send_headers: 'h2::proto::streams::send::Send::send_headers',
    client_recv_headers: 'h2::proto::streams::recv::Recv::recv_headers',
    client_recv_trailers: 'h2::proto::streams::recv::Recv::recv_trailers',
    client_recv_reset: 'h2::proto::streams::recv::Recv::recv_reset',
    prepare_request: 'tonic::client::grpc::GrpcConfig::prepare_request',
    status_from_error: 'tonic::status::Status::from_error',
  };
  for (const app of ['tonic-client', 'reqwest12-client', 'reqwest13-client'] as const) {
    const bin = serviceBinary(app);
    const j = JSON.parse(runAgentSync(['inspect', bin, '--json']).stdout);
    const mods = app === 'tonic-client' ? ['h2-client', 'tonic-client'] : ['h2-client'];
    if (app !== 'tonic-client') assert.equal(j.modules.find((x: { name: string }) => x.name === 'tonic-client').probes[0].status === 'ready', false);
    const nm = execFileSync('nm', ['-C', bin], { encoding: 'utf8', maxBuffer: 256 << 20 }).split('\n');
    for (const name of mods) {
      const m = j.modules.find((x: { name: string }) => x.name === name);
      assert.ok(m, name);
      for (const p of m.probes) {
        assert.equal(p.status, 'ready', `${app} ${name}/${p.probe}`);
        // The instruction each site is on: the function's first, a push (emulated by the kernel).
        const addrs = nm.filter((l) => / [tT] /.test(l) && l.endsWith(` ${symbols[p.probe]}`)).map((l) => l.split(' ')[0]);
        assert.equal(addrs.length, p.sites.length, `${app} ${p.probe}: one site per instance`);
        for (const a of addrs) {
          const out = execFileSync('objdump', ['-d', '--no-show-raw-insn', `--start-address=0x${a}`, `--stop-address=0x${(parseInt(a, 16) + 8).toString(16)}`, bin], { encoding: 'utf8' });
          const first = out.split('\n').find((l) => /^\s+[0-9a-f]+:\s/.test(l)) ?? '';
          assert.match(first, /:\s+push\s/, `${app} ${p.probe} at 0x${a}: ${first}`);
        }
      }
    }
  }
});
