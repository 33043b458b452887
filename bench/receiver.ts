// The benches' OTLP/gRPC trace receiver, as a child process of its own so it
// can run on another CPU than the service under test (a real collector runs
// elsewhere) and its CPU is never counted as the agent's.
//
// It answers Export and counts spans by walking the protobuf wire format
// (ExportTraceServiceRequest.resource_spans=1 -> ResourceSpans.scope_spans=2
// -> ScopeSpans.spans=2) without decoding them. The first request after each
// "session" command is fully decoded as a check.
//
//   node dist/bench/receiver.js      prints "listening <port>", then reads commands on stdin:
//     stats      -> one JSON line {spans, requests, bad, sample}
//     session    -> the next request is decoded into `sample`
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';
import * as path from 'node:path';
import { decodeExportRequest } from '../test/helpers/otlp-receiver';

function lengthDelimitedFields(buf: Uint8Array, want: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (p >= buf.length) throw new Error('truncated varint');
      const b = buf[p++];
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (p < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    switch (key & 7) {
      case 0: varint(); break;
      case 1: p += 8; break;
      case 5: p += 4; break;
      case 2: {
        const n = varint();
        if (p + n > buf.length) throw new Error('truncated field');
        if (field === want) out.push(buf.subarray(p, p + n));
        p += n;
        break;
      }
      default: throw new Error(`unsupported wire type ${key & 7}`);
    }
  }
  return out;
}

export function countSpans(body: Uint8Array): number {
  let n = 0;
  for (const rs of lengthDelimitedFields(body, 1))
    for (const ss of lengthDelimitedFields(rs, 2)) n += lengthDelimitedFields(ss, 2).length;
  return n;
}

export interface ReceiverStats {
  spans: number;
  requests: number;
  bad: number;
  /** Decoded first span of the current session. */
  sample: { name: string; kind: number; route: string } | null;
}

async function serve(): Promise<void> {
  const id = (b: Buffer) => b;
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20 });
  const st: ReceiverStats = { spans: 0, requests: 0, bad: 0, sample: null };
  let sampleNext = true;
  server.addService({
    Export: {
      path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      requestStream: false, responseStream: false,
      requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id,
    },
  }, {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      st.requests++;
      try {
        st.spans += countSpans(call.request);
        if (sampleNext) {
          const s = decodeExportRequest(call.request, 'grpc', 0)[0];
          if (s) {
            st.sample = { name: s.name, kind: s.kind, route: String(s.attributes['http.route'] ?? s.attributes['url.path'] ?? '') };
            sampleNext = false;
          }
        }
        cb(null, Buffer.alloc(0));
      } catch (e) {
        st.bad++;
        cb({ code: grpc.status.INVALID_ARGUMENT, details: (e as Error).message });
      }
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  process.stdout.write(`listening ${port}\n`);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (l) => {
    const cmd = l.trim();
    if (cmd === 'stats') process.stdout.write(JSON.stringify(st) + '\n');
    else if (cmd === 'session') { st.sample = null; sampleNext = true; process.stdout.write('ok\n'); }
  });
  rl.on('close', () => { server.forceShutdown(); process.exit(0); });
}

/** A receiver in a child process, optionally pinned to `cpus` (taskset). */
export class ReceiverProcess {
  endpoint = '';
  private proc!: ChildProcess;
  private lines: string[] = [];
  private waiters: ((l: string) => void)[] = [];

  static async start(cpus?: string): Promise<ReceiverProcess> {
    const r = new ReceiverProcess();
    const script = path.join(__dirname, 'receiver.js');
    r.proc = cpus !== undefined
      ? spawn('taskset', ['-c', cpus, process.execPath, script], { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    process.on('exit', () => r.proc.kill('SIGKILL'));
    readline.createInterface({ input: r.proc.stdout! }).on('line', (l) => {
      const w = r.waiters.shift();
      if (w) w(l); else r.lines.push(l);
    });
    const first = await r.next();
    const m = /^listening (\d+)$/.exec(first);
    if (!m) throw new Error(`receiver: unexpected "${first}"`);
    r.endpoint = `http://127.0.0.1:${m[1]}`;
    return r;
  }

  get pid(): number { return this.proc.pid!; }

  private next(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async stats(): Promise<ReceiverStats> {
    this.proc.stdin!.write('stats\n');
    return JSON.parse(await this.next()) as ReceiverStats;
  }

  async newSession(): Promise<void> {
    this.proc.stdin!.write('session\n');
    await this.next();
  }

  close(): void {
    this.proc.stdin!.end();
  }
}

if (require.main === module) void serve();
