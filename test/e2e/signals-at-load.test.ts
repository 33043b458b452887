// The verifier aborts a program load with EAGAIN whenever a signal is
// pending. A signal that arrives while the agent loads its programs (here:
// V8's sampling profiler, SIGPROF every millisecond, far more than anyone
// sends by hand) must not stop the agent from starting: the loader blocks
// signals for the load. Before, every load of hyper-h1-server's programs
// failed this way (errno 11) and the agent exited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startService, serviceBinary, attachAgent } from '../helpers/procs';
import { startOtlpReceiver } from '../helpers/otlp-receiver';

test('under a 1 ms SIGPROF (node --cpu-prof) the agent loads every program, attaches and traces', async () => {
  const profDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-cpuprof-'));
  const recv = await startOtlpReceiver({ grpc: false, http: true });
  const svc = await startService(serviceBinary('demo-service'));
  try {
    const agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint], {},
      ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=1000']);
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`http://127.0.0.1:${svc.port}/`)).status, 200);
    await recv.waitForSpans(3, 15_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(recv.spans().map((s) => [s.kind, s.attributes['url.path'], s.attributes['http.response.status_code']]), [[2, '/', 200], [2, '/', 200], [2, '/', 200]]);
    assert.doesNotMatch(agent.stderr.text, /errno 11|EAGAIN/);
    assert.equal(await agent.stop(), 0, agent.stderr.text);
    // The profiler really ran in the agent (its profile is written at exit).
    assert.ok(fs.readdirSync(profDir).some((f) => f.endsWith('.cpuprofile')));
  } finally {
    await svc.stop();
    await recv.close();
    fs.rmSync(profDir, { recursive: true, force: true });
  }
});
