// HTTP/2 requests for the end-to-end tests, with Node's http2 module: one
// session (one TCP or TLS connection) carries any number of streams, so
// tests control concurrency, header reuse (HPACK) and stream resets exactly.
import * as http2 from 'node:http2';

export interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders;
}

export function connectH2(url: string, opts: http2.SecureClientSessionOptions = {}): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(url, { peerMaxConcurrentStreams: 1000, ...opts });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** One request on `session`; resolves when the stream ends. */
export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let res: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { res = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => resolve({ status: Number(res[':status'] ?? 0), headers: res, body: Buffer.concat(chunks).toString(), trailers }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

/** Starts a request and resets the stream (RST_STREAM CANCEL) after `ms`; resolves when the reset is sent. */
export function h2RequestThenCancel(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const req = session.request(headers);
    req.on('error', () => { /* the cancel itself */ });
    req.on('response', () => { /* too late: the test asks for a slow handler */ });
    setTimeout(() => { req.close(http2.constants.NGHTTP2_CANCEL, () => resolve()); }, ms);
  });
}

export function closeH2(session: http2.ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => session.close(() => resolve()));
}
