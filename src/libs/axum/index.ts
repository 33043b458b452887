// axum 0.7 / 0.8: the matched route on the server span being handled.
import type { Library } from '../library';
import { axumModule } from './probes';
import { AXUM_LAYOUTS } from './layouts';
import { AxumSpans } from './spans';

export const axumLibrary: Library = {
  name: axumModule.name,
  module: axumModule,
  layouts: AXUM_LAYOUTS,
  createSpans: (_out, ctx) => new AxumSpans(ctx),
};
