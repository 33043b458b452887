// End to end: HTTP/2 CLIENT spans of reqwest 0.11, whose HTTP/2 is h2 0.3
// (hyper 0.14's client), over h2c (prior knowledge) and TLS with ALPN h2. The
// fixture is reqwest12-client's source in a cargo workspace of its own
// (apps/standalone/reqwest11-h2-client), built here: in the apps workspace,
// feature unification links h2 0.4 beside 0.3, and with two h2 versions the
// h2 client module is refused (their send_headers share a name). The same
// assertions as the reqwest 0.12 test (h2-client.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { repoRoot } from '../helpers/rustbuild';
import { runAgentSync } from '../helpers/procs';
import { h2ClientSuite } from '../helpers/h2-client-suite';

function fixture(): string {
  const dir = path.join(repoRoot(), 'apps', 'standalone', 'reqwest11-h2-client');
  execFileSync('cargo', ['build', '--release', '--locked', '-q'], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
  return path.join(dir, 'target', 'release', 'reqwest11-h2-client');
}

test('inspect: the h2 client module is active for h2 0.3, the only h2 linked', () => {
  const r = runAgentSync(['inspect', fixture()]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ {10}h2 0\.3\.\d+$/m);
  assert.match(r.stdout, /^ {2}h2-client: active \(h2 0\.3\.\d+\)/m);
  for (const p of ['client_send_headers', 'client_recv_headers', 'client_recv_trailers']) assert.match(r.stdout, new RegExp(`\\[found\\] ${p} `));
});

h2ClientSuite('reqwest 0.11 (h2 0.3)', fixture);
