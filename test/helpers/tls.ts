// Throw-away TLS material for tests, made with openssl: a CA, a server
// certificate for 127.0.0.1 and localhost signed by it, and a client
// certificate for mutual TLS.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestPki {
  dir: string;
  caPem: Buffer;
  serverKey: Buffer;
  serverCert: Buffer;
  clientKey: Buffer;
  clientCert: Buffer;
  /** File paths of the same, for the agent's OTEL_EXPORTER_OTLP_* variables. */
  files: { ca: string; serverKey: string; serverCert: string; clientKey: string; clientCert: string };
}

let cached: TestPki | undefined;

export function testPki(): TestPki {
  if (cached) return cached;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'test-pki-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const f = (n: string) => path.join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=otel-rust-agent test CA');
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  fs.writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    ossl('req', ...ec, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who === 'server' ? '127.0.0.1' : 'otel-rust-agent'}`);
    ossl('x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-out', f(`${who}.pem`), '-days', '2', '-extfile', f(`${who}.ext`));
  }
  const files = { ca: f('ca.pem'), serverKey: f('server.key'), serverCert: f('server.pem'), clientKey: f('client.key'), clientCert: f('client.pem') };
  cached = {
    dir,
    caPem: fs.readFileSync(files.ca),
    serverKey: fs.readFileSync(files.serverKey),
    serverCert: fs.readFileSync(files.serverCert),
    clientKey: fs.readFileSync(files.clientKey),
    clientCert: fs.readFileSync(files.clientCert),
    files,
  };
  return cached;
}
