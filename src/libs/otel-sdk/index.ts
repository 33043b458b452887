// The OpenTelemetry Rust SDK used by the application itself: manual spans,
// put into the agent's traces by the OTLP relay (src/export/relay).
import type { Library } from '../library';
import { otelSdkModule } from './probes';
import { OTEL_SDK_LAYOUTS } from './layouts';
import { OtelSdkSpans } from './spans';

export const otelSdkLibrary: Library = {
  name: otelSdkModule.name,
  module: otelSdkModule,
  layouts: OTEL_SDK_LAYOUTS,
  createSpans: (out, ctx) => new OtelSdkSpans(out, ctx),
};
