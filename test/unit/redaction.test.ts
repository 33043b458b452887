// Sensitive query values (semantic conventions, url.query): replaced by REDACTED.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redactedQuery, redactQueryString, SENSITIVE_QUERY_KEYS } from '../../src/spans/http';

test('the keys the semantic conventions name, and only those, have their values redacted', () => {
  assert.deepEqual(SENSITIVE_QUERY_KEYS, ['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature']);
  const cases: [string, string][] = [
    ['a=1', 'a=1'],
    ['sig=abc', 'sig=REDACTED'],
    ['a=1&sig=abc&b=2', 'a=1&sig=REDACTED&b=2'],
    ['Signature=x&AWSAccessKeyId=AKIA&Expires=1', 'Signature=REDACTED&AWSAccessKeyId=REDACTED&Expires=1'],
    ['X-Goog-Signature=zz&X-Goog-Date=1', 'X-Goog-Signature=REDACTED&X-Goog-Date=1'],
    ['sig', 'sig'], ['sig=', 'sig='], ['SIG=1', 'SIG=1'], ['signature=1', 'signature=1'],
    ['&&sig=1&', '&&sig=REDACTED&'], ['x=sig=1', 'x=sig=1'], ['sigx=1&sig=2', 'sigx=1&sig=REDACTED'], ['', ''],
  ];
  for (const [q, want] of cases) assert.equal(redactQueryString(q), want, q);
});

test('nothing to redact: no string is made (the hot path keeps the bytes)', () => {
  const b = Buffer.from('xxGET /p?a=1&b=2 HTTP/1.1');
  assert.equal(redactedQuery(b, 9, 16), undefined);
  const c = Buffer.from('/p?a=1&sig=zz');
  assert.equal(redactedQuery(c, 3, c.length), 'a=1&sig=REDACTED');
});
