// `make demo-jaeger`: starts a local Jaeger (tools/jaeger.ts), the demo
// service, and the agent exporting to Jaeger over OTLP/gRPC; sends traffic,
// waits until Jaeger has every trace, and prints the UI address. Then it
// keeps Jaeger up until Ctrl-C when run from a terminal (exits at once
// otherwise, or after --hold SECONDS).
//
// One caller is traced too: "demo-client" (this script) opens a root span
// and three CLIENT spans, sends each request with its traceparent and reports
// its own spans to Jaeger as OTLP/JSON, so the trace shows the agent's
// SERVER spans as the children of the caller's, across two services.
//
//   --screenshot FILE   also save a PNG of that trace in the Jaeger UI
//                       (headless Chromium; needs JAEGER_UI_ASSETS)
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../src/util/paths';
import { startJaeger, jaegerApi, Jaeger, JaegerTrace } from './jaeger';

const root = repoRoot();
const SERVICE = path.join(root, 'apps', 'target', 'release', 'demo-service');
const AGENT = path.join(root, 'bin', 'otel-rust-agent');

export interface DemoResult {
  jaeger: Jaeger;
  servicePid: number;
  /** Traces of the plain requests, by request line. */
  plain: { request: string; status: number }[];
  /** The trace started by demo-client. */
  clientTrace: { traceId: string; rootSpanId: string; calls: { spanId: string; path: string }[] };
  agentLog: string;
  stop(): Promise<void>;
}

function waitForLine(stream: NodeJS.ReadableStream, re: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${buf}`)), timeoutMs);
    const on = (d: Buffer) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) { clearTimeout(t); stream.off('data', on); resolve(m); }
    };
    stream.on('data', on);
  });
}

function request(port: number, method: string, p: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

const hex = (n: number) => randomBytes(n).toString('hex');
const nowNs = () => BigInt(Date.now()) * 1_000_000n + process.hrtime.bigint() % 1_000_000n;

interface ClientSpan { spanId: string; parentSpanId?: string; name: string; kind: number; start: bigint; end: bigint; attributes: Record<string, string | number> }

/** The caller's own spans, as OTLP/JSON (ids in hex, times as strings, as the OTLP JSON mapping has them). */
async function reportClientSpans(j: Jaeger, traceId: string, spans: ClientSpan[]): Promise<void> {
  const attr = (k: string, v: string | number) => ({ key: k, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } });
  const body = {
    resourceSpans: [{
      resource: { attributes: [attr('service.name', 'demo-client'), attr('telemetry.sdk.language', 'nodejs')] },
      scopeSpans: [{
        scope: { name: 'otel-rust-agent/demo-client' },
        spans: spans.map((s) => ({
          traceId, spanId: s.spanId, ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}), name: s.name, kind: s.kind,
          startTimeUnixNano: String(s.start), endTimeUnixNano: String(s.end),
          attributes: Object.entries(s.attributes).map(([k, v]) => attr(k, v)),
          status: {},
        })),
      }],
    }],
  };
  const r = await fetch(`${j.otlpHttp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!r.ok) throw new Error(`Jaeger refused the client spans: HTTP ${r.status} ${await r.text()}`);
}

export async function runDemo(opts: { log?: (s: string) => void } = {}): Promise<DemoResult> {
  const say = opts.log ?? ((s: string) => console.log(s));
  const children: ChildProcess[] = [];
  const jaeger = await startJaeger();
  const cleanup = async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await jaeger.stop();
  };
  try {
    const svc = spawn(SERVICE, [], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(svc);
    const port = Number((await waitForLine(svc.stdout!, /listening on 127\.0\.0\.1:(\d+)/, 10_000, 'the demo service'))[1]);
    say(`demo: demo-service pid ${svc.pid} listening on 127.0.0.1:${port}`);

    const env = { ...process.env, OTEL_SERVICE_NAME: 'demo-service', OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpGrpc, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' };
    const agent = spawn(process.execPath, [AGENT, '--pid', String(svc.pid), '--stats-file', path.join(os.tmpdir(), `jaeger-demo-${process.pid}.json`)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(agent);
    let agentLog = '';
    agent.stderr!.on('data', (d: Buffer) => (agentLog += d.toString()));
    const exited = new Promise<number>((r) => agent.on('exit', (code) => r(code ?? 1)));
    await Promise.race([
      waitForLine(agent.stderr!, /tracing process/, 60_000, 'the agent to attach'),
      exited.then((c) => { throw new Error(`the agent exited with code ${c} before attaching:\n${agentLog}`); }),
    ]);

    const plain: DemoResult['plain'] = [];
    for (const [m, p, b] of [['GET', '/users/42?verbose=true'], ['GET', '/fail'], ['GET', '/slow?ms=25'], ['POST', '/echo', 'hello jaeger']] as const) {
      const status = await request(port, m, p, b ? { 'content-type': 'text/plain' } : {}, b);
      plain.push({ request: `${m} ${p}`, status });
      say(`demo: ${m} ${p} -> ${status}`);
    }

    // A traced caller: checkout -> 3 x (CLIENT GET -> the agent's SERVER span).
    const traceId = hex(16);
    const rootSpan: ClientSpan = { spanId: hex(8), name: 'checkout', kind: 1, start: nowNs(), end: 0n, attributes: {} };
    const spans: ClientSpan[] = [rootSpan];
    const calls: DemoResult['clientTrace']['calls'] = [];
    for (const p of ['/users/7', '/slow?ms=10', '/users/8']) {
      const s: ClientSpan = {
        spanId: hex(8), parentSpanId: rootSpan.spanId, name: 'GET', kind: 3, start: nowNs(), end: 0n,
        attributes: { 'http.request.method': 'GET', 'url.full': `http://127.0.0.1:${port}${p}`, 'server.address': '127.0.0.1', 'server.port': port },
      };
      const status = await request(port, 'GET', p, { traceparent: `00-${traceId}-${s.spanId}-01`, 'user-agent': 'demo-client/1.0' });
      s.end = nowNs();
      s.attributes['http.response.status_code'] = status;
      spans.push(s);
      calls.push({ spanId: s.spanId, path: p });
      say(`demo: demo-client GET ${p} -> ${status} (trace ${traceId})`);
    }
    rootSpan.end = nowNs();
    await reportClientSpans(jaeger, traceId, spans);

    // Every span in Jaeger: 4 single-span traces of demo-service, and the client's trace with 7 spans.
    const end = Date.now() + 30_000;
    for (;;) {
      const traces = await jaegerApi<JaegerTrace[]>(jaeger, '/api/traces?service=demo-service&limit=100&lookback=1h').catch(() => [] as JaegerTrace[]);
      const client = traces.find((t) => t.traceID === traceId);
      if (traces.length >= plain.length + 1 && client && client.spans.length === 7) break;
      if (Date.now() > end) throw new Error(`Jaeger has ${traces.length} traces of demo-service (client trace: ${client?.spans.length ?? 0} spans); agent log:\n${agentLog}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return {
      jaeger, servicePid: svc.pid!, plain, agentLog,
      clientTrace: { traceId, rootSpanId: rootSpan.spanId, calls },
      async stop() {
        if (agent.exitCode === null) agent.kill('SIGINT');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        await cleanup();
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** Headless Chromium: the trace page, once its spans are drawn. */
function screenshot(url: string, out: string): void {
  const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p));
  if (!chromium) throw new Error('chromium is not installed (scripts/deploy-tools.sh chromium)');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-'));
  try {
    const r = spawnSync(chromium, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--hide-scrollbars', `--user-data-dir=${profile}`,
      '--window-size=1400,470', '--virtual-time-budget=15000', `--screenshot=${path.resolve(out)}`, url,
    ], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0 || !fs.existsSync(out)) throw new Error(`chromium failed (${r.status}): ${r.stderr}`);
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const shotAt = args.indexOf('--screenshot');
  const shot = shotAt >= 0 ? args[shotAt + 1] : undefined;
  const holdAt = args.indexOf('--hold');
  const hold = holdAt >= 0 ? Number(args[holdAt + 1]) : process.stdin.isTTY ? Infinity : 0;
  const demo = await runDemo();
  const ui = demo.jaeger.uiUrl;
  const stop = () => demo.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  console.log(`demo: ok: ${demo.plain.length} requests and a 7-span trace across demo-client and demo-service are in Jaeger`);
  console.log(`demo: Jaeger UI: ${ui}  (the trace: ${ui}/trace/${demo.clientTrace.traceId})`);
  console.log(`demo: Jaeger API: ${ui}/api/traces?service=demo-service`);
  if (!demo.jaeger.ui) {
    console.log('demo: note: this Jaeger is built from the Go module, which has no UI assets: the UI address shows Jaeger\'s placeholder page.');
    console.log('demo:       Set JAEGER_UI_ASSETS to a jaeger-ui build directory (index.html) to serve the real UI; the API works either way.');
  }
  if (shot) {
    if (!demo.jaeger.ui) throw new Error('--screenshot needs the real UI: set JAEGER_UI_ASSETS');
    screenshot(`${ui}/trace/${demo.clientTrace.traceId}`, shot);
    console.log(`demo: screenshot of the trace written to ${shot}`);
  }
  if (hold > 0 && Number.isFinite(hold)) await new Promise((r) => setTimeout(r, hold * 1000));
  else if (hold === Infinity) {
    console.log('demo: Jaeger keeps running; Ctrl-C stops it');
    await new Promise(() => undefined);
  }
  await demo.stop();
  return 0;
}

if (require.main === module) {
  main().then((c) => process.exit(c), (e) => { console.error(`demo: ${(e as Error).message}`); process.exit(1); });
}
