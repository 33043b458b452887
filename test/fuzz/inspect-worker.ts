// Runs `inspect` in this process on mutated copies of a binary, one after the
// other, and reports each result as one JSON line on stdout, so the parent
// (inspect-fuzz.ts) can kill it when one case takes too long and go on.
// Usage: node inspect-worker.js BINARY SEED FIRST COUNT [CASES.json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inspect } from '../../src/cli/inspect';
import { UserError } from '../../src/util/errors';
import { regionsOf, mutation, writeMutated, Mutation } from './mutate';

const [bin, seedS, firstS, countS, casesFile] = process.argv.slice(2);
const original = fs.readFileSync(bin);
const regions = regionsOf(original);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inspect-fuzz-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'target');
const cases: Mutation[] | undefined = casesFile ? JSON.parse(fs.readFileSync(casesFile, 'utf8')) : undefined;
const first = Number(firstS);
const count = cases ? cases.length : Number(countS);

async function main(): Promise<void> {
for (let i = first; i < first + count; i++) {
  const m = cases ? cases[i - first] : mutation(original, regions, Number(seedS), i);
  process.stdout.write(JSON.stringify({ i, start: true, m }) + '\n');
  writeMutated(original, m, file);
  const t0 = Date.now();
  let result: { code: number; error?: string; internal?: boolean; lines?: number };
  try {
    result = { code: await inspect(file, false, () => undefined) };
  } catch (e) {
    if (e instanceof UserError) result = { code: e.exitCode, error: e.message, lines: e.message.split('\n').length };
    else result = { code: 1, internal: true, error: `${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack ?? ''}` };
  }
  process.stdout.write(JSON.stringify({ i, ms: Date.now() - t0, ...result }) + '\n');
}
}

void main();
