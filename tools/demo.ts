// `make demo`: starts the bundled axum demo service, attaches the agent to it,
// sends a little traffic of every kind, prints the trace trees the agent
// produced and exits 0 if every request became a span. Unattended.
import { spawn, ChildProcess } from 'node:child_process';
import * as http from 'node:http';
import * as path from 'node:path';
import { repoRoot } from '../src/util/paths';

const root = repoRoot();
const SERVICE = path.join(root, 'apps', 'target', 'release', 'demo-service');
const AGENT = path.join(root, 'bin', 'otel-rust-agent');

function waitForLine(stream: NodeJS.ReadableStream, re: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
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
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers, agent: keepAlive }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

async function main(): Promise<number> {
  const children: ChildProcess[] = [];
  const cleanup = () => children.forEach((c) => c.exitCode === null && c.kill('SIGKILL'));
  process.on('exit', cleanup);
  try {
    const svc = spawn(SERVICE, [], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(svc);
    const port = Number((await waitForLine(svc.stdout!, /listening on 127\.0\.0\.1:(\d+)/, 10_000, 'the demo service'))[1]);
    console.log(`demo: demo-service pid ${svc.pid} listening on 127.0.0.1:${port}`);

    const agent = spawn(process.execPath, [AGENT, '--pid', String(svc.pid), '--exporter', 'none', '--stdout'], {
      env: { ...process.env, OTEL_SERVICE_NAME: 'demo-service' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(agent);
    let treeOut = '';
    agent.stdout!.on('data', (d: Buffer) => { treeOut += d.toString(); process.stdout.write(d); });
    agent.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
    const exited = new Promise<number>((r) => agent.on('exit', (code) => r(code ?? 1)));
    await Promise.race([
      waitForLine(agent.stderr!, /tracing process/, 30_000, 'the agent to attach'),
      exited.then((c) => { throw new Error(`the agent exited with code ${c} before attaching`); }),
    ]);

    const traffic: [string, string, Record<string, string>?, string?][] = [
      ['GET', '/'],
      ['GET', '/users/42?verbose=true'],
      ['GET', '/fail'],
      ['GET', '/no/such/page'],
      ['GET', '/slow?ms=25'],
      ['POST', '/echo', { 'content-type': 'text/plain' }, 'hello agent'],
      ['GET', '/users/7', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'user-agent': 'demo-client/1.0' }],
    ];
    for (const [m, p, h, b] of traffic) {
      const status = await request(port, m, p, h, b);
      console.log(`demo: ${m} ${p} -> ${status}`);
    }
    keepAlive.destroy();
    await new Promise((r) => setTimeout(r, 1200));
    agent.kill('SIGINT');
    const code = await exited;
    svc.kill('SIGTERM');

    const spans = (treeOut.match(/^\s+SERVER\s/gm) ?? []).length;
    if (code !== 0 || spans !== traffic.length) {
      console.error(`demo: FAILED: agent exit code ${code}, ${spans} spans for ${traffic.length} requests`);
      return 1;
    }
    console.log(`demo: ok: ${traffic.length} requests, ${spans} SERVER spans`);
    return 0;
  } finally {
    cleanup();
  }
}

main().then((c) => process.exit(c), (e) => { console.error(`demo: ${(e as Error).message}`); process.exit(1); });
