// tonic servers: gRPC spans (the RPC conventions) on h2-server's streams.
import type { Library } from '../library';
import { tonicServer } from './probes';
import { TONIC_SERVER_LAYOUTS } from './layouts';
import { TonicServerSpans } from './spans';

export const tonicServerLibrary: Library = {
  name: tonicServer.name,
  module: tonicServer,
  layouts: TONIC_SERVER_LAYOUTS,
  createSpans: (_out, ctx, settings) => new TonicServerSpans(ctx, settings),
};
