// rustls servers: TLS connections give url.scheme https on their spans.
import type { Library } from '../library';
import { rustlsServer } from './probes';
import { RUSTLS_SERVER_LAYOUTS } from './layouts';
import { RustlsServerSpans } from './spans';

export const rustlsServerLibrary: Library = {
  name: rustlsServer.name,
  module: rustlsServer,
  layouts: RUSTLS_SERVER_LAYOUTS,
  createSpans: (_out, ctx) => new RustlsServerSpans(ctx),
};
