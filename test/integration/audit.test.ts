import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { updateConnectionSchema } from '../../shared/domain/connection';
import { encodeSkipToken, queryFingerprint } from '../../shared/useCases/skipTokens';
import { isBatch } from '../../dev/load/faultProxy';
import { rejection } from '../support/errors';
import { behindFaultProxy, createInput, recordPair, STICKY, unavailable } from '../support/faults';
import { alice, bob } from '../support/storage';

/**
 * The audit history: one record per committed version, written in the commit's own transaction, read
 * newest first through either record. Each case ends with the repair job and the checker.
 */
const fixture = behindFaultProxy();
const patch = (body: Record<string, unknown>) => updateConnectionSchema.parse(body);
const admin: Caller = { ...alice, isAdmin: true };
const pair = () => {
  const [a, b] = recordPair();
  return createInput({ connectionid: randomUUID(), record1id: a, record2id: b });
};
const history = async (record: string, id: string, caller: Caller = alice, top = 100, skiptoken?: string) =>
  fixture.services.connections.history(record, id, caller, { top, ...(skiptoken && { skiptoken }) });

describe('the audit history of a connection', () => {
  it('records each change, newest first, with who, what and the old and new values, through either record', async () => {
    const input = { ...pair(), record1name: 'Contoso' };
    const { half } = await fixture.services.connections.create(input, alice);
    await fixture.services.connections.update(
      half.record1id,
      half.connectionid,
      patch({ description: 'met at a fair' }),
      alice,
    );
    await fixture.services.connections.grantAccess(half.record1id, half.connectionid, alice, {
      principalid: bob.id,
      principaltype: 'systemuser',
      accessmask: 1,
    });
    await fixture.services.connections.update(
      half.record2id,
      half.relatedconnectionid,
      patch({ ownerid: bob.id }),
      alice,
    );
    await fixture.services.connections.update(half.record1id, half.connectionid, patch({ statecode: 1 }), bob);
    const { items } = await history(half.record1id, half.connectionid, bob);
    expect(items.map((record) => [record.operation, record.versionnumber, record.userid])).toEqual([
      ['deactivate', 5, bob.id],
      ['assign', 4, alice.id],
      ['share', 3, alice.id],
      ['update', 2, alice.id],
      ['create', 1, alice.id],
    ]);
    expect(items[0]?.changes).toEqual([
      { attribute: 'statecode', oldvalue: '0', newvalue: '1' },
      { attribute: 'statuscode', oldvalue: '1', newvalue: '2' },
    ]);
    expect(items[1]?.changes).toEqual([{ attribute: 'ownerid', oldvalue: alice.id, newvalue: bob.id }]);
    expect(items[2]?.changes).toEqual([{ attribute: `share:${bob.id}`, oldvalue: null, newvalue: 'ReadAccess' }]);
    expect(items[3]?.changes).toEqual([{ attribute: 'description', oldvalue: null, newvalue: 'met at a fair' }]);
    expect(items[4]?.changes).toContainEqual({ attribute: 'ownerid', oldvalue: null, newvalue: alice.id });
    expect(items[4]?.changes).toContainEqual({ attribute: 'record1name', oldvalue: null, newvalue: 'Contoso' });
    // Seen from record 2, record 1 and record 2 swap, as they do in the connection's view.
    const fromOther = await history(half.record2id, half.relatedconnectionid, bob);
    expect(fromOther.items[4]?.changes).toContainEqual({
      attribute: 'record2name',
      oldvalue: null,
      newvalue: 'Contoso',
    });
  });

  it('is read page by page, and only by whoever may read the connection', async () => {
    const { half } = await fixture.services.connections.create(pair(), alice);
    for (const description of ['a', 'b', 'c'])
      await fixture.services.connections.update(half.record1id, half.connectionid, patch({ description }), alice);
    const first = await history(half.record1id, half.connectionid, alice, 3);
    expect(first.items.map((record) => record.versionnumber)).toEqual([4, 3, 2]);
    const second = await history(half.record1id, half.connectionid, alice, 3, first.skiptoken);
    expect(second.items.map((record) => record.versionnumber)).toEqual([1]);
    expect(second.skiptoken).toBeUndefined();
    expect((await rejection(history(half.record1id, half.connectionid, bob))).code).toBe('ConnectionNotFound');
    expect(
      (await rejection(history(half.record1id, half.connectionid, admin, 3, `${first.skiptoken ?? ''}x`))).code,
    ).toBe('InvalidSkipToken');
    // Even a token sealed for this URL is refused when its position lies among another connection's records.
    const elsewhere = encodeSkipToken(
      `h_${randomUUID()}_${'0'.repeat(15)}_${'0'.repeat(10)}`,
      `${half.record1id}/${half.connectionid}`,
      queryFingerprint({ audit: half.connectionid }),
    );
    expect((await rejection(history(half.record1id, half.connectionid, admin, 3, elsewhere))).code).toBe(
      'InvalidSkipToken',
    );
  });

  it('a change that failed writes no record, and one whose answer was lost writes exactly one', async () => {
    const { half } = await fixture.services.connections.create(pair(), alice);
    fixture.proxy.add({ match: isBatch, action: 'fail', status: 503, times: STICKY });
    await unavailable(
      fixture.services.connections.update(half.record1id, half.connectionid, patch({ description: 'lost' }), alice),
    );
    fixture.proxy.clear();
    fixture.proxy.add({ match: isBatch, action: 'cut-after', times: 1 });
    await fixture.services.connections.update(half.record1id, half.connectionid, patch({ description: 'kept' }), alice);
    fixture.proxy.clear();
    const { items } = await history(half.record1id, half.connectionid);
    expect(items.map((record) => [record.operation, record.versionnumber])).toEqual([
      ['update', 2],
      ['create', 1],
    ]);
    expect(items[0]?.changes).toEqual([{ attribute: 'description', oldvalue: null, newvalue: 'kept' }]);
  });

  it("shows only this incarnation of the id: a connection created again over a deleted one's tombstone does not show its history", async () => {
    const input = pair();
    const { half } = await fixture.services.connections.create(input, alice);
    await fixture.services.connections.update(
      half.record1id,
      half.connectionid,
      patch({ description: 'secret' }),
      alice,
    );
    await fixture.services.connections.delete(half.record1id, half.connectionid, alice);
    const again = await fixture.services.connections.create(input, bob);
    expect(again.created).toBe(true);
    const { items } = await history(half.record1id, half.connectionid, bob);
    expect(items.map((record) => [record.operation, record.userid])).toEqual([['create', bob.id]]);
  });

  it('stays readable after a delete until the repair job purges the connection, and goes with it', async () => {
    const { half } = await fixture.services.connections.create(pair(), alice);
    await fixture.services.connections.delete(half.record2id, half.relatedconnectionid, alice);
    expect((await history(half.record2id, half.relatedconnectionid)).items.map((record) => record.operation)).toEqual([
      'delete',
      'create',
    ]);
    await fixture.services.consistency.walk({ repair: true, graceMs: 0 });
    expect((await rejection(history(half.record1id, half.connectionid))).code).toBe('ConnectionNotFound');
    const rows = fixture.services.tables.connections.listEntities({
      queryOptions: { filter: `PartitionKey eq '${[half.record1id, half.record2id].sort()[0] ?? ''}'` },
    });
    for await (const row of rows) expect(row.rowKey?.startsWith('h_')).toBe(false);
  });
});
