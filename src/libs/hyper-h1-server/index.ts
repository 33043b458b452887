// hyper's HTTP/1 server (hyper 0.14 and 1.x): one SERVER span per request.
import type { Library } from '../library';
import { hyperH1Server } from './probes';
import { H1_SERVER_LAYOUTS } from './layouts';
import { HyperH1ServerSpans } from './spans';

export const hyperH1ServerLibrary: Library = {
  name: hyperH1Server.name,
  module: hyperH1Server,
  layouts: H1_SERVER_LAYOUTS,
  createSpans: (out, ctx) => new HyperH1ServerSpans(out, hyperH1Server.scope, ctx),
};
