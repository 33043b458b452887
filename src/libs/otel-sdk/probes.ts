// The OpenTelemetry Rust SDK (opentelemetry_sdk 0.2x-0.3x): where the
// application's own tracer builds a span. See README.md and probes.bpf.c.
//
// Hits per manual span: 1 (a child span, or a root under AlwaysOn), 2 for a
// root span under the default ParentBased(AlwaysOn) sampler (the delegate is
// the same function), both on a function entry (emulated push).
import type { ProbeModule } from '../../plan/module';
import { locateOtelCurrentContext } from './context';

export const otelSdkModule: ProbeModule = {
  name: 'otel-sdk',
  scope: 'otel-rust-agent/otel-sdk',
  bpfObject: 'otel-sdk.bpf.o',
  crate: { crate: 'opentelemetry_sdk', min: '0.20.0', below: '1.0.0', mustBeFound: true },
  // The API crate's current span, read by hyper-h1-client's reqwest call
  // probe (./current.h): the agent's CLIENT spans become children of the
  // manual span they were made in.
  locateFacts: (binary) => {
    const r = locateOtelCurrentContext(binary);
    return r.ok ? { ok: true, facts: { otelCx: r.location }, detail: r.detail } : r;
  },
  probes: [
    {
      id: 'should_sample',
      symbol: '<opentelemetry_sdk::trace::sampler::Sampler as opentelemetry_sdk::trace::sampler::ShouldSample>::should_sample',
      site: 'entry',
      program: 'otel_sdk_should_sample',
      required: true,
      purpose: 'a manual span is being built: its trace id (argument registers), thread and task',
    },
    {
      // The newer ParentBasedSampler type (a provider configured with it
      // instead of the Sampler enum): same signature, same registers.
      id: 'should_sample_pb',
      symbol: '<opentelemetry_sdk::trace::sampler::ParentBasedSampler as opentelemetry_sdk::trace::sampler::ShouldSample>::should_sample',
      site: 'entry',
      program: 'otel_sdk_should_sample',
      purpose: 'the same, for a provider configured with ParentBasedSampler',
    },
  ],
};
