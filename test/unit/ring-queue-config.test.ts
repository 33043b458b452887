// The ring buffer's size (--ring-size / OTEL_RUST_AGENT_RING_BYTES) and the
// span queue (OTEL_BSP_*): the settings the loss tests turn down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, exportSettings, DEFAULT_RING_BYTES } from '../../src/cli/config';
import { UserError } from '../../src/util/errors';

function usageError(flags: Record<string, string>, env: NodeJS.ProcessEnv, message: string): void {
  assert.throws(() => buildConfig(flags, env), (e: unknown) => {
    assert.ok(e instanceof UserError, String(e));
    assert.equal(e.exitCode, 2);
    assert.equal(e.message, message);
    return true;
  });
}

test('ring size: default 16 MiB; bytes or K/M/G from the flag or the variable, the flag winning', () => {
  assert.equal(DEFAULT_RING_BYTES, 16 << 20);
  assert.equal(buildConfig({}, {}).ringBytes, 16 << 20);
  assert.equal(buildConfig({ 'ring-size': '4096' }, {}).ringBytes, 4096);
  assert.equal(buildConfig({ 'ring-size': '64K' }, {}).ringBytes, 65536);
  assert.equal(buildConfig({ 'ring-size': '2m' }, {}).ringBytes, 2 << 20);
  assert.equal(buildConfig({ 'ring-size': '1GiB' }, {}).ringBytes, 1 << 30);
  assert.equal(buildConfig({}, { OTEL_RUST_AGENT_RING_BYTES: '8K' }).ringBytes, 8192);
  assert.equal(buildConfig({ 'ring-size': '16K' }, { OTEL_RUST_AGENT_RING_BYTES: '8K' }).ringBytes, 16384);
  assert.equal(buildConfig({}, { OTEL_RUST_AGENT_RING_BYTES: '' }).ringBytes, 16 << 20);
});

test('ring size: anything the kernel would refuse is one usage error, from either source', () => {
  usageError({ 'ring-size': '12K' }, {}, '--ring-size: "12K" is not a power of two (4K, 8K, ... 16M, ...)');
  usageError({ 'ring-size': '1000' }, {}, '--ring-size: "1000" is not a multiple of the page size (4096 bytes)');
  usageError({ 'ring-size': '2048' }, {}, '--ring-size: "2048" is not a multiple of the page size (4096 bytes)');
  usageError({ 'ring-size': '0' }, {}, '--ring-size: "0" is not a multiple of the page size (4096 bytes)');
  usageError({ 'ring-size': '2G' }, {}, '--ring-size: "2G" is too large (at most 1G)');
  usageError({ 'ring-size': 'big' }, {}, '--ring-size: "big" is not a size (bytes, or a number with K, M or G)');
  usageError({ 'ring-size': '-4096' }, {}, '--ring-size: "-4096" is not a size (bytes, or a number with K, M or G)');
  usageError({}, { OTEL_RUST_AGENT_RING_BYTES: '6000' }, 'OTEL_RUST_AGENT_RING_BYTES: "6000" is not a multiple of the page size (4096 bytes)');
});

test('span queue: OTEL_BSP_* reach the exporter; bad values are warned about and ignored', () => {
  const dflt = exportSettings(buildConfig({}, {}));
  assert.equal(dflt.maxQueueSpans, undefined);
  assert.equal(dflt.batchSize, undefined);
  assert.equal(dflt.flushIntervalMs, undefined);
  const cfg = buildConfig({}, { OTEL_BSP_MAX_QUEUE_SIZE: '512', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '64', OTEL_BSP_SCHEDULE_DELAY: '100' });
  const ex = exportSettings(cfg);
  assert.deepEqual([ex.maxQueueSpans, ex.batchSize, ex.flushIntervalMs], [512, 64, 100]);
  assert.deepEqual(cfg.warnings, []);
  const bad = buildConfig({}, { OTEL_BSP_MAX_QUEUE_SIZE: 'lots', OTEL_BSP_SCHEDULE_DELAY: '0' });
  assert.equal(exportSettings(bad).maxQueueSpans, undefined);
  assert.deepEqual(bad.warnings, [
    'OTEL_BSP_MAX_QUEUE_SIZE: "lots" is not a whole number of at least 1; ignored, using the default',
    'OTEL_BSP_SCHEDULE_DELAY: "0" is not a whole number of at least 1; ignored, using the default',
  ]);
  const big = buildConfig({}, { OTEL_BSP_MAX_QUEUE_SIZE: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '500' });
  assert.equal(exportSettings(big).batchSize, 100);
  assert.deepEqual(big.warnings, ['OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "500" is larger than OTEL_BSP_MAX_QUEUE_SIZE; using 100']);
});
