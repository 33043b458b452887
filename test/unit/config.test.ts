// Configuration from OpenTelemetry environment variables and flags (src/cli/config.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentConfig, buildConfig, parseKeyValueList } from '../../src/cli/config';
import { UserError } from '../../src/util/errors';

const DEFAULTS: AgentConfig = {
  targetExe: undefined,
  targetPid: undefined,
  serviceName: undefined,
  endpoint: undefined,
  protocol: 'grpc',
  headers: {},
  resourceAttributes: {},
  exporter: 'otlp',
  stdout: false,
  logLevel: 'info',
  durationSec: 0,
  statsFile: undefined,
};

/** Asserts buildConfig throws a UserError with exit code 2 and exactly `message`. */
function usageError(flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv, message: string): void {
  assert.throws(() => buildConfig(flags, env), (e: unknown) => {
    assert.ok(e instanceof UserError, `not a UserError: ${String(e)}`);
    assert.equal(e.exitCode, 2);
    assert.equal(e.message, message);
    return true;
  });
}

describe('buildConfig', () => {
  test('defaults with an empty environment', () => {
    assert.deepEqual(buildConfig({}, {}), DEFAULTS);
  });

  test('empty variables count as unset', () => {
    assert.deepEqual(buildConfig({}, {
      OTEL_TARGET_PID: '', OTEL_EXPORTER_OTLP_PROTOCOL: '', OTEL_TRACES_EXPORTER: '', OTEL_STDOUT: '', OTEL_LOG_LEVEL: '', OTEL_EXPORTER_OTLP_ENDPOINT: '',
    }), DEFAULTS);
  });

  test('environment only', () => {
    const c = buildConfig({}, {
      OTEL_TARGET_PID: '1234',
      OTEL_SERVICE_NAME: 'checkout',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=secret,x-tenant=acme',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,service.version=1.2.3',
      OTEL_TRACES_EXPORTER: 'console',
      OTEL_STDOUT: 'true',
      OTEL_LOG_LEVEL: 'debug',
      UNRELATED: 'x',
    });
    assert.deepEqual(c, {
      ...DEFAULTS,
      targetPid: 1234,
      serviceName: 'checkout',
      endpoint: 'http://collector:4318',
      protocol: 'http/protobuf',
      headers: { 'api-key': 'secret', 'x-tenant': 'acme' },
      resourceAttributes: { 'deployment.environment': 'prod', 'service.version': '1.2.3' },
      exporter: 'console',
      stdout: true,
      logLevel: 'debug',
    });
  });

  test('flags override their variables; variables without a flag still apply', () => {
    const env = {
      OTEL_TARGET_EXE: '/usr/bin/from-env',
      OTEL_SERVICE_NAME: 'env-name',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_STDOUT: 'true',
      OTEL_LOG_LEVEL: 'error',
      OTEL_RESOURCE_ATTRIBUTES: 'team=env',
    };
    const c = buildConfig({
      exe: './target/release/app',
      'service-name': 'flag-name',
      endpoint: 'https://flag:4318/',
      protocol: 'http/protobuf',
      exporter: 'NONE',
      stdout: false,
      'log-level': 'warning',
      duration: '2.5',
      'stats-file': '/tmp/stats.json',
    }, env);
    assert.deepEqual(c, {
      ...DEFAULTS,
      targetExe: './target/release/app',
      serviceName: 'flag-name',
      endpoint: 'https://flag:4318/',
      protocol: 'http/protobuf',
      exporter: 'none',
      stdout: false,
      logLevel: 'warn',
      durationSec: 2.5,
      statsFile: '/tmp/stats.json',
      resourceAttributes: { team: 'env' },
    });
  });

  test('a boolean --stdout flag turns stdout on over OTEL_STDOUT=false', () => {
    assert.equal(buildConfig({ stdout: true }, { OTEL_STDOUT: 'false' }).stdout, true);
    for (const [v, want] of [['1', true], ['YES', true], [' True ', true], ['0', false], ['no', false], ['FALSE', false]] as const)
      assert.equal(buildConfig({}, { OTEL_STDOUT: v }).stdout, want, v);
  });

  test('a --pid flag conflicts with OTEL_TARGET_EXE from the environment', () => {
    usageError({ pid: '5' }, { OTEL_TARGET_EXE: '/bin/app' },
      'give either a PID (OTEL_TARGET_PID / --pid) or an executable (OTEL_TARGET_EXE / --exe), not both');
  });

  test('log level aliases', () => {
    assert.equal(buildConfig({}, { OTEL_LOG_LEVEL: 'ALL' }).logLevel, 'verbose');
    assert.equal(buildConfig({}, { OTEL_LOG_LEVEL: 'none' }).logLevel, 'none');
    assert.equal(buildConfig({}, { OTEL_LOG_LEVEL: ' Warn ' }).logLevel, 'warn');
  });

  test('headers and resource attributes are percent-decoded, trimmed, and may contain "="', () => {
    const c = buildConfig({}, {
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc%3D%3D , x%2Dkey = a=b,,',
      OTEL_RESOURCE_ATTRIBUTES: 'service.namespace=shop%2Cwest,note=caf%C3%A9%20%25',
    });
    assert.deepEqual(c.headers, { Authorization: 'Bearer abc==', 'x-key': 'a=b' });
    assert.deepEqual(c.resourceAttributes, { 'service.namespace': 'shop,west', note: 'café %' });
  });

  test('pid accepts surrounding whitespace', () => {
    assert.equal(buildConfig({ pid: ' 77 ' }, {}).targetPid, 77);
  });
});

describe('invalid configuration is a UserError with exit code 2', () => {
  test('bad PID', () => {
    usageError({}, { OTEL_TARGET_PID: 'abc' }, 'invalid PID "abc"');
    usageError({ pid: '0' }, {}, 'invalid PID "0"');
    usageError({ pid: '-3' }, {}, 'invalid PID "-3"');
    usageError({ pid: '12abc' }, {}, 'invalid PID "12abc"');
    usageError({ pid: '1.5' }, {}, 'invalid PID "1.5"');
  });

  test('both PID and executable', () => {
    usageError({}, { OTEL_TARGET_PID: '10', OTEL_TARGET_EXE: '/bin/app' },
      'give either a PID (OTEL_TARGET_PID / --pid) or an executable (OTEL_TARGET_EXE / --exe), not both');
  });

  test('unsupported protocol', () => {
    usageError({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
      'OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" is not supported (use grpc or http/protobuf)');
  });

  test('unsupported exporter', () => {
    usageError({ exporter: 'zipkin' }, {}, 'OTEL_TRACES_EXPORTER: "zipkin" is not supported (use otlp, console or none)');
  });

  test('endpoint that is not a URL', () => {
    usageError({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, 'OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" is not a URL');
    usageError({ endpoint: '://host:4317' }, {}, 'OTEL_EXPORTER_OTLP_ENDPOINT: "://host:4317" is not a URL');
  });

  test('bad OTEL_STDOUT', () => {
    usageError({}, { OTEL_STDOUT: 'maybe' }, 'OTEL_STDOUT: expected true or false, got "maybe"');
  });

  test('bad log level', () => {
    usageError({}, { OTEL_LOG_LEVEL: 'loud' }, 'OTEL_LOG_LEVEL: "loud" is not a level (none, error, warn, info, debug, verbose)');
  });

  test('bad duration', () => {
    usageError({ duration: 'soon' }, {}, '--duration: "soon" is not a number of seconds');
    usageError({ duration: '-1' }, {}, '--duration: "-1" is not a number of seconds');
  });

  test('malformed key=value lists', () => {
    usageError({}, { OTEL_EXPORTER_OTLP_HEADERS: 'a=1,broken' }, 'OTEL_EXPORTER_OTLP_HEADERS: "broken" is not key=value');
    usageError({}, { OTEL_RESOURCE_ATTRIBUTES: '=v' }, 'OTEL_RESOURCE_ATTRIBUTES: "=v" is not key=value');
    usageError({}, { OTEL_RESOURCE_ATTRIBUTES: 'k=%zz' }, 'OTEL_RESOURCE_ATTRIBUTES: "k=%zz" has a bad percent-encoding');
  });
});

describe('parseKeyValueList', () => {
  test('empty and blank input give an empty record', () => {
    assert.deepEqual(parseKeyValueList(undefined, 'X'), {});
    assert.deepEqual(parseKeyValueList('  ', 'X'), {});
    assert.deepEqual(parseKeyValueList('k=', 'X'), { k: '' });
  });
});
