// OTEL_TARGET_EXE: every process of an executable, including ones that start
// after the agent, and a service killed and restarted is traced again. The test
// runs its own private copy of the binary, so no other process on the machine
// can be affected.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpReceiver, OtlpReceiver, ReceivedSpan } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, rawExchange, Service, RunningAgent } from '../helpers/procs';

let recv: OtlpReceiver;
let exe: string;
let agent: RunningAgent;
const services: Service[] = [];

before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'exe-mode-'));
  exe = path.join(dir, 'exe-mode-app');
  fs.copyFileSync(serviceBinary('demo-service'), exe);
  fs.chmodSync(exe, 0o755);
  recv = await startOtlpReceiver({ grpc: true });
});

after(async () => {
  for (const s of services) await s.stop();
  const code = await agent?.stop();
  await recv?.close();
  fs.rmSync(path.dirname(exe), { recursive: true, force: true });
  assert.equal(code, 0, agent?.stderr.text);
});

async function hit(svc: Service, tag: string): Promise<ReceivedSpan> {
  await rawExchange(svc.port, [`GET /users/5?run=${tag} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`], 1);
  const end = Date.now() + 15_000;
  for (;;) {
    const s = recv.spans().find((x) => x.attributes['url.query'] === `run=${tag}`);
    if (s) return s;
    if (Date.now() > end) throw new Error(`no span for ${tag}; agent stderr:\n${agent.stderr.text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a running process and one started after the agent are both traced', async () => {
  const early = await startService(exe);
  services.push(early);
  agent = await attachAgent([], {
    OTEL_TARGET_EXE: exe, OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint, OTEL_SERVICE_NAME: 'exe-mode',
  });
  const s1 = await hit(early, 'early');
  assert.equal(s1.resource['process.pid'], early.pid);

  const late = await startService(exe);
  services.push(late);
  // The very first request of the new process is traced: the probes sit on the
  // file, so there is no window between exec and attach.
  const s2 = await hit(late, 'late');
  assert.equal(s2.resource['process.pid'], late.pid);
  assert.equal(s2.resource['service.name'], 'exe-mode');
  assert.equal(s2.resource['process.executable.path'], fs.realpathSync(exe));
});

test('a service killed and restarted is traced again, under its new pid', async () => {
  const victim = services.pop()!;
  await victim.stop('SIGKILL');
  await agent.stderr.wait(new RegExp(`process ${victim.pid} exited`), 5_000);
  const again = await startService(exe);
  services.push(again);
  const s = await hit(again, 'restarted');
  assert.equal(s.resource['process.pid'], again.pid);
  assert.notEqual(again.pid, victim.pid);
  await agent.stderr.wait(new RegExp(`process ${again.pid} traced`), 5_000);
  // The agent is still running: exe mode does not stop when a process exits.
  assert.equal(agent.proc.exitCode, null);
});
