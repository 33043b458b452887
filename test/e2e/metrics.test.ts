// Self-telemetry: the Prometheus endpoint scraped during traffic reports
// exactly what the test sent (probe hits, spans built and exported, traced
// processes), /healthz and /readyz answer, and the server listens only where
// it was told to.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { startOtlpReceiver, OtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, rawExchange, runAgentSync, Service, RunningAgent } from '../helpers/procs';

let recv: OtlpReceiver;
let agent: RunningAgent;
let service: Service;
let exe: string;
let base: string;

function get(url: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Prometheus text format -> "name{sorted labels}" -> value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels = m[3] ? m[3].split(/,(?=[a-zA-Z_]+=")/).sort().join(',') : '';
    out.set(labels ? `${m[1]}{${labels}}` : m[1], Number(m[4]));
  }
  return out;
}

async function scrape(): Promise<Map<string, number>> {
  const r = await get(`${base}/metrics`);
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  return parseMetrics(r.body);
}

const probe = (p: string) => `{library="hyper-h1-server",probe="${p}"}`;

before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'metrics-'));
  exe = path.join(dir, 'metrics-app');
  fs.copyFileSync(serviceBinary('demo-service'), exe);
  fs.chmodSync(exe, 0o755);
  recv = await startOtlpReceiver({ grpc: true });
  service = await startService(exe, { OTEL_SERVICE_NAME: 'metered' });
  agent = await attachAgent(['--exe', exe, '--metrics-address', '127.0.0.1:0'], { OTEL_EXPORTER_OTLP_ENDPOINT: recv.grpcEndpoint });
  const m = await agent.stderr.wait(/metrics: (http:\/\/127\.0\.0\.1:\d+)\/metrics, \/healthz, \/readyz \(reachable from this host only \(loopback\)\)/, 10_000);
  base = m[1];
});

after(async () => {
  await service?.stop();
  const code = await agent?.stop();
  await recv?.close();
  fs.rmSync(path.dirname(exe), { recursive: true, force: true });
  assert.equal(code, 0, agent?.stderr.text);
});

test('health and readiness', async () => {
  // Ready once the first scan has tracked the running process.
  const end = Date.now() + 10_000;
  let r = await get(`${base}/readyz`);
  while (r.status !== 200 && Date.now() < end) { await new Promise((x) => setTimeout(x, 100)); r = await get(`${base}/readyz`); }
  assert.deepEqual([r.status, r.body], [200, 'ready\n']);
  assert.deepEqual([(await get(`${base}/healthz`)).status, (await get(`${base}/healthz`)).body], [200, 'ok\n']);
  assert.equal((await get(`${base}/nope`)).status, 404);
  assert.equal((await get(`${base}/metrics`, 'POST')).status, 405);
});

test('counters scraped during traffic match what was sent', async () => {
  const before = await scrape();
  assert.equal(before.get(`otel_rust_agent_probe_hits_total${probe('parse')}`), 0);
  assert.equal(before.get('otel_rust_agent_traced_processes{service_name="metered"}'), 1);
  assert.equal(before.get('otel_rust_agent_attached_files{origin="exe"}'), 1);
  assert.equal(before.get('otel_rust_agent_ready'), 1);

  // 4 connections x 50 keep-alive requests, 10 ms apart in fives, scraped while they run.
  const N = 50, C = 4;
  const reqs = (c: number) => Array.from({ length: N }, (_, i) => [`GET /users/${i}?conn=${c} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, ...(i % 5 === 4 ? [10] : [])]).flat();
  const scrapes: Map<string, number>[] = [];
  let running = true;
  const scraper = (async () => { while (running) { scrapes.push(await scrape()); await new Promise((r) => setTimeout(r, 20)); } })();
  await Promise.all(Array.from({ length: C }, (_, c) => rawExchange(service.port, reqs(c), N)));
  running = false;
  await scraper;
  assert.ok(scrapes.length >= 2, `${scrapes.length} scrapes during traffic`);
  // Counters never go down between scrapes.
  for (let i = 1; i < scrapes.length; i++) {
    for (const k of ['otel_rust_agent_probe_hits_total' + probe('parse'), 'otel_rust_agent_spans_created_total{library="hyper-h1-server"}']) {
      assert.ok(scrapes[i].get(k)! >= scrapes[i - 1].get(k)!, k);
    }
  }

  const total = N * C;
  const end = Date.now() + 15_000;
  let m = await scrape();
  while ((m.get('otel_rust_agent_spans_exported_total') ?? 0) < total && Date.now() < end) { await new Promise((r) => setTimeout(r, 200)); m = await scrape(); }
  // parse: one per request, plus the 24-byte HTTP/2 sniff axum hands hyper on each new connection.
  assert.equal(m.get(`otel_rust_agent_probe_hits_total${probe('parse')}`), total + C);
  assert.equal(m.get(`otel_rust_agent_probe_hits_total${probe('encode_status')}`), total);
  assert.equal(m.get(`otel_rust_agent_probe_events_total${probe('parse')}`), total + C);
  assert.equal(m.get(`otel_rust_agent_probe_ring_drops_total${probe('parse')}`), 0);
  assert.equal(m.get(`otel_rust_agent_probe_bad_layout_total${probe('encode_status')}`), 0);
  assert.equal(m.get(`otel_rust_agent_probe_disabled${probe('encode_status')}`), 0);
  assert.equal(m.get('otel_rust_agent_spans_created_total{library="hyper-h1-server"}'), total);
  assert.equal(m.get('otel_rust_agent_library_events_total{library="hyper-h1-server",name="requests"}'), total);
  assert.equal(m.get('otel_rust_agent_library_events_total{library="hyper-h1-server",name="partialHeads"}'), C);
  assert.equal(m.get('otel_rust_agent_library_pending_requests{library="hyper-h1-server"}'), 0);
  assert.equal(m.get('otel_rust_agent_spans_submitted_total'), total);
  assert.equal(m.get('otel_rust_agent_spans_exported_total'), total);
  assert.equal(m.get('otel_rust_agent_spans_dropped_total'), 0);
  assert.equal(m.get('otel_rust_agent_spans_queued'), 0);
  assert.equal(m.get('otel_rust_agent_export_failures_total'), 0);
  assert.equal(m.get('otel_rust_agent_traced_processes{service_name="metered"}'), 1);
  assert.equal(recv.spans().length, total);
  // The agent's own CPU and memory.
  assert.ok(m.get('process_cpu_seconds_total')! > 0);
  assert.ok(m.get('process_resident_memory_bytes')! > 10e6);
  assert.ok(m.has('nodejs_eventloop_lag_seconds'));
});

test('it listens only where it was told: 127.0.0.1 is not 127.0.0.2', async () => {
  const port = new URL(base).port;
  const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const s = net.connect(Number(port), '127.0.0.2');
    s.on('connect', () => { s.destroy(); resolve(undefined); });
    s.on('error', (e) => resolve(e));
  });
  assert.equal(err?.code, 'ECONNREFUSED');
});

test('a bad or busy metrics address is one line and exit code 2', () => {
  const port = new URL(base).port;
  const busy = runAgentSync(['--exe', exe, '--metrics-address', `127.0.0.1:${port}`]);
  assert.equal(busy.code, 2, busy.stderr);
  assert.equal(busy.stderr, `otel-rust-agent: metrics address 127.0.0.1:${port}: cannot listen (address in use)\n`);
  const bad = runAgentSync(['--exe', exe], { env: { OTEL_RUST_AGENT_METRICS_ADDRESS: 'localhost:http' } });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'otel-rust-agent: OTEL_RUST_AGENT_METRICS_ADDRESS: "localhost:http" is not an address (PORT, HOST:PORT, [IPv6]:PORT or :PORT)\n');
});
