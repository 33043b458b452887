// Configuration from OpenTelemetry environment variables and flags (src/cli/config.ts).
import { recordFromAgentSpan as rec } from '../../src/spans/record';
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  AgentConfig, buildConfig, parseKeyValueList, exportSettings,
  MAX_DURATION_SEC, MAX_TIMEOUT_MS,
} from '../../src/cli/config';
import { UserError } from '../../src/util/errors';
import { createSpanExporter, type SpanSink } from '../../src/export';
import type { AgentSpan, ProcessResource } from '../../src/spans/types';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver';
import { testPki } from '../helpers/tls';

const DEFAULTS: AgentConfig = {
  targetExes: [],
  targetPid: undefined,
  discover: false,
  include: [],
  exclude: [],
  scanIntervalMs: 1000,
  metricsAddress: undefined,
  k8sApi: undefined,
  serviceName: undefined,
  endpoint: 'http://localhost:4317',
  protocol: 'grpc',
  headers: {},
  timeoutMs: 10_000,
  compression: 'none',
  tls: { ca: undefined, clientKey: undefined, clientCert: undefined, insecure: false },
  resourceAttributes: {},
  exporters: ['otlp'],
  stdout: false,
  logLevel: 'info',
  durationSec: 0,
  ringBytes: 16 << 20,
  statsFile: undefined,
  symbols: { symbolsFile: undefined, debugDirs: [], debuginfodUrls: [], debuginfodCache: path.join(os.homedir(), '.cache', 'debuginfod_client'), debuginfodTimeoutMs: 90_000 },
  semconvRpcDup: false,
  warnings: [],
};

type Flags = Record<string, string | boolean | undefined>;

/** Every OTLP export variable buildConfig reads. */
const OTLP_ENV = ['ENDPOINT', 'HEADERS', 'TIMEOUT', 'PROTOCOL', 'COMPRESSION', 'CERTIFICATE', 'CLIENT_KEY', 'CLIENT_CERTIFICATE', 'INSECURE']
  .flatMap((n) => [`OTEL_EXPORTER_OTLP_${n}`, `OTEL_EXPORTER_OTLP_TRACES_${n}`]);

/** Asserts buildConfig throws a UserError with exit code 2 and exactly `message`. */
function usageError(flags: Flags, env: NodeJS.ProcessEnv, message: string): void {
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

  test('OTEL_SEMCONV_STABILITY_OPT_IN: rpc/dup (with precedence over rpc) turns on the older RPC names', () => {
    for (const v of ['rpc/dup', 'http,rpc/dup', ' RPC/DUP ', 'rpc,rpc/dup']) assert.equal(buildConfig({}, { OTEL_SEMCONV_STABILITY_OPT_IN: v }).semconvRpcDup, true, v);
    for (const v of ['rpc', 'http/dup', '', 'rpc/duplicate', 'database']) assert.equal(buildConfig({}, { OTEL_SEMCONV_STABILITY_OPT_IN: v }).semconvRpcDup, false, v);
    assert.deepEqual(buildConfig({}, { OTEL_SEMCONV_STABILITY_OPT_IN: 'rpc,http' }).warnings, []);
  });

  test('OTLP relay addresses: flag or variable, PORT means 127.0.0.1; a bad one is a usage error', () => {
    assert.deepEqual(buildConfig({ 'otlp-relay-address': '4318' }, {}).relayAddress, { host: '127.0.0.1', port: 4318, text: '4318' });
    assert.deepEqual(buildConfig({}, { OTEL_RUST_AGENT_OTLP_RELAY_GRPC_ADDRESS: ':4317' }).relayGrpcAddress, { host: undefined, port: 4317, text: ':4317' });
    assert.equal(buildConfig({}, {}).relayAddress, undefined);
    usageError({ 'otlp-relay-address': 'nope' }, {}, '--otlp-relay-address: "nope" is not an address (PORT, HOST:PORT, [IPv6]:PORT or :PORT)');
  });

  test('empty variables count as unset', () => {
    const env: NodeJS.ProcessEnv = {
      OTEL_TARGET_PID: '', OTEL_TRACES_EXPORTER: '', OTEL_STDOUT: '', OTEL_LOG_LEVEL: '',
    };
    for (const n of OTLP_ENV) env[n] = '';
    assert.deepEqual(buildConfig({}, env), DEFAULTS);
  });

  test('environment only', () => {
    const c = buildConfig({}, {
      OTEL_TARGET_PID: '1234',
      OTEL_SERVICE_NAME: 'checkout',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=secret,x-tenant=acme',
      OTEL_EXPORTER_OTLP_TIMEOUT: '2500',
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
      endpoint: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      headers: { 'api-key': 'secret', 'x-tenant': 'acme' },
      timeoutMs: 2500,
      resourceAttributes: { 'deployment.environment': 'prod', 'service.version': '1.2.3' },
      exporters: ['console'],
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
      exe: ['./target/release/app'],
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
      targetExes: ['./target/release/app'],
      serviceName: 'flag-name',
      endpoint: 'https://flag:4318/v1/traces',
      protocol: 'http/protobuf',
      exporters: [],
      stdout: false,
      logLevel: 'warn',
      durationSec: 2.5,
      statsFile: '/tmp/stats.json',
      resourceAttributes: { team: 'env' },
    });
  });

  test('a boolean --stdout flag turns stdout on over OTEL_STDOUT=false', () => {
    assert.equal(buildConfig({ stdout: true }, { OTEL_STDOUT: 'false' }).stdout, true);
    for (const [v, want] of [['true', true], ['TRUE', true], [' True ', true], ['false', false], ['FALSE', false]] as const) {
      const c = buildConfig({}, { OTEL_STDOUT: v });
      assert.equal(c.stdout, want, v);
      assert.deepEqual(c.warnings, [], v);
    }
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

describe('export settings: flag > OTEL_EXPORTER_OTLP_TRACES_* > OTEL_EXPORTER_OTLP_* > default', () => {
  const ALL_ENV = {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://general:4318',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom/path',
    OTEL_EXPORTER_OTLP_HEADERS: 'b=2,shared=general',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'c=3,shared=traces',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2000',
  };

  test('the default endpoint follows the protocol', () => {
    assert.equal(buildConfig({}, {}).endpoint, 'http://localhost:4317');
    assert.equal(buildConfig({ protocol: 'http/protobuf' }, {}).endpoint, 'http://localhost:4318/v1/traces');
  });

  test('--endpoint wins over OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    const c = buildConfig({ endpoint: 'http://flag:4318' }, ALL_ENV);
    assert.equal(c.endpoint, 'http://flag:4318/v1/traces'); // a base URL, like OTEL_EXPORTER_OTLP_ENDPOINT
    assert.equal(buildConfig({ endpoint: 'http://flag:4317', protocol: 'grpc' }, ALL_ENV).endpoint, 'http://flag:4317');
    // The losing variables are not even validated.
    assert.equal(buildConfig({ endpoint: 'http://flag:4317' }, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }).endpoint,
      'http://flag:4317');
  });

  test('without a flag, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT wins over OTEL_EXPORTER_OTLP_ENDPOINT and is used as is', () => {
    assert.equal(buildConfig({}, ALL_ENV).endpoint, 'http://traces:4318/custom/path');
    assert.equal(buildConfig({ protocol: 'grpc' }, ALL_ENV).endpoint, 'http://traces:4318/custom/path');
  });

  test('OTEL_EXPORTER_OTLP_ENDPOINT is a base URL for http/protobuf and used as is for grpc', () => {
    assert.equal(buildConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/base/', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }).endpoint,
      'http://c:4318/base/v1/traces');
    assert.equal(buildConfig({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' }).endpoint, 'http://c:4317');
  });

  test('--headers replaces both header variables', () => {
    assert.deepEqual(buildConfig({ headers: 'a=1' }, ALL_ENV).headers, { a: '1' });
    assert.deepEqual(buildConfig({ headers: '' }, ALL_ENV).headers, {});
  });

  test('OTEL_EXPORTER_OTLP_TRACES_HEADERS is merged over OTEL_EXPORTER_OTLP_HEADERS, per header, names without case', () => {
    assert.deepEqual(buildConfig({}, ALL_ENV).headers, { b: '2', c: '3', shared: 'traces' });
    assert.deepEqual(buildConfig({}, { OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=general' , OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'authorization=traces' }).headers,
      { authorization: 'traces' });
    assert.deepEqual(buildConfig({}, { OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'only=traces' }).headers, { only: 'traces' });
  });

  test('protocol: --protocol > OTEL_EXPORTER_OTLP_TRACES_PROTOCOL > OTEL_EXPORTER_OTLP_PROTOCOL > grpc', () => {
    assert.equal(buildConfig({}, ALL_ENV).protocol, 'http/protobuf');
    assert.equal(buildConfig({ protocol: 'grpc' }, ALL_ENV).protocol, 'grpc');
    assert.equal(buildConfig({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'HTTP/Protobuf' }).protocol, 'http/protobuf');
  });

  test('timeout: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT > OTEL_EXPORTER_OTLP_TIMEOUT > 10 s; 0 is no limit', () => {
    assert.equal(buildConfig({}, ALL_ENV).timeoutMs, 2000);
    assert.equal(buildConfig({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '1000' }).timeoutMs, 1000);
    assert.equal(buildConfig({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '0' }).timeoutMs, MAX_TIMEOUT_MS);
    assert.equal(buildConfig({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '99999999999' }).timeoutMs, MAX_TIMEOUT_MS);
  });

  test('exportSettings hands the export stage final values only', () => {
    const c = buildConfig({}, { ...ALL_ENV, OTEL_TRACES_EXPORTER: 'otlp,console' });
    assert.deepEqual(exportSettings(c), {
      exporter: 'otlp',
      stdoutTree: true,
      protocol: 'http/protobuf',
      tracesEndpoint: 'http://traces:4318/custom/path',
      headers: { b: '2', c: '3', shared: 'traces' },
      timeoutMillis: 2000,
      compression: 'none',
      tls: { ca: undefined, clientKey: undefined, clientCert: undefined, insecure: false },
    });
    assert.deepEqual(
      [['otlp'], ['console'], [], ['otlp', 'console']].map((exporters) => {
        const s = exportSettings({ ...DEFAULTS, exporters: exporters as AgentConfig['exporters'] });
        return [s.exporter, s.stdoutTree];
      }),
      [['otlp', false], ['console', true], ['none', false], ['otlp', true]]);
    assert.equal(exportSettings({ ...DEFAULTS, exporters: [], stdout: true }).stdoutTree, true);
  });
});

describe('environment values the agent does not understand are warned about and ignored', () => {
  test('unknown protocol: the next source or the default applies', () => {
    const c = buildConfig({}, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    assert.equal(c.protocol, 'grpc');
    assert.deepEqual(c.warnings, ['OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" is not supported (use grpc or http/protobuf); ignored, using grpc']);
    const d = buildConfig({}, { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'thrift', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' });
    assert.equal(d.protocol, 'http/protobuf');
    assert.equal(d.endpoint, 'http://localhost:4318/v1/traces');
    assert.deepEqual(d.warnings, ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "thrift" is not supported (use grpc or http/protobuf); ignored, using http/protobuf']);
  });

  test('a flag wins without the variable being looked at', () => {
    assert.deepEqual(buildConfig({ protocol: 'grpc', 'log-level': 'info', exporter: 'otlp', stdout: true },
      { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_LOG_LEVEL: 'loud', OTEL_TRACES_EXPORTER: 'zipkin', OTEL_STDOUT: 'maybe' }).warnings, []);
  });

  test('unknown log level', () => {
    const c = buildConfig({}, { OTEL_LOG_LEVEL: 'loud' });
    assert.equal(c.logLevel, 'info');
    assert.deepEqual(c.warnings, ['OTEL_LOG_LEVEL: "loud" is not a level (none, error, warn, info, debug, verbose); ignored, using info']);
  });

  test('OTEL_STDOUT: only true and false, any case; anything else is false with a warning', () => {
    for (const v of ['maybe', '1', 'yes', 'on']) {
      const c = buildConfig({}, { OTEL_STDOUT: v });
      assert.equal(c.stdout, false, v);
      assert.deepEqual(c.warnings, [`OTEL_STDOUT: "${v}" is not a boolean (true or false); ignored, using false`]);
    }
  });

  test('bad timeout', () => {
    const c = buildConfig({}, { OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '-5', OTEL_EXPORTER_OTLP_TIMEOUT: '3000' });
    assert.equal(c.timeoutMs, 3000);
    assert.deepEqual(c.warnings, ['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "-5" is not a timeout (a whole number of milliseconds, 0 for none); ignored, using 3000 ms']);
    const d = buildConfig({}, { OTEL_EXPORTER_OTLP_TIMEOUT: '10s' });
    assert.equal(d.timeoutMs, 10_000);
    assert.equal(d.warnings.length, 1);
  });

  test('OTEL_TRACES_EXPORTER: comma-separated list', () => {
    const cases: [string, string[], string[]][] = [
      ['otlp,console', ['otlp', 'console'], []],
      [' Console , OTLP ,console', ['console', 'otlp'], []],
      ['none', [], []],
      ['otlp,zipkin', ['otlp'], ['OTEL_TRACES_EXPORTER: "zipkin" is not supported (use otlp, console or none, or a comma-separated list such as otlp,console); ignored']],
      ['zipkin', ['otlp'], [
        'OTEL_TRACES_EXPORTER: "zipkin" is not supported (use otlp, console or none, or a comma-separated list such as otlp,console); ignored',
        'OTEL_TRACES_EXPORTER: no usable exporter in "zipkin"; using otlp',
      ]],
      ['logging', ['otlp'], [
        'OTEL_TRACES_EXPORTER: "logging" is not supported (use otlp, console or none, or a comma-separated list such as otlp,console); ignored',
        'OTEL_TRACES_EXPORTER: no usable exporter in "logging"; using otlp',
      ]],
      ['none,console', ['console'], ['OTEL_TRACES_EXPORTER: "none" cannot be combined with other exporters; ignored']],
      [',', ['otlp'], ['OTEL_TRACES_EXPORTER: no usable exporter in ","; using otlp']],
    ];
    for (const [v, exporters, warnings] of cases) {
      const c = buildConfig({}, { OTEL_TRACES_EXPORTER: v });
      assert.deepEqual(c.exporters, exporters, v);
      assert.deepEqual(c.warnings, warnings, v);
    }
    assert.deepEqual(buildConfig({ exporter: 'otlp,console' }, {}).exporters, ['otlp', 'console']);
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

  test('bad flag values are strict', () => {
    usageError({ protocol: 'http/json' }, {}, '--protocol: "http/json" is not supported (use grpc or http/protobuf)');
    usageError({ 'log-level': 'loud' }, {}, '--log-level: "loud" is not a level (none, error, warn, info, debug, verbose)');
    usageError({ exporter: 'zipkin' }, {},
      '--exporter: "zipkin" is not supported (use otlp, console or none, or a comma-separated list such as otlp,console)');
    usageError({ exporter: 'otlp,none' }, {}, '--exporter: "none" cannot be combined with other exporters');
    usageError({ exporter: ' , ' }, {}, '--exporter: no exporter given (use otlp, console or none, or a comma-separated list such as otlp,console)');
  });

  test('endpoint that is not a URL, from whichever source wins', () => {
    usageError({}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, 'OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" is not a URL');
    usageError({}, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '//x', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ok:4317' },
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "//x" is not a URL');
    usageError({ endpoint: '://host:4317' }, {}, '--endpoint: "://host:4317" is not a URL');
  });

  test('bad duration', () => {
    usageError({ duration: 'soon' }, {}, '--duration: "soon" is not a number of seconds');
    usageError({ duration: '-1' }, {}, '--duration: "-1" is not a number of seconds');
    usageError({ duration: ' ' }, {}, '--duration: " " is not a number of seconds');
    usageError({ duration: '2147484' }, {}, '--duration: "2147484" is too long (at most 2073600 seconds, 24 days)');
    assert.equal(buildConfig({ duration: String(MAX_DURATION_SEC) }, {}).durationSec, 2_073_600);
    // Node timers cannot wait longer than 2^31 - 1 ms.
    assert.ok(MAX_DURATION_SEC * 1000 <= 2 ** 31 - 1);
  });

  test('malformed key=value lists', () => {
    usageError({}, { OTEL_EXPORTER_OTLP_HEADERS: 'a=1,broken' }, 'OTEL_EXPORTER_OTLP_HEADERS: "broken" is not key=value');
    usageError({}, { OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x' }, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x" is not key=value');
    usageError({ headers: 'y' }, {}, '--headers: "y" is not key=value');
    usageError({}, { OTEL_RESOURCE_ATTRIBUTES: '=v' }, 'OTEL_RESOURCE_ATTRIBUTES: "=v" is not key=value');
    usageError({}, { OTEL_RESOURCE_ATTRIBUTES: 'k=%zz' }, 'OTEL_RESOURCE_ATTRIBUTES: "k=%zz" has a bad percent-encoding');
    usageError({ 'resource-attributes': 'k' }, {}, '--resource-attributes: "k" is not key=value');
  });
});

describe('parseKeyValueList', () => {
  test('empty and blank input give an empty record', () => {
    assert.deepEqual(parseKeyValueList(undefined, 'X'), {});
    assert.deepEqual(parseKeyValueList('  ', 'X'), {});
    assert.deepEqual(parseKeyValueList('k=', 'X'), { k: '' });
  });

  test('k=v,k2=v2 with trimming and percent-decoding; later duplicates win', () => {
    assert.deepEqual(parseKeyValueList('api-key=secret,x-team = a%20b%2Cc ', 'X'), { 'api-key': 'secret', 'x-team': 'a b,c' });
    assert.deepEqual(parseKeyValueList('Authorization=Basic%20dXNlcjpwYXNz', 'X'), { Authorization: 'Basic dXNlcjpwYXNz' });
    assert.deepEqual(parseKeyValueList('a=1=2', 'X'), { a: '1=2' });
    assert.deepEqual(parseKeyValueList('', 'X'), {});
    assert.deepEqual(parseKeyValueList('k=1,k=2', 'X'), { k: '2' });
  });
});

// What reaches a collector, through the same steps as the CLI: buildConfig on
// process.env, createSpanExporter(exportSettings(cfg)).
describe('on the wire: the exporter sends what the config resolved, nothing from the environment', () => {
  const DEAD = 'http://127.0.0.1:9';
  const RES: ProcessResource = { pid: 4242, attributes: { 'service.name': 'cfg-test', 'process.pid': 4242 } };
  const span = (i: number): AgentSpan => ({
    traceId: (i + 1).toString(16).padStart(32, '0'), spanId: (i + 1).toString(16).padStart(16, '0'), traceFlags: 1,
    name: `span-${i}`, kind: 'SERVER', startTimeUnixNano: 1_700_000_000_000_000_000n, endTimeUnixNano: 1_700_000_000_001_000_000n,
    attributes: {}, status: { code: 'UNSET' }, pid: 4242, scope: 'otel-rust-agent/test',
  });

  let receiver: OtlpReceiver | undefined;
  const sinks: SpanSink[] = [];
  after(async () => {
    await Promise.all(sinks.map((s) => s.shutdown()));
    await receiver?.close();
  });
  const rx = async (): Promise<OtlpReceiver> => (receiver ??= await startOtlpReceiver());

  /** Runs `fn` with `vars` set in process.env, restoring it afterwards. */
  async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
    const saved = new Map<string, string | undefined>();
    for (const k of [...OTLP_ENV, ...Object.keys(vars)]) saved.set(k, process.env[k]);
    for (const k of OTLP_ENV) delete process.env[k];
    Object.assign(process.env, vars);
    try {
      return await fn();
    } finally {
      for (const [k, v] of saved) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  }

  /** One span through the CLI's steps; the headers the receiver saw with it. */
  async function send(flags: Flags, vars: Record<string, string>, n: number): Promise<Record<string, string>> {
    const r = await rx();
    return withEnv(vars, async () => {
      const cfg = buildConfig(flags, process.env);
      const sink = createSpanExporter({ ...exportSettings(cfg), retryInitialMs: 50, shutdownTimeoutMs: 500 });
      sinks.push(sink);
      r.clear();
      sink.submit(rec(span(n)), RES);
      await sink.flush();
      const got = await r.waitForSpans(1, 10_000);
      assert.equal(got[0].name, `span-${n}`);
      return r.lastHeaders();
    });
  }

  for (const protocol of ['grpc', 'http/protobuf'] as const) {
    const base = async () => { const r = await rx(); return protocol === 'grpc' ? r.grpcEndpoint : r.httpEndpoint; };

    test(`${protocol}: --headers only; the header variables are not sent`, async () => {
      const h = await send({ protocol, endpoint: await base(), headers: 'a=1' },
        { OTEL_EXPORTER_OTLP_HEADERS: 'b=2', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'c=3' }, 1);
      assert.equal(h['a'], '1');
      assert.equal(h['b'], undefined);
      assert.equal(h['c'], undefined);
    });

    test(`${protocol}: --endpoint wins over OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, async () => {
      await send({ protocol, endpoint: await base() },
        { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: DEAD, OTEL_EXPORTER_OTLP_ENDPOINT: DEAD }, 2);
    });

    test(`${protocol}: without flags, TRACES_ENDPOINT wins over ENDPOINT, TRACES_HEADERS merge over HEADERS`, async () => {
      const url = protocol === 'grpc' ? await base() : `${await base()}/v1/traces`;
      const h = await send({ protocol },
        {
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: url, OTEL_EXPORTER_OTLP_ENDPOINT: DEAD,
          OTEL_EXPORTER_OTLP_HEADERS: 'b=2,shared=general', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'c=3,shared=traces',
        }, 3);
      assert.equal(h['b'], '2');
      assert.equal(h['c'], '3');
      assert.equal(h['shared'], 'traces');
    });
  }

  test('the export stage reads no variable: --headers replaces OTEL_EXPORTER_OTLP_HEADERS left in the environment', async () => {
    const r = await rx();
    const h = await send({ protocol: 'http/protobuf', endpoint: r.httpEndpoint, headers: 'a=1' },
      { OTEL_EXPORTER_OTLP_HEADERS: 'b=2' }, 4);
    assert.equal(h['a'], '1');
    assert.equal(h['b'], undefined);
  });
});

describe('compression and TLS settings', () => {
  test('compression: traces variable over general, flag over both; unknown values warned about', () => {
    assert.equal(buildConfig({}, { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }).compression, 'gzip');
    assert.equal(buildConfig({}, { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' }).compression, 'none');
    assert.equal(buildConfig({ compression: 'gzip' }, { OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' }).compression, 'gzip');
    const c = buildConfig({}, { OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' });
    assert.equal(c.compression, 'none');
    assert.deepEqual(c.warnings, ['OTEL_EXPORTER_OTLP_COMPRESSION: "zstd" is not supported (use gzip or none); ignored, using none']);
    usageError({ compression: 'brotli' }, {}, '--compression: "brotli" is not supported (use gzip or none)');
  });

  test('certificate files are read at start; a bad path or a non-PEM file is one clear error', () => {
    const pki = testPki();
    const c = buildConfig({}, {
      OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent.pem',
      OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: pki.files.ca,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.files.clientKey,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: pki.files.clientCert,
      OTEL_EXPORTER_OTLP_INSECURE: 'true',
    });
    assert.deepEqual(c.tls, { ca: pki.caPem, clientKey: pki.clientKey, clientCert: pki.clientCert, insecure: true });
    usageError({}, { OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent.pem' }, 'OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read "/nonexistent.pem" (ENOENT)');
    usageError({}, { OTEL_EXPORTER_OTLP_CERTIFICATE: '/etc/hostname' }, 'OTEL_EXPORTER_OTLP_CERTIFICATE: "/etc/hostname" is not a PEM file');
    usageError({}, { OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.files.clientKey },
      'OTEL_EXPORTER_OTLP_CLIENT_KEY and OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE go together: give both or neither');
    assert.deepEqual(buildConfig({}, { OTEL_EXPORTER_OTLP_INSECURE: 'yes' }).warnings,
      ['OTEL_EXPORTER_OTLP_INSECURE: "yes" is not a boolean (true or false); ignored, using false']);
  });
});
