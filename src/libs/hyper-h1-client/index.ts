// hyper's HTTP/1 client (hyper 0.14 and 1.x): one CLIENT span per request on the wire.
import type { Library } from '../library';
import { hyperH1Client } from './probes';
import { H1_CLIENT_LAYOUTS } from './layouts';
import { HyperH1ClientSpans } from './spans';

export const hyperH1ClientLibrary: Library = {
  name: hyperH1Client.name,
  module: hyperH1Client,
  layouts: H1_CLIENT_LAYOUTS,
  createSpans: (out, ctx) => new HyperH1ClientSpans(out, hyperH1Client.scope, ctx),
};
