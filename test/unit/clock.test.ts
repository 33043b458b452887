import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { WallClock, measureClockOffset } from '../../src/util/clock';

const MS = 1_000_000n;

test('offset agrees with Date.now() within 2 ms and is tight', () => {
  const c = new WallClock();
  const d = BigInt(Date.now()) * MS;
  const viaClock = c.toUnixNano(process.hrtime.bigint());
  const diff = viaClock > d ? viaClock - d : d - viaClock;
  assert.ok(diff < 2n * MS, `clock vs Date.now() differ by ${diff} ns`);
  assert.ok(c.uncertaintyNs < MS, `uncertainty ${c.uncertaintyNs} ns`);
  assert.ok(c.uncertaintyNs >= 0n);
  // Sanity: the offset is "now since the epoch" minus "now since boot".
  assert.ok(c.offsetNs > 1_600_000_000_000n * MS);
});

test('converted hrtime values land between Date.now() readings taken before and after', () => {
  const c = new WallClock();
  const slack = c.uncertaintyNs; // the offset is only known to +-uncertainty
  for (let i = 0; i < 2000; i++) {
    const before = BigInt(Date.now()) * MS;
    const wall = c.toUnixNano(process.hrtime.bigint());
    const after = (BigInt(Date.now()) + 1n) * MS; // Date.now() floors to the ms
    assert.ok(wall >= before - slack, `#${i}: ${wall} < ${before} - ${slack}`);
    assert.ok(wall < after + slack, `#${i}: ${wall} >= ${after} + ${slack}`);
  }
});

test('measurement catches a millisecond edge and bounds the offset to well under 1 ms', () => {
  const ms = [];
  for (let i = 0; i < 20; i++) ms.push(measureClockOffset());
  const best = ms.reduce((a, b) => (b.uncertaintyNs < a.uncertaintyNs ? b : a));
  // On an idle machine this is a few hundred ns; allow for a loaded CI box.
  assert.ok(best.uncertaintyNs < 50_000n, `best uncertainty ${best.uncertaintyNs} ns`);
  // Busy-waits about 1 ms (at most 3 ms, unless the thread is preempted).
  const took = ms.map((m) => m.tookNs).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.ok(took[10] < 5n * MS, `median measurement took ${took[10]} ns`);
  for (const m of ms) {
    const d = m.offsetNs - best.offsetNs;
    const spread = d < 0n ? -d : d;
    // All measurements agree within their error bounds (plus slew over ~20 ms).
    assert.ok(spread <= m.uncertaintyNs + best.uncertaintyNs + 10_000n, `spread ${spread} ns`);
  }
});

test('start()/stop() re-measure periodically without keeping the process alive', async () => {
  const c = new WallClock();
  const first = c.measuredAtMonoNs;
  c.start(20);
  await new Promise((r) => setTimeout(r, 90));
  assert.ok(c.measuredAtMonoNs > first, 'remeasured');
  c.stop();
  const last = c.measuredAtMonoNs;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(c.measuredAtMonoNs, last, 'stopped');
});

test('nowUnixNano() tracks Date.now()', () => {
  const c = new WallClock();
  const a = BigInt(Date.now()) * MS;
  const n = c.nowUnixNano();
  const b = (BigInt(Date.now()) + 1n) * MS;
  assert.ok(n >= a - c.uncertaintyNs && n < b + c.uncertaintyNs);
});
