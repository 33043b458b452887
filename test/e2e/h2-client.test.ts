// End to end: HTTP/2 CLIENT spans (h2-client) of reqwest 0.12 over h2c
// (prior knowledge) and over TLS with ALPN h2, calling local Node http2
// servers; the cases are in ../helpers/h2-client-suite.ts (shared with the
// reqwest 0.11 / h2 0.3 test), plus a stream the server resets.
import { serviceBinary } from '../helpers/procs';
import { h2ClientSuite } from '../helpers/h2-client-suite';

h2ClientSuite('reqwest 0.12', () => serviceBinary('reqwest12-client'), true);
