// tokio spawns: span inheritance from a task to the tasks it spawns.
import type { Library } from '../library';
import { tokioSpawnModule } from './probes';
import { TOKIO_SPAWN_LAYOUTS } from './layouts';
import { TokioSpawnSpans } from './spans';

export const tokioSpawnLibrary: Library = {
  name: tokioSpawnModule.name,
  module: tokioSpawnModule,
  layouts: TOKIO_SPAWN_LAYOUTS,
  createSpans: (_out, ctx) => new TokioSpawnSpans(ctx),
};
