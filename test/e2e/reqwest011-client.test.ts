// End to end: CLIENT spans of reqwest 0.11 (on hyper 0.14's client, which
// follows redirects inside reqwest itself) from the same fixture source as the
// reqwest 0.12 test; the service's axum server span is the parent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, Service, RunningAgent } from '../helpers/procs';
import { startRedirectTarget, fixtureCall, assertH1Calls } from '../helpers/reqwest-h1-case';

let recv: OtlpReceiver;
let svc: Service;
let agent: RunningAgent;
let target: http.Server;
let tport = 0;

before(async () => {
  ({ server: target, port: tport } = await startRedirectTarget());
  recv = await startOtlpReceiver({ grpc: false, http: true });
  svc = await startService(serviceBinary('reqwest11-client'));
  agent = await attachAgent(['--pid', String(svc.pid), '--protocol', 'http/protobuf', '--endpoint', recv.httpEndpoint]);
});

after(async () => {
  const code = await agent?.stop();
  await svc?.stop();
  await recv?.close();
  await new Promise((r) => target?.close(r));
  assert.equal(code, 0, agent?.stderr.text);
});

const call = fixtureCall(() => svc);

test('reqwest 0.11 (hyper 0.14): exact attributes, parent, redirect hops with resend_count, 404 ERROR, blocking; 3 hits per call', async () => {
  await assertH1Calls(recv, agent, call, tport, '11');
});
