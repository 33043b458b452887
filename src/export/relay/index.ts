// The OTLP relay, assembled for an agent run: two export queues (the agent's
// spans, the application's spans) to the configured collector, and the
// listeners. See relay.ts.
import type { AgentConfig } from '../../cli/config';
import { OtlpSpanSink, type ExportConfig, type SpanSink } from '../exporter';
import { agentVersion } from '../../util/paths';
import { UserError, EXIT } from '../../util/errors';
import { log } from '../../util/log';
import { OtlpRelay } from './relay';
import { RelayGrpcServer, RelayHttpServer } from './server';

export { OtlpRelay } from './relay';
export { RelayHttpServer, RelayGrpcServer } from './server';

export async function startRelay(cfg: AgentConfig, settings: ExportConfig): Promise<SpanSink> {
  if (settings.exporter !== 'otlp')
    throw new UserError('--otlp-relay-address: the relay forwards to the OTLP exporter; it needs OTEL_TRACES_EXPORTER=otlp (the default)', EXIT.USAGE);
  if (settings.stdoutTree) log.warn('the stdout trace tree is not printed while the OTLP relay runs');
  const relay = new OtlpRelay(new OtlpSpanSink(settings), new OtlpSpanSink(settings), { agentVersion: settings.agentVersion ?? agentVersion() });
  const listeners: { close(): Promise<void> }[] = [];
  try {
    if (cfg.relayAddress) {
      const srv = new RelayHttpServer(relay, cfg.relayAddress);
      relay.port = await srv.start();
      listeners.push(srv);
      log.info(`OTLP relay: OTLP/HTTP on ${cfg.relayAddress.host ?? '*'}:${relay.port} (POST /v1/traces)`);
    }
    if (cfg.relayGrpcAddress) {
      const srv = new RelayGrpcServer(relay, cfg.relayGrpcAddress);
      const port = await srv.start();
      listeners.push(srv);
      log.info(`OTLP relay: OTLP/gRPC on ${cfg.relayGrpcAddress.host ?? '*'}:${port}`);
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    await relay.shutdown();
    throw e;
  }
  relay.listeners = listeners;
  return relay;
}
