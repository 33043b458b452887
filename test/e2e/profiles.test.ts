// The binaries users ship: release profiles beyond cargo's default, stripped
// symbols with and without a symbol source, and another compiler. Each is a
// real build of the apps, made here (profileBuild shares one cargo target
// directory per toolchain, so only what a profile changes is rebuilt), and
// each is traced end to end with exact attributes, or refused with the reason.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { profileBuild, appBinary } from '../helpers/rustbuild';
import { runAgentSync, startService, attachAgent, rawExchange } from '../helpers/procs';
import { startOtlpReceiver } from '../helpers/otlp-receiver';
import { ElfFile } from '../../src/binary/elf';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'profiles-test-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Two requests on one connection; the spans must carry exactly what was sent and answered. */
async function assertTraced(bin: string, failStatus: number, agentArgs: string[] = []): Promise<string> {
  // axum's route probe survives some profiles (opt-level "s") and is inlined
  // under others (fat LTO); an HTTP/1 route is tied to its request by the
  // tokio task id, which thin LTO can hide from the planner. The route is
  // expected exactly when both are active.
  const plan = inspect(bin, ...agentArgs);
  const routed = /^ {2}axum: active/m.test(plan) && /^ {2}tokio: active/m.test(plan);
  const recv = await startOtlpReceiver({ grpc: true });
  const svc = await startService(bin);
  const agent = await attachAgent(['--pid', String(svc.pid), '--endpoint', recv.grpcEndpoint, ...agentArgs]);
  try {
    const res = await rawExchange(svc.port, [
      'GET /fail HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /?q=1 HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: profiles/1\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n',
    ], 2);
    assert.deepEqual(res.map((r) => r.status), [failStatus, 200]);
    const spans = await recv.waitForSpans(2, 15_000);
    assert.equal(spans.length, 2);
    const by = (p: string) => spans.find((s) => s.attributes['url.path'] === p)!;
    assert.equal(by('/fail').attributes['http.response.status_code'], failStatus);
    assert.deepEqual(by('/').attributes, {
      'http.request.method': 'GET', 'url.path': '/', 'url.query': 'q=1', 'url.scheme': 'http',
      'server.address': 'example.test', 'server.port': 8080, 'user_agent.original': 'profiles/1',
      'network.protocol.version': '1.1', 'http.response.status_code': 200,
      ...(routed ? { 'http.route': '/' } : {}),
    });
    assert.equal(by('/').name, routed ? 'GET /' : 'GET');
    assert.equal(by('/').traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(by('/').parentSpanId, 'b7ad6b7169203331');
  } finally {
    assert.equal(await agent.stop(), 0, agent.stderr.text);
    await svc.stop();
    await recv.close();
  }
  return agent.stderr.text;
}

function inspect(bin: string, ...args: string[]): string {
  const r = runAgentSync(['inspect', bin, ...args]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.stdout;
}

describe('fat LTO with one codegen unit', () => {
  test('Server::encode is inlined into Conn::write_head; its entry ends the spans', async () => {
    const bin = profileBuild('demo-service', 'fat-lto', { lto: 'fat', codegenUnits: 1 });
    const ins = inspect(bin);
    assert.match(ins, /\[NOT FOUND\] encode_status /);
    assert.match(ins, /\[found\] write_head_status entry +hyper::proto::h1::conn::Conn<I,B,T>::write_head\n/);
    assert.match(ins, /MessageHead<StatusCode>\.subject = 104 \(db\+code/);
    assert.match(ins, /hyper-h1-server: active/);
    await assertTraced(bin, 500);
  });
});

describe('thin LTO with one codegen unit (a common production profile)', () => {
  test('the probe points survive: traced as usual', async () => {
    const bin = profileBuild('demo-service', 'thin-lto-cgu1', { lto: 'thin', codegenUnits: 1 });
    assert.match(inspect(bin), /\[found\] encode_status /);
    await assertTraced(bin, 500);
  });
});

describe('opt-level = "s" with panic = "abort"', () => {
  test('traced as usual', async () => {
    const bin = profileBuild('demo-service', 'opt-s-abort', { optLevel: 's', panic: 'abort' });
    assert.match(inspect(bin), /hyper-h1-server: active/);
    await assertTraced(bin, 500);
  });
});

describe('rustc 1.85 (Debian rustc-web)', () => {
  test('a hyper 0.14 server built with rustc 1.85 is traced, with offsets for that rustc', async () => {
    const bin = profileBuild('hyper014-server', 'default', {}, '1.85');
    const ins = inspect(bin);
    assert.match(ins, /^rustc +rustc version 1\.85\.0 /m);
    assert.match(ins, /\[found\] encode_status /);
    assert.match(ins, /\(db\+code: hyper 0\.14\.32 \(rustc 1\.85\.0\), confirmed by the code\)/);
    assert.doesNotMatch(ins, /layout from rustc 1\.95/);
    await assertTraced(bin, 503);
  });
});

describe('strip = "symbols"', () => {
  // The same cargo command as the stripped build: a workspace-wide build
  // (appBinary) unifies features across members (axum08-server turns on
  // axum's http2) and gives other code.
  const unstripped = () => profileBuild('demo-service', 'strip-none', { strip: 'none' });
  const stripped = () => profileBuild('demo-service', 'strip-symbols', { strip: 'symbols' });

  test('--symbols: an unstripped build of the same code (different build id, identical loaded segments)', async () => {
    const s = stripped();
    const u = unstripped();
    assert.notEqual(ElfFile.open(s).buildId(), ElfFile.open(u).buildId(), 'the linker hashes the symbol table into the build id');
    const ins = inspect(s, '--symbols', u);
    assert.match(ins, new RegExp(`^symbols +${u.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(--symbols, identical loaded segments`, 'm'));
    assert.match(ins, /\[found\] parse +entry/);
    assert.doesNotMatch(ins, /identified without symbols/);
    // The offsets are those of the stripped file, where the probes go.
    const plain = inspect(u);
    assert.equal(/\[found\] parse[^\n]*\n[^\n]*\n +at (0x[0-9a-f]+)/.exec(ins)?.[1], /\[found\] parse[^\n]*\n[^\n]*\n +at (0x[0-9a-f]+)/.exec(plain)?.[1]);
    await assertTraced(s, 500, ['--symbols', u]);
    // From the variable too.
    const r = runAgentSync(['inspect', s], { env: { OTEL_RUST_AGENT_SYMBOLS: u } });
    assert.match(r.stdout, /--symbols, identical loaded segments/);
  });

  test('--symbols with a build of other code is refused in one line', () => {
    const r = runAgentSync(['--exe', stripped(), '--symbols', appBinary('hyper014-server')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^otel-rust-agent: --symbols .*hyper014-server is not a build of .*strip-symbols-rustup\/demo-service: build ids differ \([0-9a-f]+, [0-9a-f]+\) and /);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const missing = runAgentSync(['--exe', stripped(), '--symbols', path.join(tmp, 'nope')]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `otel-rust-agent: --symbols: ${path.join(tmp, 'nope')}: no such file\n`);
  });

  test('a separate debug file found through the build id (objcopy --only-keep-debug, then strip)', async () => {
    const u = unstripped();
    const id = ElfFile.open(u).buildId()!;
    const dbgRoot = path.join(tmp, 'debug');
    const dbg = path.join(dbgRoot, '.build-id', id.slice(0, 2), `${id.slice(2)}.debug`);
    fs.mkdirSync(path.dirname(dbg), { recursive: true });
    execFileSync('objcopy', ['--only-keep-debug', u, dbg]);
    const s = path.join(tmp, 'demo-service-split');
    execFileSync('objcopy', ['--strip-all', u, s]);
    assert.equal(ElfFile.open(s).buildId(), id);
    const ins = inspect(s, '--debug-dir', dbgRoot);
    assert.match(ins, new RegExp(`^symbols +${dbg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(debug file found by build id ${id}\\)`, 'm'));
    assert.match(ins, /\[found\] encode_status /);
    await assertTraced(s, 500, ['--debug-dir', dbgRoot]);
  });

  test('no symbol source at all: the functions are identified by their code signatures', async () => {
    const s = stripped();
    const ins = inspect(s);
    assert.match(ins, /^symbols +none: no symbol table, and none found elsewhere \(build id [0-9a-f]+ under \/usr\/lib\/debug\)/m);
    assert.match(ins, /\[found\] parse[\s\S]*?note: identified without symbols: function at 0x[0-9a-f]+ \(\.eh_frame\), references hyper 1\.12\.0 src\/proto\/h1\/role\.rs [0-9:, ]+; loads BytesMut\.ptr\/len from rsi/);
    assert.match(ins, /\[found\] encode_status[\s\S]*?note: identified without symbols: .*compares a u16 two loads behind rsi with 101/);
    await assertTraced(s, 500);
  });

  test('no symbols and no function table: refused with the reason', () => {
    const s = path.join(tmp, 'demo-service-no-eh-frame');
    execFileSync('objcopy', ['--remove-section=.eh_frame', '--remove-section=.eh_frame_hdr', stripped(), s]);
    const r = runAgentSync(['--exe', s]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /^otel-rust-agent: .*: nothing to instrument \(hyper-h1-server: required probe not available \(parse: binary is stripped of its symbol table \(no symbol table, and none found elsewhere .*\); no \.eh_frame function table either/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
