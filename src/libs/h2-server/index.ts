// h2's HTTP/2 server (h2 0.3 and 0.4): one SERVER span per stream.
import type { Library } from '../library';
import { h2Server } from './probes';
import { H2_SERVER_LAYOUTS } from './layouts';
import { H2ServerSpans } from './spans';

export const h2ServerLibrary: Library = {
  name: h2Server.name,
  module: h2Server,
  layouts: H2_SERVER_LAYOUTS,
  createSpans: (out, ctx) => new H2ServerSpans(out, h2Server.scope, ctx),
};
