import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { type ConnectionHalf, updateConnectionSchema } from '../../shared/domain/connection';
import { DomainError } from '../../shared/domain/errors';
import { reciprocalIdOf } from '../../shared/domain/ids';
import { claimPartitionOf } from '../../shared/storage/connectionStore';
import { inTable, isBatch, type SeenRequest } from '../../dev/load/faultProxy';
import { rejection } from '../support/errors';
import { behindFaultProxy, createInput, recordPair, STICKY, unavailable, writesTo } from '../support/faults';
import { alice, bob } from '../support/storage';

/**
 * Issue 12, items 9 and 4: a connection id is unique across all records (Dataverse's primary key), and a
 * role in use is never deleted, both under concurrency and crashes. Each case ends with the repair job
 * and the checker (see behindFaultProxy).
 */
const admin: Caller = { ...alice, isAdmin: true };
const fixture = behindFaultProxy();

const pairWith = (connectionid: string, body: Record<string, unknown> = {}) => {
  const [a, b] = recordPair();
  return createInput({ connectionid, record1id: a, record2id: b, ...body });
};

/** Every live half with this id, through every record a test touched. */
async function halvesWithId(id: string, records: string[]): Promise<ConnectionHalf[]> {
  const found: ConnectionHalf[] = [];
  for (const record of new Set(records)) {
    const { items } = await fixture.services.connections.list({ recordId: record }, admin, { top: 100 });
    found.push(...items.filter((half) => half.connectionid === id));
  }
  return found;
}

/** Makes an id's claim look as old as a create that stopped long ago. */
async function ageClaim(id: string): Promise<void> {
  const table = fixture.services.tables.connections;
  const partitionKey = claimPartitionOf(id);
  const claim = await table.getEntity(partitionKey, 'claim');
  await table.updateEntity(
    { ...claim, partitionKey, rowKey: 'claim', claimedon: new Date(Date.now() - 10 * 60_000).toISOString() },
    'Replace',
    { etag: claim.etag },
  );
}

describe('a connection id is unique across all records', () => {
  it('an id (or its reciprocal) used between other records is refused with 409 DuplicateRecord', async () => {
    const id = randomUUID();
    const first = pairWith(id);
    const { half } = await fixture.services.connections.create(first, alice);
    const again = await rejection(fixture.services.connections.create(pairWith(id), bob));
    expect(again.code).toBe('DuplicateRecord');
    expect(again.kind).toBe('conflict');
    const reciprocalsId = await rejection(fixture.services.connections.create(pairWith(half.relatedconnectionid), bob));
    expect(reciprocalsId.code).toBe('DuplicateRecord');
    // The same pair seen from the other record, under the first connection's id: still another half's id.
    const reversed = createInput({
      connectionid: id,
      record1id: first.record2id,
      record1objecttypecode: 'contact',
      record2id: first.record1id,
      record2objecttypecode: 'account',
    });
    expect((await rejection(fixture.services.connections.create(reversed, alice))).code).toBe('DuplicateRecord');
    expect(await halvesWithId(id, [first.record1id, first.record2id])).toHaveLength(1);
  });

  it("a deleted connection's id is free again for its records at once, and for others once its tombstones are purged", async () => {
    const id = randomUUID();
    const first = pairWith(id);
    await fixture.services.connections.create(first, alice);
    await fixture.services.connections.delete(first.record1id, id, alice);
    const second = pairWith(id);
    // A retry of that delete, or a late write of it, must not reach another connection with the id.
    expect((await rejection(fixture.services.connections.create(second, bob))).code).toBe('DuplicateRecord');
    expect((await fixture.services.connections.create(first, alice)).created).toBe(true);
    await fixture.services.connections.delete(first.record1id, id, alice);
    await fixture.services.consistency.walk({ repair: true, graceMs: 0 });
    // The purged slot is empty, as a create that claimed the id and has not committed yet would leave
    // it: the claim is taken over once it is older than that create can be.
    await ageClaim(id);
    const { created } = await fixture.services.connections.create(second, bob);
    expect(created).toBe(true);
    expect(await halvesWithId(id, [first.record1id, second.record1id, first.record2id, second.record2id])).toHaveLength(
      1,
    );
  });

  it('eight creates of one id between eight pairs at once: exactly one connection has it, whatever each was answered', async () => {
    const id = randomUUID();
    const inputs = Array.from({ length: 8 }, () => pairWith(id));
    const outcomes = await Promise.allSettled(inputs.map((input) => fixture.services.connections.create(input, alice)));
    const created = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    expect(created).toHaveLength(1);
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected') {
        expect(outcome.reason).toBeInstanceOf(DomainError);
        expect(['conflict', 'unavailable']).toContain((outcome.reason as DomainError).kind);
      }
    }
    const records = inputs.flatMap((input) => [input.record1id, input.record2id]);
    expect(await halvesWithId(id, records)).toHaveLength(1);
  });

  it('a create that stopped after claiming the id keeps it for its own retry; another pair is refused meanwhile', async () => {
    const id = randomUUID();
    const first = pairWith(id);
    fixture.proxy.add({ match: isBatch, action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.create(first, alice));
    fixture.proxy.clear();
    expect((await rejection(fixture.services.connections.create(pairWith(id), bob))).code).toBe('DuplicateRecord');
    expect((await fixture.services.connections.create(first, alice)).created).toBe(true);
  });

  it('a connection made before claims existed gets its claim from the repair job, and its id is then refused elsewhere', async () => {
    const id = randomUUID();
    const first = pairWith(id);
    await fixture.services.connections.create(first, alice);
    await fixture.services.tables.connections.deleteEntity(claimPartitionOf(id), 'claim'); // as older data has none
    const checked = await fixture.services.consistency.walk({ repair: false, graceMs: 0 });
    expect(checked.violations.map((violation) => violation.kind)).toEqual(['unclaimed-id']);
    await fixture.services.consistency.walk({ repair: true, graceMs: 0 });
    expect((await rejection(fixture.services.connections.create(pairWith(id), bob))).code).toBe('DuplicateRecord');
  });

  it('a claim whose create never committed is taken over once it is old, and that create can no longer land', async () => {
    const id = randomUUID();
    const first = pairWith(id);
    const [low] = [first.record1id, first.record2id].sort();
    // The first create's commit is held back while its claim ages and another pair takes the id.
    fixture.proxy.add({
      match: (request) => isBatch(request) && writesTo(low as string)(request),
      action: 'delay',
      delayMs: 1500,
      times: 1,
    });
    const overtaken = fixture.services.connections.create(first, alice).then(
      () => 'created',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await ageClaim(id);
    const second = pairWith(id);
    expect((await fixture.services.connections.create(second, bob)).created).toBe(true);
    const outcome = await overtaken;
    expect(outcome).toBeInstanceOf(DomainError);
    expect((outcome as DomainError).code).toBe('DuplicateRecord');
    const records = [first.record1id, first.record2id, second.record1id, second.record2id];
    expect((await halvesWithId(id, records)).map((half) => half.record1id)).toEqual([second.record1id]);
    expect(await halvesWithId(reciprocalIdOf(id), records)).toHaveLength(1);
  });
});

describe('a role in use is never deleted', () => {
  const newRole = async () =>
    (await fixture.services.roles.create({ name: `Role ${randomUUID()}`, category: 5, objecttypecodes: [] }, admin))
      .role.connectionroleid;
  const withRole = (roleId: string) => pairWith(randomUUID(), { record1roleid: roleId });
  const roleIndexWrite = (request: SeenRequest) =>
    request.method !== 'GET' && inTable(fixture.services.tables.roleIndex.tableName)(request);
  const isReservation = (request: SeenRequest) => request.path.includes("RowKey='r_");
  /** Whether any live connection among these still has the role. */
  const usedBy = async (roleId: string, inputs: { record1id: string }[]) =>
    (
      await Promise.all(
        inputs.map((input) => fixture.services.connections.list({ recordId: input.record1id }, admin, { top: 100 })),
      )
    ).some(({ items }) => items.some((half) => half.record1roleid === roleId || half.record2roleid === roleId));

  it('a deletion and a create with the role, sent together ten times: never both succeed, and a deleted role has no connection', async () => {
    for (let round = 0; round < 10; round++) {
      const roleId = await newRole();
      const input = withRole(roleId);
      const [deleted, created] = await Promise.allSettled([
        fixture.services.roles.delete(roleId, admin),
        fixture.services.connections.create(input, alice),
      ]);
      expect(deleted.status === 'fulfilled' && created.status === 'fulfilled').toBe(false);
      if (deleted.status === 'fulfilled') expect(await usedBy(roleId, [input])).toBe(false);
      else expect((deleted.reason as DomainError).code).toBe('ConnectionRoleInUse');
    }
  });

  it('a create that stopped after its commit, before its index entries: the deletion is refused', async () => {
    const roleId = await newRole();
    const input = withRole(roleId);
    fixture.proxy.add({
      match: (request) => roleIndexWrite(request) && !isReservation(request),
      action: 'fail',
      status: 503,
      times: 100,
    });
    await unavailable(fixture.services.connections.create(input, alice));
    fixture.proxy.clear();
    expect((await rejection(fixture.services.roles.delete(roleId, admin))).code).toBe('ConnectionRoleInUse');
    expect((await fixture.services.connections.create(input, alice)).half.record1roleid).toBe(roleId);
  });

  it('a create that stopped after reserving the role, before committing: the deletion goes through and that create can no longer land', async () => {
    const roleId = await newRole();
    const input = withRole(roleId);
    fixture.proxy.add({ match: isBatch, action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.create(input, alice));
    fixture.proxy.clear();
    await fixture.services.roles.delete(roleId, admin);
    expect((await rejection(fixture.services.connections.create(input, alice))).code).toBe('ConnectionRoleNotFound');
    expect(await usedBy(roleId, [input])).toBe(false);
  });

  it('a create held back between its role check and its commit while the role is deleted: refused, and nothing has the role', async () => {
    const roleId = await newRole();
    const input = withRole(roleId);
    fixture.proxy.add({ match: isBatch, action: 'delay', delayMs: 1000, times: 1 });
    const create = fixture.services.connections.create(input, alice).then(
      () => 'created',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await fixture.services.roles.delete(roleId, admin);
    const outcome = await create;
    expect(outcome).toBeInstanceOf(DomainError);
    expect((outcome as DomainError).code).toBe('ConnectionRoleNotFound');
    expect(await usedBy(roleId, [input])).toBe(false);
  });

  it("a role moving to the other record's side is reserved too: a deletion meeting that change half-propagated is refused", async () => {
    const roleId = await newRole();
    const input = withRole(roleId);
    const { half } = await fixture.services.connections.create(input, alice);
    await fixture.services.consistency.walk({ repair: true, graceMs: 3_600_000, settleAfterMs: 0 }); // its reservation settled
    // The change commits, then its new entry (under the other record's key) fails: answered 503.
    const newEntry = (request: SeenRequest) =>
      roleIndexWrite(request) &&
      `${request.path} ${request.body}`.includes(`_${half.record2id}_${half.relatedconnectionid}`);
    fixture.proxy.add({ match: newEntry, action: 'fail', status: 503, times: 100 });
    await unavailable(
      fixture.services.connections.update(
        half.record1id,
        half.connectionid,
        updateConnectionSchema.parse({ record1roleid: null, record2roleid: roleId }),
        alice,
      ),
    );
    fixture.proxy.clear();
    expect((await rejection(fixture.services.roles.delete(roleId, admin))).code).toBe('ConnectionRoleInUse');
  });

  it('a deletion checking while the repair job moves a use from a reservation to an entry still sees it', async () => {
    const roleId = await newRole();
    const input = withRole(roleId);
    fixture.proxy.add({
      match: (request) => roleIndexWrite(request) && !isReservation(request),
      action: 'fail',
      status: 503,
      times: 100,
    });
    await unavailable(fixture.services.connections.create(input, alice));
    fixture.proxy.clear();
    // The deletion's second look at the role's partition is held back while the repair job settles.
    fixture.proxy.add({
      match: (request) => request.method === 'GET' && inTable(fixture.services.tables.roleIndex.tableName)(request),
      action: 'delay',
      delayMs: 1000,
      skip: 1,
      times: 1,
    });
    const deletion = fixture.services.roles.delete(roleId, admin).then(
      () => 'deleted',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await fixture.services.consistency.walk({ repair: true, graceMs: 3_600_000, settleAfterMs: 0 });
    const outcome = await deletion;
    expect(outcome).toBeInstanceOf(DomainError);
    expect((outcome as DomainError).code).toBe('ConnectionRoleInUse');
  });

  it('a deleted role takes its matches with it: created again with its id, it matches nothing', async () => {
    const roleId = await newRole();
    const other = await newRole();
    await fixture.services.roles.addMatch(roleId, other, admin);
    await fixture.services.roles.delete(roleId, admin);
    await fixture.services.roles.create(
      { connectionroleid: roleId, name: 'Again', category: 5, objecttypecodes: [] },
      admin,
    );
    expect(await fixture.services.roles.matchingRoles(roleId)).toEqual([]);
    expect(await fixture.services.roles.matchingRoles(other)).toEqual([]);
  });

  it('a deletion that stopped after marking the role keeps new connections off it until it is sent again', async () => {
    const roleId = await newRole();
    fixture.proxy.add({
      match: (request) => request.method === 'GET' && inTable(fixture.services.tables.roleIndex.tableName)(request),
      action: 'fail',
      status: 503,
      times: STICKY,
    });
    await unavailable(fixture.services.roles.delete(roleId, admin));
    fixture.proxy.clear();
    expect((await rejection(fixture.services.connections.create(withRole(roleId), alice))).code).toBe(
      'ConnectionRoleNotFound',
    );
    await fixture.services.roles.delete(roleId, admin);
    expect((await rejection(fixture.services.roles.get(roleId))).code).toBe('ConnectionRoleNotFound');
  });

  it('a deletion that stopped after marking the role: the repair job lifts the mark once the grace period is over', async () => {
    const roleId = await newRole();
    fixture.proxy.add({
      match: (request) => request.method === 'GET' && inTable(fixture.services.tables.roleIndex.tableName)(request),
      action: 'fail',
      status: 503,
      times: STICKY,
    });
    await unavailable(fixture.services.roles.delete(roleId, admin));
    fixture.proxy.clear();
    await fixture.services.consistency.walk({ repair: true, graceMs: 3_600_000 });
    expect((await rejection(fixture.services.connections.create(withRole(roleId), alice))).code).toBe(
      'ConnectionRoleNotFound',
    );
    await fixture.services.consistency.walk({ repair: true, graceMs: 0 });
    expect((await fixture.services.connections.create(withRole(roleId), alice)).half.record1roleid).toBe(roleId);
  });
});
