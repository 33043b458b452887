// The uprobe_multi feature probe asks the kernel (needs root, like make test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { kernelHasUprobeMulti, chooseAttachMode } from '../../src/bpf/loader';

test('the uprobe_multi probe agrees with what this kernel version has', () => {
  const [maj, min] = os.release().split('.').map((x) => parseInt(x, 10));
  const expected = maj > 6 || (maj === 6 && min >= 6); // uprobe_multi landed in 6.6
  assert.equal(kernelHasUprobeMulti(), expected);
});

test('OTEL_RUST_AGENT_ATTACH forces the attach mode', () => {
  const saved = process.env.OTEL_RUST_AGENT_ATTACH;
  try {
    process.env.OTEL_RUST_AGENT_ATTACH = 'perf';
    assert.equal(chooseAttachMode(), 'perf');
    process.env.OTEL_RUST_AGENT_ATTACH = 'multi';
    assert.equal(chooseAttachMode(), 'multi');
  } finally {
    if (saved === undefined) delete process.env.OTEL_RUST_AGENT_ATTACH; else process.env.OTEL_RUST_AGENT_ATTACH = saved;
  }
});
