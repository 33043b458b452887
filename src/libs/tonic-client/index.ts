// tonic gRPC clients: the caller's side of a call (its task, hence its parent); h2-client makes the span.
import type { Library } from '../library';
import { tonicClient } from './probes';
import { TONIC_CLIENT_LAYOUTS } from './layouts';
import { TonicClientSpans } from './spans';

export const tonicClientLibrary: Library = {
  name: tonicClient.name,
  module: tonicClient,
  layouts: TONIC_CLIENT_LAYOUTS,
  createSpans: (out, ctx, settings) => new TonicClientSpans(ctx, out, settings),
};
