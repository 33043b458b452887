// A small HTTP/1.1 load generator for the fault tests: keep-alive connections,
// one request in flight on each, every response read and checked. It counts
// exactly what was sent and what came back, which the loss and kill tests
// compare with the agent's counters.
import * as net from 'node:net';

export interface LoadResult {
  /** Requests written to a socket. */
  sent: number;
  /** Complete responses, by status. */
  statuses: Record<number, number>;
  ok: number;
  /** Connection errors, resets, or responses that did not parse. */
  errors: string[];
  /** Requests written whose response never came (connection failed). */
  unanswered: number;
}

export interface LoadOptions {
  port: number;
  connections: number;
  /** Stop after this many requests in all (each connection stops at its share). */
  total?: number;
  /** Or: run until stop() / this many ms. */
  durationMs?: number;
  /** Requests per second over all connections (default: as fast as it goes). */
  rate?: number;
  /** The request line's target; i = the request's number. */
  path?: (i: number) => string;
  extraHeaders?: string;
}

export interface Load {
  done: Promise<LoadResult>;
  /** Stops after the requests in flight are answered. */
  stop(): void;
  /** Counts so far. */
  now(): LoadResult;
}

export function startLoad(o: LoadOptions): Load {
  const res: LoadResult = { sent: 0, statuses: {}, ok: 0, errors: [], unanswered: 0 };
  let stopping = false;
  let next = 0;
  const t0 = Date.now();
  const interval = o.rate ? (1000 * o.connections) / o.rate : 0;
  const conns: Promise<void>[] = [];
  let timer: NodeJS.Timeout | undefined;
  if (o.durationMs) timer = setTimeout(() => { stopping = true; }, o.durationMs);

  const one = () => new Promise<void>((resolve) => {
    const sock = net.connect(o.port, '127.0.0.1');
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let inFlight = false;
    let lastSend = 0;
    const finish = () => { if (inFlight) { res.unanswered++; inFlight = false; } sock.destroy(); resolve(); };
    const send = () => {
      if (stopping || (o.total !== undefined && next >= o.total)) { sock.end(); resolve(); return; }
      const wait = interval ? lastSend + interval - Date.now() : 0;
      if (wait > 0) { setTimeout(send, wait); return; }
      lastSend = Date.now();
      const i = next++;
      inFlight = true;
      res.sent++;
      sock.write(`GET ${o.path ? o.path(i) : `/?n=${i}`} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\n${o.extraHeaders ?? ''}\r\n`);
    };
    sock.on('connect', send);
    sock.on('data', (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 'x');
        if (!m || !Number.isFinite(len)) { res.errors.push(`bad response head: ${JSON.stringify(head.slice(0, 80))}`); finish(); return; }
        if (buf.length < end + 4 + len) return;
        buf = buf.subarray(end + 4 + len);
        const st = Number(m[1]);
        res.statuses[st] = (res.statuses[st] ?? 0) + 1;
        if (st < 500) res.ok++;
        inFlight = false;
        send();
      }
    });
    sock.on('error', (e) => { res.errors.push(e.message); finish(); });
    sock.on('close', () => finish());
  });
  for (let c = 0; c < o.connections; c++) conns.push(one());
  const done = Promise.all(conns).then(() => { if (timer) clearTimeout(timer); void t0; return res; });
  return { done, stop: () => { stopping = true; }, now: () => ({ ...res, statuses: { ...res.statuses }, errors: [...res.errors] }) };
}
