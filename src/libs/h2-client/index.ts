// h2's HTTP/2 client (h2 0.3, 0.4): one CLIENT span per stream; gRPC calls (tonic) shaped by the RPC conventions.
import type { Library } from '../library';
import { h2Client } from './probes';
import { H2_CLIENT_LAYOUTS } from './layouts';
import { H2ClientSpans } from './spans';

export const h2ClientLibrary: Library = {
  name: h2Client.name,
  module: h2Client,
  layouts: H2_CLIENT_LAYOUTS,
  createSpans: (out, ctx, settings) => new H2ClientSpans(out, h2Client.scope, ctx, settings),
};
