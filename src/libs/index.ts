// Every library the agent instruments. Adding one is a folder under src/libs/
// and one line here; order does not matter, except that probe ids follow it.
import type { Library } from './library';
import type { ProbeModule } from '../plan/module';
import { hyperH1ServerLibrary } from './hyper-h1-server';
import { tokioLibrary } from './tokio';
import { h2ServerLibrary } from './h2-server';
import { axumLibrary } from './axum';
import { rustlsServerLibrary } from './rustls-server';
import { tonicServerLibrary } from './tonic-server';
import { hyperH1ClientLibrary } from './hyper-h1-client';
import { h2ClientLibrary } from './h2-client';
import { tonicClientLibrary } from './tonic-client';
import { otelSdkLibrary } from './otel-sdk';

export const LIBRARIES: Library[] = [hyperH1ServerLibrary, tokioLibrary, h2ServerLibrary, axumLibrary, rustlsServerLibrary, tonicServerLibrary, hyperH1ClientLibrary, h2ClientLibrary, tonicClientLibrary, otelSdkLibrary];

/** The probe modules of LIBRARIES, one array for the whole run (probe ids are assigned over it). */
export const PROBE_MODULES: ProbeModule[] = LIBRARIES.map((l) => l.module);

export type { Library, SpanBuilder, SpanOutput, SpanSettings, EventLayouts } from './library';
