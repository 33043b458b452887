// Drives inspect-worker.ts over a range of mutations (or saved cases) and
// collects failures: an internal error (anything but a one-line UserError
// with a meaningful exit code), a message over one line, or a case that takes
// longer than the time limit (the worker is killed and restarted after it).
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Mutation } from './mutate';

export interface Failure { i: number; why: string; m: Mutation }
export interface FuzzResult { runs: number; failures: Failure[]; codes: Record<string, number>; maxMs: number; totalMs: number }

const WORKER = path.join(__dirname, 'inspect-worker.js');

export async function fuzzInspect(o: { binary: string; seed: number; first?: number; runs: number; casesFile?: string; limitMs?: number; onProgress?: (done: number) => void }): Promise<FuzzResult> {
  const limit = o.limitMs ?? 5000;
  const res: FuzzResult = { runs: 0, failures: [], codes: {}, maxMs: 0, totalMs: 0 };
  let next = o.first ?? 0;
  const end = next + o.runs;
  while (next < end) {
    await new Promise<void>((resolve) => {
      const args = [WORKER, o.binary, String(o.seed), String(next), String(end - next), ...(o.casesFile ? [o.casesFile] : [])];
      const w = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let buf = '';
      let current: { i: number; m: Mutation } | undefined;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => { if (timer) clearTimeout(timer); timer = setTimeout(() => w.kill('SIGKILL'), limit + 2000); };
      arm();
      w.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = JSON.parse(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
          if (line.start) { current = { i: line.i, m: line.m }; arm(); continue; }
          res.runs++;
          res.totalMs += line.ms;
          res.maxMs = Math.max(res.maxMs, line.ms);
          res.codes[line.code] = (res.codes[line.code] ?? 0) + 1;
          const why = line.internal ? `internal error: ${line.error}` : line.lines > 1 ? `message of ${line.lines} lines: ${line.error}`
            : line.ms > limit ? `took ${line.ms} ms` : line.code === 1 ? `exit code 1: ${line.error}` : undefined;
          if (why) res.failures.push({ i: line.i, why, m: current!.m });
          next = line.i + 1;
          current = undefined;
          o.onProgress?.(res.runs);
        }
      });
      w.stderr.on('data', () => undefined);
      w.on('exit', () => {
        if (timer) clearTimeout(timer);
        if (current) { // killed: this case hung (or crashed the process)
          res.runs++;
          res.failures.push({ i: current.i, why: `no answer within ${limit + 2000} ms (hang or crash)`, m: current.m });
          next = current.i + 1;
        } else if (next < end && res.runs === 0) next = end; // the worker cannot start at all
        resolve();
      });
    });
  }
  return res;
}
