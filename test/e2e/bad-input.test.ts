// Bad input: each case is one line on stderr, a specific non-zero exit code,
// and no stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { runAgentSync, startService, serviceBinary, attachAgent } from '../helpers/procs';
import { appBinary } from '../helpers/rustbuild';
import { startOtlpReceiver } from '../helpers/otlp-receiver';

function oneLine(r: { code: number | null; stderr: string }, code: number, re: RegExp): void {
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.code, code, r.stderr);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bad-input-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

test('a PID that does not exist', () => {
  // Find a free pid above the current max in use.
  let pid = 4_000_000;
  while (fs.existsSync(`/proc/${pid}`)) pid++;
  oneLine(runAgentSync(['--pid', String(pid)]), 3, new RegExp(`^otel-rust-agent: process ${pid} not found$`));
});

test('an invalid PID and conflicting targets are usage errors', () => {
  oneLine(runAgentSync(['--pid', 'abc']), 2, /invalid PID "abc"/);
  oneLine(runAgentSync(['--pid', '1', '--exe', '/bin/ls']), 2, /either a PID .* or an executable/);
  oneLine(runAgentSync([]), 2, /no target/);
  oneLine(runAgentSync(['--bogus']), 2, /Unknown option '--bogus'/);
});

test('a bad flag value is a usage error', () => {
  oneLine(runAgentSync(['--exe', '/bin/ls', '--protocol', 'http/json']), 2, /^otel-rust-agent: --protocol: "http\/json" is not supported/);
  oneLine(runAgentSync(['--exe', '/bin/ls', '--exporter', 'zipkin']), 2, /^otel-rust-agent: --exporter: "zipkin" is not supported/);
  oneLine(runAgentSync(['--exe', '/bin/ls', '--log-level', 'loud']), 2, /^otel-rust-agent: --log-level: "loud" is not a level/);
  oneLine(runAgentSync(['--exe', '/bin/ls', '--endpoint', 'not a url']), 2, /^otel-rust-agent: --endpoint: "not a url" is not a URL$/);
  // Longer than Node timers can wait (2^31 ms): it would fire at once.
  oneLine(runAgentSync(['--exe', '/bin/ls', '--duration', '2147484']), 2, /^otel-rust-agent: --duration: "2147484" is too long \(at most 2073600 seconds, 24 days\)$/);
});

test('an unknown value of an enum or boolean variable is one warning, then the default applies', () => {
  // The run goes on to the target check (/bin/ls is not Rust: exit 3), so the
  // variables did not stop it.
  const r = runAgentSync(['--exe', '/bin/ls'], {
    env: { OTEL_LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_TRACES_EXPORTER: 'zipkin', OTEL_STDOUT: 'maybe' },
  });
  const lines = r.stderr.trim().split('\n');
  assert.deepEqual(lines.slice(0, 4), [
    'otel-rust-agent warn: OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" is not supported (use grpc or http/protobuf); ignored, using grpc',
    'otel-rust-agent warn: OTEL_TRACES_EXPORTER: "zipkin" is not supported (use otlp, console or none, or a comma-separated list such as otlp,console); ignored',
    'otel-rust-agent warn: OTEL_TRACES_EXPORTER: no usable exporter in "zipkin"; using otlp',
    'otel-rust-agent warn: OTEL_STDOUT: "maybe" is not a boolean (true or false); ignored, using false',
  ], r.stderr);
  assert.match(lines[4], /^otel-rust-agent: \/bin\/ls: not a Rust binary/);
  assert.equal(lines.length, 5, r.stderr);
  assert.equal(r.code, 3, r.stderr);
  // An unknown OTEL_LOG_LEVEL is reported at the default level, info.
  const l = runAgentSync(['--exe', '/bin/ls'], { env: { OTEL_LOG_LEVEL: 'loud' } });
  assert.match(l.stderr, /^otel-rust-agent warn: OTEL_LOG_LEVEL: "loud" is not a level .*; ignored, using info\n/);
  assert.equal(l.code, 3, l.stderr);
});

test('export settings: flags win over every OTEL_EXPORTER_OTLP_* variable, which the exporter does not read again', async () => {
  const recv = await startOtlpReceiver({ grpc: true, http: false });
  const svc = await startService(serviceBinary('demo-service'));
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint, '--protocol', 'grpc', '--headers', 'x-flag=1'], {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
    OTEL_EXPORTER_OTLP_HEADERS: 'x-general=2', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-traces=3',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  });
  try {
    await fetch(`http://127.0.0.1:${svc.port}/`).then((r) => r.text());
    await recv.waitForSpans(1, 15_000);
    const h = recv.lastHeaders();
    assert.equal(h['x-flag'], '1');
    assert.equal(h['x-general'], undefined, JSON.stringify(h));
    assert.equal(h['x-traces'], undefined, JSON.stringify(h));
    assert.doesNotMatch(agent.stderr.text, /cannot export/);
  } finally {
    await svc.stop();
    await agent.exited;
    await recv.close();
  }
});

test('a file that is not ELF', () => {
  const f = path.join(tmp, 'notes.txt');
  fs.writeFileSync(f, 'just text\n');
  oneLine(runAgentSync(['--exe', f]), 3, new RegExp(`^otel-rust-agent: ${f}: not an ELF file$`));
  oneLine(runAgentSync(['--exe', path.join(tmp, 'missing')]), 3, /missing: no such file$/);
});

test('an ELF that is not Rust (/bin/ls)', () => {
  oneLine(runAgentSync(['--exe', '/bin/ls']), 3, /^otel-rust-agent: \/bin\/ls: not a Rust binary/);
});

test('a stripped Rust binary without hyper: nothing to identify', () => {
  const f = path.join(tmp, 'stripped-app');
  fs.copyFileSync(appBinary('threads-demo'), f);
  execFileSync('strip', [f]);
  oneLine(runAgentSync(['--exe', f]), 3, /nothing to instrument \(hyper-h1-server: required probe not available \(parse: binary is stripped of its symbol table/);
});

test('no privileges: run as an unprivileged user', async () => {
  // The binary must be readable by nobody for the check to reach privileges.
  const f = path.join(tmp, 'app-for-nobody');
  fs.copyFileSync(serviceBinary('demo-service'), f);
  fs.chmodSync(tmp, 0o755);
  fs.chmodSync(f, 0o755);
  oneLine(runAgentSync(['--exe', f], { asNobody: true }), 4, /^otel-rust-agent: permission denied: .*needs root/);
  // By PID, on a root process: /proc/<pid>/exe is not readable.
  const svc = await startService(serviceBinary('demo-service'));
  try {
    oneLine(runAgentSync(['--pid', String(svc.pid)], { asNobody: true }), 4, /permission denied/);
  } finally {
    await svc.stop();
  }
});

test('a collector that is down: the agent keeps tracing, warns once, and exits cleanly', async () => {
  const svc = await startService(serviceBinary('demo-service'));
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', 'http://127.0.0.1:9'], {});
  try {
    for (let i = 0; i < 3; i++) await fetch(`http://127.0.0.1:${svc.port}/`).then((r) => r.text());
    await agent.stderr.wait(/cannot export spans to http:\/\/127\.0\.0\.1:9/, 15_000);
    assert.equal(agent.proc.exitCode, null, 'still running');
  } finally {
    await svc.stop();
  }
  const code = await agent.exited.then((c) => c); // the target exited: the agent stops by itself
  assert.equal(code, 0);
  assert.doesNotMatch(agent.stderr.text, /\n\s+at /);
  const warnings = agent.stderr.text.split('\n').filter((l) => /cannot export spans/.test(l));
  assert.equal(warnings.length, 1, agent.stderr.text);
});
