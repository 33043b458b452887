// make fuzz: a fixed budget of deterministic mutation fuzzing over the readers
// that take untrusted bytes (see inputs.ts and mutate.ts), then `inspect` on
// mutated copies of a real Rust binary. New failures are appended to
// test/fuzz/corpus/found-*.json (replayed by make test) and the run fails.
//   FUZZ_SEED (default 1), FUZZ_SCALE (multiplies every budget, default 1),
//   FUZZ_INSPECT_RUNS (default 10000)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../src/util/paths';
import { ElfFile } from '../../src/binary/elf';
import { mutateHead, checkHead, checkTraceparent, checkRedaction, mutateSymbol, checkDemangle } from './inputs';
import { prng } from './mutate';
import { fuzzInspect } from './inspect-fuzz';

const corpus = path.join(repoRoot(), 'test', 'fuzz', 'corpus');
const seed = Number(process.env.FUZZ_SEED ?? 1);
const scale = Number(process.env.FUZZ_SCALE ?? 1);
const read = (f: string) => JSON.parse(fs.readFileSync(path.join(corpus, f), 'utf8'));
let failed = 0;

function save(file: string, cases: unknown[]): void {
  if (!cases.length) return;
  const have: unknown[] = read(file);
  const keys = new Set(have.map((c) => JSON.stringify(c)));
  for (const c of cases) if (!keys.has(JSON.stringify(c))) have.push(c);
  fs.writeFileSync(path.join(corpus, file), JSON.stringify(have, null, 1) + '\n');
  failed += cases.length;
}

function phase<T>(name: string, runs: number, gen: (i: number) => T, check: (x: T) => string | undefined, file: string): void {
  const t0 = Date.now();
  const found: { input: T; why: string }[] = [];
  for (let i = 0; i < runs; i++) {
    const x = gen(i);
    let why: string | undefined;
    try { why = check(x); } catch (e) { why = `threw ${(e as Error)?.name}: ${(e as Error)?.message}`; }
    if (why && found.length < 50) found.push({ input: x, why });
  }
  console.log(`${name}: ${runs} inputs in ${((Date.now() - t0) / 1000).toFixed(1)} s, ${found.length} failure(s)`);
  for (const f of found.slice(0, 5)) console.log(`  ${JSON.stringify(f.input).slice(0, 160)}: ${f.why.slice(0, 200)}`);
  save(file, found.map((f) => f.input));
}

async function main(): Promise<void> {
  const heads: string[] = read('heads.json');
  phase('request heads (scanner vs reference)', 200_000 * scale, (i) => mutateHead(heads, seed, i), (h) => checkHead(h.text, h.truncated), 'found-heads.json');
  const tps: string[] = read('traceparents.json');
  phase('traceparent (bytes vs string decoder)', 200_000 * scale, (i) => mutateHead(tps, seed + 1, i).text, checkTraceparent, 'found-traceparents.json');
  const r = prng(seed);
  phase('query redaction', 100_000 * scale, () => mutateHead(['a=1&sig=2&Signature=3', 'AWSAccessKeyId=x&X-Goog-Signature=y'], seed, Math.floor(r() * 1e9)).text, checkRedaction, 'found-heads.json');
  const bin = path.join(repoRoot(), 'apps', 'target', 'release', 'fault-server');
  const names = ElfFile.open(bin).symbols().map((s) => s.name).filter((n) => n.startsWith('_ZN') || n.startsWith('_R'));
  phase('Rust demangling (mutated real symbols)', 200_000 * scale, (i) => mutateSymbol(names, seed, i), checkDemangle, 'found-symbols.json');

  const runs = Number(process.env.FUZZ_INSPECT_RUNS ?? 10_000) * scale;
  const t0 = Date.now();
  const res = await fuzzInspect({ binary: bin, seed, runs, onProgress: (n) => { if (n % 1000 === 0) console.log(`  inspect: ${n}/${runs}`); } });
  console.log(`inspect on mutated copies of ${path.basename(bin)}: ${res.runs} runs in ${((Date.now() - t0) / 1000).toFixed(0)} s, ` +
    `exit codes ${JSON.stringify(res.codes)}, slowest ${res.maxMs} ms, ${res.failures.length} failure(s)`);
  for (const f of res.failures.slice(0, 5)) console.log(`  case ${f.i}: ${f.why.split('\n')[0].slice(0, 200)}`);
  save('found-inspect.json', res.failures.map((f) => f.m));
  if (failed) { console.log(`${failed} new failure(s) saved under ${corpus}`); process.exitCode = 1; }
}

void main();
