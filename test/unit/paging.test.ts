import { describe, expect, it } from 'vitest';
import { thrown } from '../support/errors';
import { decodeSkipToken, decodeStorageSkipToken, encodeSkipToken, queryFingerprint } from '../../shared/paging';

describe('skiptoken', () => {
  const fingerprint = queryFingerprint({ recordId: 'r', statecode: 0 });
  const continuation = Buffer.from(JSON.stringify({ nextPartitionKey: 'cA==', nextRowKey: 'Y18y' })).toString('base64');
  const token = encodeSkipToken(continuation, 'r', fingerprint);

  it('round-trips storage\'s continuation for the same query and record', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeStorageSkipToken(token, 'r', fingerprint)).toBe(continuation);
    expect(decodeSkipToken(encodeSkipToken('role-7', 'roles', fingerprint), 'roles', fingerprint)).toBe('role-7');
  });

  const rejects = (value: string, record = 'r', print = fingerprint) =>
    expect(thrown(() => decodeStorageSkipToken(value, record, print)).code).toBe('InvalidSkipToken');

  it('is refused when corrupt, forged, or issued for another query or record', () => {
    rejects('!!!');
    rejects(token.slice(0, -3));
    rejects(Buffer.from('{"v":1}').toString('base64url'));
    rejects(Buffer.from('not json').toString('base64url'));
    rejects(token, 'r', queryFingerprint({ recordId: 'r', statecode: 1 }));
    rejects(token, 'another-record');
    rejects(encodeSkipToken('bm90IGpzb24=', 'r', fingerprint));
    rejects(encodeSkipToken(Buffer.from('{"nextRowKey":"x"}').toString('base64'), 'r', fingerprint));
  });
});
