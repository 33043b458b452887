// axum (0.7, 0.8): http.route and the span name "METHOD route" on the server
// span of the request being routed (HTTP/1 through hyper-h1-server, HTTP/2
// through h2-server).
//
// Why this function (README.md here; the notes' rust-probe-points.md §2):
// set_matched_path_for_request is axum's one non-generic function on the
// routing path; it receives the RouteId that matched and the router's
// route_id_to_path map, whose strings are the templates (/users/{id}).
// Everything else on that path is generic over the app's state and handlers.
// One hit per routing level (one for a flat or nested Router; two through a
// nest_service), on its first instruction, a push.
import type { ProbeModule } from '../../plan/module';
import { routeConfig } from './offsets';

export const axumModule: ProbeModule = {
  name: 'axum',
  scope: 'otel-rust-agent/axum',
  bpfObject: 'axum.bpf.o',
  crate: { crate: 'axum', min: '0.7.0', below: '0.9.0' },
  probes: [
    {
      id: 'matched_path',
      symbol: 'axum::extract::matched_path::set_matched_path_for_request',
      site: 'entry',
      program: 'axum_matched_path',
      config: routeConfig,
      required: true,
      purpose: 'the route that matched (RouteId and the router\'s template map): http.route',
    },
  ],
};
