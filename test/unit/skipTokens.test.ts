import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { thrown } from '../support/errors';
import {
  decodeSkipToken,
  decodeStorageSkipToken,
  encodeSkipToken,
  queryFingerprint,
} from '../../shared/useCases/skipTokens';
import { newMasterHalf } from '../../shared/domain/connection';
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';
import { halfRowKey } from '../../shared/storage/connectionStore';
import { indexRowKey } from '../../shared/storage/roleIndexStore';

const testKey = process.env.SKIPTOKEN_KEYS;
afterEach(() => {
  process.env.SKIPTOKEN_KEYS = testKey;
});

const record: string = randomUUID();
const recordQuery = queryFingerprint({ recordId: record, statecode: 0 });
const half = halfRowKey(randomUUID());
const token = encodeSkipToken(half, record, recordQuery);

const rejects = (value: string, scope = record, fingerprint = recordQuery) =>
  expect(thrown(() => decodeSkipToken(value, scope, fingerprint)).code).toBe('InvalidSkipToken');

describe('skiptoken', () => {
  it('round-trips a position for the same query and scope, in URL-safe characters', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeSkipToken(token, record, recordQuery)).toBe(half);
  });

  it("accepts the positions the stores really use, each in its own query's range", () => {
    const types = buildObjectTypeRegistry('base');
    const caller = { id: randomUUID(), teams: [], isAdmin: false };
    const contact = newMasterHalf(
      {
        record1id: randomUUID(),
        record1objecttypecode: 'contact',
        record2id: randomUUID(),
        record2objecttypecode: 'account',
      },
      types,
      caller,
      new Date(),
    );
    const role = randomUUID();
    for (const query of [{ roleId: role }, { roleId: role, typeCode: 2 }]) {
      const fingerprint = queryFingerprint(query);
      expect(decodeSkipToken(encodeSkipToken(indexRowKey(contact), role, fingerprint), role, fingerprint)).toBe(
        indexRowKey(contact),
      );
    }
    const roles = queryFingerprint({ category: 1, validfor: 2 });
    expect(decodeSkipToken(encodeSkipToken(role, 'roles', roles), 'roles', roles)).toBe(role);
  });

  it('does not show its position', () => {
    expect(Buffer.from(token, 'base64url').toString('latin1')).not.toContain(half.slice(2, 10));
  });

  it('is refused when corrupt, forged, edited, or issued for another query or scope', () => {
    rejects('!!!');
    rejects('');
    rejects(token.slice(0, -3));
    rejects(`${token}A`);
    rejects(Buffer.from('{"v":1}').toString('base64url'));
    rejects(Buffer.from(JSON.stringify({ v: 1, s: record, q: recordQuery, p: half })).toString('base64url'));
    rejects(token, record, queryFingerprint({ recordId: record, statecode: 1 }));
    rejects(token, randomUUID());
    const bytes = Buffer.from(token, 'base64url');
    for (let index = 0; index < bytes.length; index++) {
      const edited = Buffer.from(bytes);
      edited[index] = (edited[index] ?? 0) ^ 0x80;
      rejects(edited.toString('base64url'));
    }
  });

  it("is refused when its position lies outside the query's own key range, even when sealed by this deployment", () => {
    const role = randomUUID();
    const contacts = queryFingerprint({ roleId: role, typeCode: 2 });
    const account = `${'1'.padStart(10, '0')}_${randomUUID()}_${randomUUID()}`;
    rejects(encodeSkipToken(account, role, contacts), role, contacts);
    rejects(encodeSkipToken('0', role, contacts), role, contacts);
    for (const position of [
      '\ud800',
      'c_',
      `c_${randomUUID().toUpperCase()}`,
      `u_${randomUUID()}`,
      `c_${randomUUID()}x`,
      'x'.repeat(3000),
    ]) {
      rejects(encodeSkipToken(position, record, recordQuery));
    }
    rejects(
      encodeSkipToken(half, 'roles', queryFingerprint({ validfor: 1 })),
      'roles',
      queryFingerprint({ validfor: 1 }),
    );
  });

  it('keeps verifying with a key that is no longer first, and stops once it is removed', () => {
    const oldKey = randomBytes(32).toString('base64');
    const newKey = randomBytes(32).toString('base64url');
    process.env.SKIPTOKEN_KEYS = oldKey;
    const signedWithOld = encodeSkipToken(half, record, recordQuery);
    process.env.SKIPTOKEN_KEYS = ` ${newKey} , ${oldKey} `;
    expect(decodeSkipToken(signedWithOld, record, recordQuery)).toBe(half);
    const signedWithNew = encodeSkipToken(half, record, recordQuery);
    expect(signedWithNew).not.toBe(signedWithOld);
    process.env.SKIPTOKEN_KEYS = newKey;
    rejects(signedWithOld);
    expect(decodeSkipToken(signedWithNew, record, recordQuery)).toBe(half);
  });

  it('cannot be made without a key outside local development mode', () => {
    process.env.SKIPTOKEN_KEYS = '';
    const mode = process.env.LOCAL_DEVELOPMENT_MODE;
    process.env.LOCAL_DEVELOPMENT_MODE = 'false';
    try {
      expect(() => encodeSkipToken(half, record, recordQuery)).toThrow(/SKIPTOKEN_KEYS is not set/);
      process.env.LOCAL_DEVELOPMENT_MODE = 'true';
      expect(decodeSkipToken(encodeSkipToken(half, record, recordQuery), record, recordQuery)).toBe(half);
    } finally {
      process.env.LOCAL_DEVELOPMENT_MODE = mode;
    }
  });

  it('also carries storage continuations, checked for their shape', () => {
    const continuation = Buffer.from(JSON.stringify({ nextPartitionKey: 'cA==', nextRowKey: 'Y18y' })).toString(
      'base64',
    );
    expect(decodeStorageSkipToken(encodeSkipToken(continuation, record, recordQuery), record, recordQuery)).toBe(
      continuation,
    );
    for (const bad of ['bm90IGpzb24=', Buffer.from('{"nextRowKey":"x"}').toString('base64'), '\ud800']) {
      expect(
        thrown(() => decodeStorageSkipToken(encodeSkipToken(bad, record, recordQuery), record, recordQuery)).code,
      ).toBe('InvalidSkipToken');
    }
  });
});
