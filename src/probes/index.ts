// Every probe module the agent knows. Order does not matter.
import type { ProbeModule } from './types';
import { hyperH1Server } from './hyper-h1-server';

export const PROBE_MODULES: ProbeModule[] = [hyperH1Server];
export type { ProbeModule, ProbeSpec } from './types';
