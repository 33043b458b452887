// `inspect` on mutated copies of a real Rust binary (test/fuzz/mutate.ts aims
// at the ELF header, program and section tables, symbols, strings, notes,
// .comment, .eh_frame and code): never an internal error or a stack trace,
// always a one-line message and exit code 0 or 3, never more than 5 s. The
// cases `make fuzz` found are replayed first. make fuzz runs 10000.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../src/util/paths';
import { serviceBinary } from '../helpers/procs';
import { fuzzInspect } from '../fuzz/inspect-fuzz';
import { mutateSymbol, checkDemangle } from '../fuzz/inputs';
import { ElfFile } from '../../src/binary/elf';

const corpus = path.join(repoRoot(), 'test', 'fuzz', 'corpus');

test('inspect: every mutated binary fuzzing found, then 150 fresh ones', async () => {
  const bin = serviceBinary('fault-server');
  const found = path.join(corpus, 'found-inspect.json');
  const n = JSON.parse(fs.readFileSync(found, 'utf8')).length;
  assert.ok(n >= 4);
  const replay = await fuzzInspect({ binary: bin, seed: 0, runs: n, casesFile: found });
  assert.deepEqual(replay.failures.map((f) => f.why), []);
  assert.equal(replay.runs, n);
  const fresh = await fuzzInspect({ binary: bin, seed: 3, runs: 150 });
  assert.deepEqual(fresh.failures.map((f) => `${f.i}: ${f.why.split('\n')[0]}`), []);
  assert.equal(fresh.runs, 150);
  assert.deepEqual(Object.keys(fresh.codes).filter((c) => c !== '0' && c !== '3'), []);
  assert.ok(fresh.maxMs < 5000);
});

test('demangling: 50000 mutations of the binary\'s own symbol names', () => {
  const names = ElfFile.open(serviceBinary('fault-server')).symbols().map((s) => s.name).filter((x) => x.startsWith('_ZN') || x.startsWith('_R'));
  assert.ok(names.length > 1000);
  for (let i = 0; i < 50_000; i++) {
    const s = mutateSymbol(names, 4, i);
    assert.equal(checkDemangle(s), undefined, s);
  }
});
