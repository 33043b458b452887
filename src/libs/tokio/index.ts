// tokio: no probes (yet); it locates the current task id in each binary's
// TLS, which every other library's events carry (see context.ts).
import type { Library } from '../library';
import type { ProbeModule } from '../../plan/module';
import { locateCurrentTaskId } from './context';

export const tokioModule: ProbeModule = {
  name: 'tokio',
  scope: 'otel-rust-agent/tokio',
  crate: { crate: 'tokio', min: '1.23.0', below: '2.0.0' },
  probes: [],
  binaryContext: locateCurrentTaskId,
};

export const tokioLibrary: Library = {
  name: tokioModule.name,
  module: tokioModule,
  layouts: { structs: {}, constants: {}, kinds: {} },
};
