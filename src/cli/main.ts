// otel-rust-agent command line. Every failure the user can act on ends as one
// line on stderr and a meaningful exit code (src/util/errors.ts); stack traces
// appear only for internal errors, and only with OTEL_LOG_LEVEL=debug.
import { parseArgs } from 'node:util';
import { buildConfig, exportSettings, FLAG_ENV, MAX_DURATION_SEC } from './config';
import { UserError, EXIT } from '../util/errors';
import { log, setLogLevel, parseLogLevel } from '../util/log';
import { agentVersion } from '../util/paths';

const HELP = `otel-rust-agent: zero-code OpenTelemetry tracing for Rust services, with eBPF uprobes

Usage:
  otel-rust-agent [run] --pid PID | --exe PATH... | --discover [--include SEL]... [--exclude SEL]... [options]
  otel-rust-agent inspect <EXECUTABLE | PID> [--json] [--symbols FILE] [--debug-dir DIR]
  otel-rust-agent ctx --pid PID [--json]
  otel-rust-agent --help | --version

Commands:
  run       attach to the target and export spans (the default command)
  inspect   show what the agent finds in a binary (rustc, crates, probes and why
            each is found or not) without attaching; with the PID of a process
            a running agent traces, also that agent's live probe counters
  ctx       print the OpenTelemetry process context (OTEP 4719) and each
            thread's context record (OTEP 4947) of a running process, read
            from outside it (libotelctx publishes them)

Options (each mirrors an environment variable; the flag wins over it):
  --pid PID                    OTEL_TARGET_PID              trace this process
  --exe PATH                   OTEL_TARGET_EXE              trace every process of this executable,
                                                            including ones started later; repeat
                                                            the flag (or give a comma-separated
                                                            list in the variable) for several
  --discover                   OTEL_RUST_AGENT_DISCOVER=true
                                                            trace every process on the host (and
                                                            in its containers) whose executable
                                                            links a supported library, now and later
  --include SELECTOR           OTEL_RUST_AGENT_DISCOVER_INCLUDE
                                                            discover only processes matching one of
                                                            these selectors (repeat; ";" between
                                                            them in the variable). A selector is
                                                            key=value[,key=value]: all must match.
                                                            Keys: exe (path glob, ** crosses /),
                                                            name, cgroup, container.id (prefix),
                                                            service.name, k8s.namespace, k8s.pod,
                                                            k8s.container, k8s.label.<key>
  --exclude SELECTOR           OTEL_RUST_AGENT_DISCOVER_EXCLUDE
                                                            never trace processes matching these
  --k8s-api off|in-cluster|URL OTEL_RUST_AGENT_K8S_API      pod metadata (names, labels) from the
                                                            API server: pods of this node
                                                            (OTEL_RUST_AGENT_K8S_NODE_NAME, default
                                                            the host name); default off
  --metrics-address ADDR       OTEL_RUST_AGENT_METRICS_ADDRESS
                                                            serve Prometheus /metrics, /healthz and
                                                            /readyz: PORT (127.0.0.1 only),
                                                            HOST:PORT, or :PORT (every interface);
                                                            default off
  --otlp-relay-address ADDR    OTEL_RUST_AGENT_OTLP_RELAY_ADDRESS
                                                            be the application's OTLP/HTTP endpoint
                                                            (POST /v1/traces): its SDK's spans join
                                                            the agent's traces and are exported with
                                                            them. PORT (127.0.0.1), HOST:PORT, :PORT
  --otlp-relay-grpc-address ADDR
                               OTEL_RUST_AGENT_OTLP_RELAY_GRPC_ADDRESS
                                                            the same over OTLP/gRPC
  --service-name NAME          OTEL_SERVICE_NAME            names the --pid / --exe targets; default:
                                                            the process's own OTEL_SERVICE_NAME,
                                                            else the executable's name
  --endpoint URL               OTEL_EXPORTER_OTLP_ENDPOINT  default http://localhost:4317 (grpc),
                                                            http://localhost:4318 (http/protobuf,
                                                            which appends /v1/traces)
  --protocol P                 OTEL_EXPORTER_OTLP_PROTOCOL  grpc (default) or http/protobuf
  --headers K=V,...            OTEL_EXPORTER_OTLP_HEADERS   export headers (the flag replaces both
                                                            header variables)
  --resource-attributes K=V,.. OTEL_RESOURCE_ATTRIBUTES     extra resource attributes
  --exporter E[,E]             OTEL_TRACES_EXPORTER         otlp (default), console, otlp,console
                                                            or none
  --stdout                     OTEL_STDOUT=true             print each trace as a tree on stdout
  --compression C              OTEL_EXPORTER_OTLP_COMPRESSION  gzip or none (default)
  --log-level L                OTEL_LOG_LEVEL               none, error, warn, info (default), debug
  --duration SECONDS           stop after this long, at most ${MAX_DURATION_SEC} (24 days)
                               (default: until Ctrl-C or the target exits)
  --stats-file PATH            where live probe counters are written
                               (default /run/otel-rust-agent/<agent pid>.json)
  --ring-size BYTES            OTEL_RUST_AGENT_RING_BYTES   the BPF ring buffer events go through:
                                                            a power of two, a multiple of 4096;
                                                            K, M, G suffixes (default 16M)
  --symbols FILE               OTEL_RUST_AGENT_SYMBOLS      symbols of a stripped target: an unstripped
                                                            build of it (same build id or identical
                                                            loaded segments)
  --debug-dir DIR[:DIR]        OTEL_RUST_AGENT_DEBUG_DIR    debug-file roots (DIR/.build-id/xx/yyyy.debug,
                                                            .gnu_debuglink), before /usr/lib/debug

Also read: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (full URL, used as is),
OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_TRACES_HEADERS (merged
over OTEL_EXPORTER_OTLP_HEADERS), OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT (ms,
default 10000, 0 = no limit), OTEL_EXPORTER_OTLP_TRACES_COMPRESSION, and for
TLS OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE
(PEM files) and _INSECURE (gRPC without a scheme: plaintext); DEBUGINFOD_URLS
(servers asked for the debug file of a stripped target, cached in
DEBUGINFOD_CACHE_PATH or ~/.cache/debuginfod_client). Order: flag, then OTEL_EXPORTER_OTLP_TRACES_*,
then OTEL_EXPORTER_OTLP_*, then the default. A bad flag value is an error; an
unknown protocol, exporter, log level, timeout or boolean in a variable is one
warning and is ignored. OTEL_RUST_AGENT_SCAN_INTERVAL (ms, default 1000): how
often /proc is scanned for new processes. The span queue: OTEL_BSP_MAX_QUEUE_SIZE
(default 65536 spans), OTEL_BSP_MAX_EXPORT_BATCH_SIZE (2048), OTEL_BSP_SCHEDULE_DELAY
(ms, 500).

Exit codes: 0 ok, 1 internal error, 2 bad usage or configuration, 3 target not
usable (missing, not ELF, not Rust, stripped, nothing to instrument),
4 missing privileges, 5 kernel lacks a needed feature.
Needs root (or CAP_SYS_ADMIN, CAP_BPF, CAP_PERFMON) and Linux >= 5.15 with BTF.
`;

export async function main(argv: string[]): Promise<number> {
  const envLevel = parseLogLevel(process.env.OTEL_LOG_LEVEL);
  if (envLevel) setLogLevel(envLevel);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        pid: { type: 'string' }, exe: { type: 'string', multiple: true }, 'service-name': { type: 'string' },
        discover: { type: 'boolean' }, include: { type: 'string', multiple: true }, exclude: { type: 'string', multiple: true },
        'metrics-address': { type: 'string' }, 'k8s-api': { type: 'string' },
        'otlp-relay-address': { type: 'string' }, 'otlp-relay-grpc-address': { type: 'string' },
        endpoint: { type: 'string' }, protocol: { type: 'string' }, headers: { type: 'string' },
        'resource-attributes': { type: 'string' }, exporter: { type: 'string' }, stdout: { type: 'boolean' },
        'log-level': { type: 'string' }, compression: { type: 'string' }, duration: { type: 'string' }, 'stats-file': { type: 'string' }, 'ring-size': { type: 'string' },
        symbols: { type: 'string' }, 'debug-dir': { type: 'string' },
        json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (e) {
    throw new UserError(`${(e as Error).message.split('\n')[0]} (see --help)`, EXIT.USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) { process.stdout.write(HELP); return EXIT.OK; }
  if (values.version) { process.stdout.write(`otel-rust-agent ${agentVersion()}\n`); return EXIT.OK; }

  const [cmd = 'run', ...rest] = positionals;
  if (cmd === 'inspect') {
    const { inspect, requireInspectTarget } = await import('./inspect');
    const target = requireInspectTarget(rest[0] ?? (values.pid as string | undefined) ?? (values.exe as string[] | undefined)?.[0]);
    const { symbolOptions } = await import('./config');
    const warnings: string[] = [];
    const symbols = symbolOptions(values as Record<string, string | boolean | undefined>, process.env, warnings);
    for (const w of warnings) log.warn(w);
    return inspect(target, Boolean(values.json), (s) => process.stdout.write(s + '\n'), symbols);
  }
  if (cmd === 'ctx') {
    const { ctxCommand } = await import('./ctx');
    return ctxCommand((values.pid as string | undefined) ?? rest[0], Boolean(values.json), (s) => process.stdout.write(s + '\n'));
  }
  if (cmd !== 'run') throw new UserError(`unknown command "${cmd}" (see --help)`, EXIT.USAGE);
  if (rest.length) throw new UserError(`unexpected argument "${rest[0]}" (see --help)`, EXIT.USAGE);

  const cfg = buildConfig(values as Record<string, string | boolean | undefined>, process.env);
  setLogLevel(cfg.logLevel);
  for (const w of cfg.warnings) log.warn(w);
  if (cfg.targetPid === undefined && cfg.targetExes.length === 0 && !cfg.discover)
    throw new UserError(`no target: give --pid PID, --exe PATH or --discover (or ${FLAG_ENV.pid} / ${FLAG_ENV.exe} / ${FLAG_ENV.discover}); see --help`, EXIT.USAGE);

  const { Agent } = await import('../agent/agent');
  const { createSpanExporter } = await import('../export/exporter');
  if (cfg.exporters.includes('otlp')) log.debug(`exporting spans to ${cfg.endpoint} (${cfg.protocol}, timeout ${cfg.timeoutMs} ms)`);
  let sink;
  if (cfg.relayAddress || cfg.relayGrpcAddress) {
    const { startRelay } = await import('../export/relay');
    sink = await startRelay(cfg, exportSettings(cfg));
  } else sink = createSpanExporter(exportSettings(cfg));
  const agent = new Agent(cfg, sink);
  const onSignal = (sig: string) => void agent.stop(`received ${sig}`);
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  // stdout closed under us (`... --stdout | head`): stop cleanly, detaching
  // every probe, instead of dying on EPIPE.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => void agent.stop(`stdout closed (${e.code ?? e.message})`));
  // Anything unexpected: one line, then the same clean stop (probes detached,
  // spans flushed, stats file removed).
  const onFatal = (e: unknown) => {
    process.stderr.write(`otel-rust-agent: internal error: ${(e as Error)?.message ?? String(e)}\n`);
    if (log.enabled('debug') && (e as Error)?.stack) process.stderr.write(`${(e as Error).stack}\n`);
    process.exitCode = EXIT.FAILURE;
    void agent.stop('internal error').finally(() => process.exit(EXIT.FAILURE));
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  try {
    return await agent.run();
  } catch (e) {
    await agent.stop('start-up failed').catch(() => undefined);
    throw e;
  }
}

export function runCli(): void {
  main(process.argv.slice(2)).then(
    // Exit now: the agent has flushed and released everything it owns, but the
    // official HTTP exporter can keep a retry timer alive for seconds more.
    (code) => { process.stdout.write('', () => process.exit(code)); },
    (e: unknown) => {
      if (e instanceof UserError) {
        process.stderr.write(`otel-rust-agent: ${e.message}\n`);
        process.exitCode = e.exitCode;
      } else {
        const err = e as Error;
        process.stderr.write(`otel-rust-agent: internal error: ${err?.message ?? String(e)}\n`);
        if (log.enabled('debug') && err?.stack) process.stderr.write(err.stack + '\n');
        process.exitCode = EXIT.FAILURE;
      }
    },
  );
}
