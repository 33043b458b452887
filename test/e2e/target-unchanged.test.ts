// The target is unchanged by us: a fixture service answers a scripted mix of
// normal requests, handler and body panics (panic = "unwind"), aborted
// connections, malformed and oversized heads, pipelined and split heads and
// slow clients, once without the agent and once traced by it. Every byte it
// sends back, how each connection ends, what it prints and its exit status
// must be the same; and the agent made exactly the spans the script implies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { startOtlpReceiver } from '../helpers/otlp-receiver';
import { startService, serviceBinary, attachAgent, freshStats, Service } from '../helpers/procs';

type Step = string | Buffer | number | 'reset' | 'half-close';

interface Scenario {
  name: string;
  steps: Step[];
  /** Spans the agent must make: "METHOD path status". */
  spans: string[];
}

const H = 'Host: fixture\r\n';
const get = (p: string, extra = '') => `GET ${p} HTTP/1.1\r\n${H}${extra}\r\n`;
const last = (p: string, extra = '') => get(p, `Connection: close\r\n${extra}`);
const TP = 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n';

const SCRIPT: Scenario[] = [
  { name: 'one request', steps: [last('/')], spans: ['GET / 200'] },
  { name: 'keep-alive', steps: [get('/status/201'), 20, get('/status/404'), 20, get('/status/503'), 20, last('/')],
    spans: ['GET /status/201 201', 'GET /status/404 404', 'GET /status/503 503', 'GET / 200'] },
  { name: 'pipelined in one write', steps: [Array.from({ length: 8 }, (_, i) => get(`/status/${200 + i}`)).join('') + last('/')],
    spans: [...Array.from({ length: 8 }, (_, i) => `GET /status/${200 + i} ${200 + i}`), 'GET / 200'] },
  { name: 'head split across writes', steps: ['GE', 30, 'T /status/202 HT', 30, `TP/1.1\r\n${H}`, 30, '\r', 30, '\n', 30, last('/')],
    spans: ['GET /status/202 202', 'GET / 200'] },
  { name: 'slow client: one byte at a time', steps: [...last('/status/200').split('').flatMap((c) => [c, 2])], spans: ['GET /status/200 200'] },
  { name: 'slow body', steps: [`POST /echo HTTP/1.1\r\n${H}Content-Length: 11\r\nConnection: close\r\n\r\nhello`, 200, ' world'], spans: ['POST /echo 200'] },
  { name: 'chunked body', steps: [`POST /echo HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n`, 50, '6\r\n world\r\n0\r\n\r\n'], spans: ['POST /echo 200'] },
  { name: 'expect 100-continue', steps: [`POST /echo HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n`, 100, 'ping'], spans: ['POST /echo 200'] },
  { name: 'big response', steps: [last('/big')], spans: ['GET /big 200'] },
  { name: 'HEAD of a big response', steps: [`HEAD /big HTTP/1.1\r\n${H}Connection: close\r\n\r\n`], spans: ['HEAD /big 404'] },
  { name: 'HTTP/1.0 without Host', steps: ['GET /status/200 HTTP/1.0\r\n\r\n'], spans: ['GET /status/200 200'] },
  { name: 'trace context, valid and malformed', steps: [get('/', TP), last('/', 'traceparent: 00-zz-yy-01\r\ntracestate: a=1\r\n')], spans: ['GET / 200', 'GET / 200'] },
  { name: 'a head over the 2 KiB capture', steps: [last('/', `x-pad: ${'p'.repeat(3000)}\r\n`)], spans: ['GET / 200'] },
  // A request line longer than the 2 KiB the probe captures: counted as unparsable, no span (README, Known limits).
  { name: 'a long URL', steps: [last(`/status/200?${'q'.repeat(5000)}`)], spans: [] },
  // hyper's own answers to heads it refuses are spans too when the request line could be read.
  { name: 'oversized head (over 8 KiB: 431)', steps: [last('/', `x-pad: ${'p'.repeat(10_000)}\r\n`)], spans: ['GET / 431'] },
  { name: 'garbage request line', steps: ['GARBAGE\r\n\r\n'], spans: [] },
  { name: 'binary garbage', steps: [Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 13, 10, 13, 10])], spans: [] },
  { name: 'header without a colon', steps: [`GET / HTTP/1.1\r\nHost fixture\r\n\r\n`], spans: ['GET / 400'] },
  { name: 'unknown HTTP version', steps: ['GET / HTTP/9.9\r\nHost: x\r\n\r\n'], spans: ['GET / 400'] },
  { name: 'handler panic', steps: [get('/panic')], spans: [] },
  { name: 'handler panic after a good request (pipelined)', steps: [get('/') + get('/panic') + get('/')], spans: ['GET / 200'] },
  { name: 'caught panic', steps: [last('/panic-caught')], spans: ['GET /panic-caught 500'] },
  { name: 'body panic', steps: [get('/panic-body')], spans: ['GET /panic-body 200'] },
  { name: 'aborted mid-head', steps: [`GET /status/200 HTTP/1.1\r\nHo`, 50, 'reset'], spans: [] },
  // hyper drops the handler when the client resets: no response, so no span (the request is left pending).
  { name: 'aborted before the response', steps: [get('/slow?ms=300'), 50, 'reset'], spans: [] },
  // hyper (half_close off, its default) drops a connection whose client shut
  // its side down with the request in flight, or answers it, as the race goes
  // (12 of 40 were dropped without any agent): the half-close waits for the answer.
  { name: 'half-closed after the answer', steps: [get('/status/200'), 150, 'half-close'], spans: ['GET /status/200 200'] },
  { name: 'after all that, still serving', steps: [last('/')], spans: ['GET / 200'] },
];

interface Transcript { name: string; received: string; end: string }

/** One connection: the steps in order, then everything until the server closes (or 2 s of silence: a process's first panic takes 0.2-0.4 s to unwind here, agent or not). */
function converse(port: number, sc: Scenario): Promise<Transcript> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let end = '';
    let idle: NodeJS.Timeout | undefined;
    let aborted = false;
    const done = (how: string) => {
      if (end) return;
      end = how;
      if (idle) clearTimeout(idle);
      sock.destroy();
      resolve({ name: sc.name, received: Buffer.concat(chunks).toString('latin1'), end });
    };
    const arm = () => { if (idle) clearTimeout(idle); idle = setTimeout(() => done('still open'), 2000); };
    sock.on('data', (d) => { chunks.push(d); if (!aborted) arm(); });
    sock.on('end', () => done('closed by the server'));
    sock.on('error', (e: NodeJS.ErrnoException) => done(aborted ? 'aborted by the client' : `error ${e.code}`));
    sock.on('close', () => done(aborted ? 'aborted by the client' : 'closed'));
    sock.on('connect', async () => {
      for (const s of sc.steps) {
        if (typeof s === 'number') await new Promise((r) => setTimeout(r, s));
        else if (s === 'reset') { aborted = true; sock.resetAndDestroy(); return; }
        else if (s === 'half-close') sock.end();
        else sock.write(s);
      }
      arm();
    });
  });
}

async function runScript(svc: Service, beforeExit?: () => Promise<void>): Promise<{ transcripts: Transcript[]; exit: number | null }> {
  const transcripts: Transcript[] = [];
  for (const sc of SCRIPT) transcripts.push(await converse(svc.port, sc));
  // Several clients at once, the same requests each: the answers are identical.
  const parallel = await Promise.all(Array.from({ length: 8 }, () => converse(svc.port, SCRIPT[2])));
  for (const p of parallel) assert.deepEqual(p, transcripts[2]);
  await beforeExit?.();
  const bye = await converse(svc.port, { name: 'exit', steps: [last('/exit/7')], spans: [] });
  transcripts.push(bye);
  const exit = await svc.exited;
  return { transcripts, exit };
}

function serviceStderr(svc: Service): () => string {
  let text = '';
  svc.proc.stderr?.on('data', (d: Buffer) => { text += d.toString(); });
  return () => text;
}

test('a scripted mix of good, bad, aborted and panicking requests gets the same answers, byte for byte, with and without the agent', async () => {
  const bin = serviceBinary('fault-server');
  const plain = await startService(bin);
  const plainErr = serviceStderr(plain);
  const a = await runScript(plain);

  const recv = await startOtlpReceiver({ grpc: true, http: false });
  const traced = await startService(bin);
  const tracedErr = serviceStderr(traced);
  const agent = await attachAgent(['--pid', String(traced.pid), '--endpoint', recv.grpcEndpoint]);
  try {
    let h1: Record<string, number> = {};
    const b = await runScript(traced, async () => {
      await new Promise((r) => setTimeout(r, 500)); // the slow handler of the aborted request has finished
      h1 = (await freshStats(agent)).spans['hyper-h1-server'] as unknown as Record<string, number>;
    });
    // Same bytes, same connection endings, in order; the same exit status.
    assert.deepEqual(b.transcripts.map((t) => ({ ...t, received: t.received.replaceAll(String(traced.port), 'PORT') })),
      a.transcripts.map((t) => ({ ...t, received: t.received.replaceAll(String(plain.port), 'PORT') })));
    assert.equal(a.exit, 7);
    assert.equal(b.exit, 7);
    // The same panics, reported the same way (their order may differ between threads).
    // Rust names the panicking thread with its OS thread id: "thread 'tokio-rt-worker' (330) panicked".
    const lines = (s: string) => s.split('\n').filter((l) => l !== '').map((l) => l.replace(/^(thread '[^']*') \(\d+\)/, '$1 (TID)')).sort();
    assert.deepEqual(lines(tracedErr()), lines(plainErr()));
    assert.match(plainErr(), /exiting with 7 after 4 panics/);

    // And the agent saw what the script implies, exactly.
    const want = [...SCRIPT.flatMap((s) => s.spans), ...Array(8).fill(SCRIPT[2].spans).flat(), 'GET /exit/7 200'].sort();
    const spans = await recv.waitForSpans(want.length, 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    const got = recv.spans().map((s) => `${s.attributes['http.request.method']} ${s.attributes['url.path']} ${s.attributes['http.response.status_code']}`).sort();
    assert.deepEqual(got, want);
    assert.equal(spans.length >= want.length, true);
    // What made no span, by cause: the garbage, the binary head and the long
    // request line could not be read, so hyper's answers to them (400, 400,
    // 200) had no request to end; the two panicking handlers and the aborted
    // request never answered.
    assert.equal(h1.unparsable, 3, JSON.stringify(h1));
    assert.equal(h1.unmatchedResponses, 3, JSON.stringify(h1));
    assert.equal(h1.pending + h1.abandoned, 3, JSON.stringify(h1));
    assert.equal(h1.spans, want.length - 1, JSON.stringify(h1)); // all but /exit/7, which came after
    assert.equal(h1.requests, h1.spans + 3, JSON.stringify(h1));
    const remote = recv.spans().filter((s) => s.parentSpanId === '00f067aa0ba902b7');
    assert.equal(remote.length, 1, 'the valid traceparent made one child span; the malformed one a new trace');
  } finally {
    await agent.stop();
    await recv.close();
  }
});
