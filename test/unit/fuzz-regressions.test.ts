// What `make fuzz` found, replayed, and a short run of the same fuzzers
// (test/fuzz/): the request-head scanner agrees with the reference parser and
// stays inside its input, the traceparent decoders agree, the redactor keeps
// every parameter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../../src/util/paths';
import { mutateHead, checkHead, checkTraceparent, checkRedaction } from '../fuzz/inputs';

const corpus = path.join(repoRoot(), 'test', 'fuzz', 'corpus');
const read = <T>(f: string): T => JSON.parse(fs.readFileSync(path.join(corpus, f), 'utf8'));

test('request heads: the seed corpus and every case fuzzing found', () => {
  const seeds = read<string[]>('heads.json');
  for (const h of seeds) for (const t of [false, true]) assert.equal(checkHead(h, t), undefined, JSON.stringify(h));
  const found = read<{ text: string; truncated: boolean }[]>('found-heads.json');
  assert.ok(found.length >= 2);
  for (const h of found) assert.equal(checkHead(h.text, h.truncated), undefined, JSON.stringify(h));
});

test('request heads: 20000 fresh mutations', () => {
  const seeds = read<string[]>('heads.json');
  for (let i = 0; i < 20_000; i++) {
    const h = mutateHead(seeds, 9, i);
    assert.equal(checkHead(h.text, h.truncated), undefined, JSON.stringify(h));
  }
});

test('traceparent and query redaction: found cases and 20000 fresh mutations each', () => {
  const tps = read<string[]>('traceparents.json');
  for (const v of [...tps, ...read<string[]>('found-traceparents.json')]) assert.equal(checkTraceparent(v), undefined, v);
  for (let i = 0; i < 20_000; i++) {
    const v = mutateHead(tps, 10, i).text;
    assert.equal(checkTraceparent(v), undefined, JSON.stringify(v));
    const q = mutateHead(['a=1&sig=2&Signature=3', 'AWSAccessKeyId=x&X-Goog-Signature=y'], 11, i).text;
    assert.equal(checkRedaction(q), undefined, JSON.stringify(q));
  }
});
