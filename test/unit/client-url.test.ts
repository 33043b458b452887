// url.full rules of the client spans (src/libs/hyper-h1-client/url.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { safeUrl, redactQuery, resolveLocation } from '../../src/libs/hyper-h1-client/url';

test('url.full: origin-form target joined to scheme and Host; fragment dropped', () => {
  assert.equal(safeUrl('http', '127.0.0.1:8080', '/a/b?x=1#frag'), 'http://127.0.0.1:8080/a/b?x=1');
  assert.equal(safeUrl('https', 'example.com', '/'), 'https://example.com/');
  assert.equal(safeUrl('http', 'h', '*'), 'http://h/');
});

test('url.full: credentials removed, absolute-form (proxy) targets kept', () => {
  assert.equal(safeUrl('http', 'proxy:3128', 'http://user:pw@example.com/p?q=1'), 'http://example.com/p?q=1');
  assert.equal(safeUrl('https', 'user:pw@example.com', '/x'), 'https://example.com/x');
  assert.equal(safeUrl('http', 'example.com', '/a@b'), 'http://example.com/a@b');
});

test('url.full: the sensitive query values of the conventions are REDACTED, others untouched', () => {
  assert.equal(redactQuery('AWSAccessKeyId=AKIA&Signature=abc&sig=1&X-Goog-Signature=2&keep=3'),
    'AWSAccessKeyId=REDACTED&Signature=REDACTED&sig=REDACTED&X-Goog-Signature=REDACTED&keep=3');
  assert.equal(redactQuery('signature=lower&sigx=1&sig'), 'signature=lower&sigx=1&sig');
  assert.equal(safeUrl('http', 'h', '/p?sig=s3cr3t&a=1'), 'http://h/p?sig=REDACTED&a=1');
});

test('Location resolution for redirect hops', () => {
  assert.equal(resolveLocation('http://h:1/a/b?x', 'https://o/z'), 'https://o/z');
  assert.equal(resolveLocation('http://h:1/a/b?x', '/root?q'), 'http://h:1/root?q');
  assert.equal(resolveLocation('http://h:1/a/b?x', 'c'), 'http://h:1/a/c');
  assert.equal(resolveLocation('https://h/a', '//other/p'), 'https://other/p');
});
