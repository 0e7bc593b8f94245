import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { etagOf, reciprocalOf, updateConnectionSchema } from '../../shared/domain/connection';
import { isBatch, touchesPartition } from '../../dev/load/faultProxy';
import { rejection } from '../support/errors';
import {
  createInput,
  recordPair,
  behindFaultProxy,
  STICKY,
  unavailable,
  writesTo,
  writesToTable,
} from '../support/faults';
import { alice, bob } from '../support/storage';

/**
 * The findings of the protocol issue, each reproduced as it was reported, against Azurite through the
 * fault fixture.proxy. A and B are records with A < B, so A's partition holds the authoritative half; "sticky"
 * fails the SDK's first try and all its retries. Every case ends with the repair job and the checker,
 * which must then find nothing.
 */
const admin: Caller = { ...alice, isAdmin: true };
const carol: Caller = { id: 'ca201000-0000-4000-8000-000000000003', teams: [], isAdmin: false };
const patch = (body: Record<string, unknown>) => updateConnectionSchema.parse(body);
const pairInput = (a: string, b: string, body: Record<string, unknown> = {}) =>
  createInput({ connectionid: randomUUID(), record1id: a, record2id: b, ...body });

const fixture = behindFaultProxy();

const visibleFrom = async (record: string, caller: Caller) =>
  (await fixture.services.connections.list({ recordId: record }, caller, { top: 100 })).items;
const activeFrom = async (record: string) => (await visibleFrom(record, admin)).filter((half) => half.statecode === 0);

describe('finding 1: no permanent duplicate active pair', () => {
  it('two creates of one pair from both directions, each interrupted, then retried: one pair, and the repair job keeps it one', async () => {
    const [A, B] = recordPair();
    const c1 = pairInput(A, B);
    const c2 = pairInput(B, A, { record1objecttypecode: 'contact', record2objecttypecode: 'account' });
    fixture.proxy.add({ match: writesTo(B), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.create(c1, alice));
    fixture.proxy.clear();
    fixture.proxy.add({ match: writesTo(A), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.create(c2, alice));
    fixture.proxy.clear();
    const first = await fixture.services.connections.create(c1, alice);
    expect(first.half.connectionid).toBe(c1.connectionid);
    const second = await rejection(fixture.services.connections.create(c2, alice));
    expect(second.code).toBe('ConnectionExists');
    expect(second.extra.members?.existingconnectionid).toBe(first.half.relatedconnectionid); // the id B sees
    await fixture.services.consistency.walk({ repair: true, graceMs: 0 });
    expect(await activeFrom(A)).toHaveLength(1);
    expect(await activeFrom(B)).toHaveLength(1);
  });
});

describe('finding 2: the repair job never sticks', () => {
  it('an interrupted delete then an interrupted reactivation of an older pair: the job repairs and moves on', async () => {
    const [A, B] = recordPair();
    const { half: c1 } = await fixture.services.connections.create(pairInput(A, B), alice);
    await fixture.services.connections.update(A, c1.connectionid, patch({ statecode: 1 }), alice);
    const { half: c3 } = await fixture.services.connections.create(pairInput(A, B), alice);
    fixture.proxy.add({
      match: (r) => writesTo(B)(r) && r.method === 'POST',
      action: 'fail',
      status: 503,
      times: STICKY,
    });
    fixture.proxy.add({ match: writesTo(B), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.delete(A, c3.connectionid, alice));
    fixture.proxy.clear();
    fixture.proxy.add({ match: (r) => isBatch(r) || writesTo(B)(r), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.update(A, c1.connectionid, patch({ statecode: 0 }), alice)).catch(
      () => undefined,
    );
    fixture.proxy.clear();
    for (let pass = 0; pass < 2; pass++) {
      const result = await fixture.services.consistency.walk({ repair: true, graceMs: 0 });
      expect(result.failed).toBe(0);
    }
    const reactivated = await fixture.services.connections.update(A, c1.connectionid, patch({ statecode: 0 }), alice);
    expect(reactivated.statecode).toBe(0);
    expect((await fixture.services.connections.get(B, c1.relatedconnectionid, alice)).statecode).toBe(0);
  });
});

describe('finding 3: a retried revoke or deactivation finishes the job before it answers', () => {
  it('a revoke that failed on B, retried: 204, and bob reads nothing through either half', async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    await fixture.services.connections.grantAccess(A, half.connectionid, alice, {
      principalid: bob.id,
      principaltype: 'systemuser',
      accessmask: 1,
    });
    expect(await fixture.services.connections.get(B, half.relatedconnectionid, bob)).toBeTruthy();
    fixture.proxy.add({ match: writesTo(B), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.revokeAccess(A, half.connectionid, alice, bob.id));
    fixture.proxy.clear();
    await fixture.services.connections.revokeAccess(A, half.connectionid, alice, bob.id);
    expect((await rejection(fixture.services.connections.get(B, half.relatedconnectionid, bob))).kind).toBe(
      'not-found',
    );
    expect((await rejection(fixture.services.connections.get(A, half.connectionid, bob))).kind).toBe('not-found');
    expect(await visibleFrom(B, bob)).toEqual([]);
  });

  it('a deactivation that failed on B, retried: 200, the reciprocal is inactive, and the pair can be made again', async () => {
    const [A, B] = recordPair();
    const request = pairInput(A, B);
    const { half } = await fixture.services.connections.create(request, alice);
    fixture.proxy.add({ match: writesTo(B), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.update(A, half.connectionid, patch({ statecode: 1 }), alice));
    fixture.proxy.clear();
    expect(
      (await fixture.services.connections.update(A, half.connectionid, patch({ statecode: 1 }), alice)).statecode,
    ).toBe(1);
    expect((await fixture.services.connections.get(B, half.relatedconnectionid, alice)).statecode).toBe(1);
    await expect(
      fixture.services.connections.create({ ...request, connectionid: randomUUID() }, alice),
    ).resolves.toMatchObject({ created: true });
  });
});

describe('finding 4: an interrupted assign can be retried', () => {
  it("the old owner's retry answers 200; the new owner reads through B, the old one no longer", async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    fixture.proxy.add({ match: writesTo(B), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.update(A, half.connectionid, patch({ ownerid: bob.id }), alice));
    fixture.proxy.clear();
    const retried = await fixture.services.connections.update(A, half.connectionid, patch({ ownerid: bob.id }), alice);
    expect(retried.ownerid).toBe(bob.id);
    expect((await fixture.services.connections.get(B, half.relatedconnectionid, bob)).ownerid).toBe(bob.id);
    expect((await rejection(fixture.services.connections.get(B, half.relatedconnectionid, alice))).kind).toBe(
      'not-found',
    );
  });
});

describe('finding 5: a retried role change leaves nothing under the old role', () => {
  it('F to G with the index writes failing, retried: nothing listed under F, and F can be deleted', async () => {
    const [A, B] = recordPair();
    const f = (
      await fixture.services.roles.create({ name: `F${randomUUID()}`, category: 1, objecttypecodes: [] }, admin)
    ).role.connectionroleid;
    const g = (
      await fixture.services.roles.create({ name: `G${randomUUID()}`, category: 1, objecttypecodes: [] }, admin)
    ).role.connectionroleid;
    const { half } = await fixture.services.connections.create(pairInput(A, B, { record1roleid: f }), alice);
    // Both index writes (F's tombstone, G's entry) fail with every retry.
    fixture.proxy.add({
      match: writesToTable(fixture.services.tables.roleIndex.tableName),
      action: 'fail',
      status: 503,
    });
    await unavailable(fixture.services.connections.update(A, half.connectionid, patch({ record1roleid: g }), alice));
    fixture.proxy.clear();
    await fixture.services.connections.update(A, half.connectionid, patch({ record1roleid: g }), alice);
    expect((await fixture.services.connections.listByRole({ roleid: f }, admin, { top: 10 })).items).toEqual([]);
    expect(
      (await fixture.services.connections.listByRole({ roleid: g }, admin, { top: 10 })).items.map(
        (item) => item.connectionid,
      ),
    ).toEqual([half.connectionid]);
    await fixture.services.roles.delete(f, admin);
  });
});

describe('finding 6: writes to derived copies are fenced', () => {
  it('an index write of an update, delayed past a revoke, does not bring the share back', async () => {
    const [A, B] = recordPair();
    const role = (
      await fixture.services.roles.create({ name: `R${randomUUID()}`, category: 1, objecttypecodes: [] }, admin)
    ).role.connectionroleid;
    const { half } = await fixture.services.connections.create(pairInput(A, B, { record1roleid: role }), alice);
    await fixture.services.connections.grantAccess(A, half.connectionid, alice, {
      principalid: bob.id,
      principaltype: 'systemuser',
      accessmask: 1,
    });
    fixture.proxy.add({
      match: writesToTable(fixture.services.tables.roleIndex.tableName),
      action: 'delay',
      delayMs: 400,
      times: 1,
    });
    const update = fixture.services.connections.update(A, half.connectionid, patch({ description: 'slow' }), alice);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await fixture.services.connections.revokeAccess(A, half.connectionid, alice, bob.id);
    await update;
    expect((await fixture.services.connections.listByRole({ roleid: role }, bob, { top: 10 })).items).toEqual([]);
    expect(await visibleFrom(B, bob)).toEqual([]);
  });

  it('an update whose other half is written after a delete answered does not resurrect it', async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    fixture.proxy.add({ match: writesTo(B), action: 'delay', delayMs: 400, times: 1 });
    const update = fixture.services.connections
      .update(A, half.connectionid, patch({ description: 'late' }), alice)
      .catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await fixture.services.connections.delete(A, half.connectionid, alice).catch((error: unknown) => error);
    await update;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await visibleFrom(B, admin)).toEqual([]);
    expect(await visibleFrom(A, admin)).toEqual([]);
    expect((await rejection(fixture.services.connections.get(B, half.relatedconnectionid, admin))).kind).toBe(
      'not-found',
    );
  });
});

describe('finding 7: the repair job never writes from a stale snapshot', () => {
  it('a repair racing a newer update leaves the reciprocal at the newer version', async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    fixture.proxy.add({ match: writesTo(B), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.update(A, half.connectionid, patch({ description: 'v2' }), alice));
    fixture.proxy.clear();
    // The repair's writes to B are slow; meanwhile a newer update completes.
    fixture.proxy.add({ match: writesTo(B), action: 'delay', delayMs: 400, times: 1 });
    const repair = fixture.services.consistency.walk({ repair: true, graceMs: 0 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await fixture.services.connections.update(A, half.connectionid, patch({ description: 'v3' }), alice);
    await repair;
    const reciprocal = await fixture.services.connections.get(B, half.relatedconnectionid, alice);
    expect(reciprocal.description).toBe('v3');
    expect(reciprocal.versionnumber).toBe(
      (await fixture.services.connections.get(A, half.connectionid, alice)).versionnumber,
    );
  });
});

describe('finding 8: no leftover guard refuses a create', () => {
  it('after a half-done delete, the same pair can be created again from either direction', async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    fixture.proxy.add({ match: writesTo(B), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.delete(A, half.connectionid, alice));
    fixture.proxy.clear();
    const again = await fixture.services.connections.create(
      pairInput(B, A, { record1objecttypecode: 'contact', record2objecttypecode: 'account' }),
      alice,
    );
    expect(again.created).toBe(true);
  });

  it('after a failed role change and a cascade delete of B, the pair with those roles can be created', async () => {
    const [A, B] = recordPair();
    const role = (
      await fixture.services.roles.create({ name: `S${randomUUID()}`, category: 1, objecttypecodes: [] }, admin)
    ).role.connectionroleid;
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    fixture.proxy.add({ match: writesTo(B), action: 'fail', status: 503, times: STICKY });
    await unavailable(fixture.services.connections.update(A, half.connectionid, patch({ record1roleid: role }), alice));
    fixture.proxy.clear();
    await fixture.services.connections.deleteAllOf(B, admin);
    await expect(
      fixture.services.connections.create(pairInput(A, B, { record1roleid: role }), alice),
    ).resolves.toMatchObject({ created: true });
  });
});

describe('finding 9: concurrent creates from both directions', () => {
  it('24 concurrent creates of one pair, half each way: exactly one succeeds and the others name it', async () => {
    const [A, B] = recordPair();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 24 }, (_, index) =>
        fixture.services.connections.create(
          index % 2 === 0
            ? pairInput(A, B)
            : pairInput(B, A, { record1objecttypecode: 'contact', record2objecttypecode: 'account' }),
          alice,
        ),
      ),
    );
    const created = outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value.half] : []));
    expect(created).toHaveLength(1);
    const winner = created[0]!;
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') continue;
      const error = outcome.reason as { code?: string; extra?: { members?: Record<string, string> } };
      expect(error.code).toBe('ConnectionExists');
      expect([winner.connectionid, winner.relatedconnectionid]).toContain(error.extra?.members?.existingconnectionid);
    }
    expect(await activeFrom(A)).toHaveLength(1);
    expect(await activeFrom(B)).toHaveLength(1);
  });
});

describe('finding 10: a PATCH with If-Match whose answer was lost', () => {
  it("is answered 200 (the SDK's retry meets its own change), and the reciprocal follows", async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    fixture.proxy.add({ match: (r) => isBatch(r) && touchesPartition(A)(r), action: 'cut-after', times: 1 });
    const updated = await fixture.services.connections.update(
      A,
      half.connectionid,
      patch({ description: 'once' }),
      alice,
      [etagOf(half)],
    );
    expect(updated.description).toBe('once');
    expect(updated.versionnumber).toBe(half.versionnumber + 1);
    expect((await fixture.services.connections.get(B, half.relatedconnectionid, alice)).description).toBe('once');
  });
});

describe('finding 11: a reader cannot write', () => {
  it('PATCH of the current owner by a principal with ReadAccess only: 403, and nothing changes', async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    await fixture.services.connections.grantAccess(A, half.connectionid, alice, {
      principalid: carol.id,
      principaltype: 'systemuser',
      accessmask: 1,
    });
    const before = await fixture.services.connections.get(A, half.connectionid, alice);
    expect(
      (await rejection(fixture.services.connections.update(A, half.connectionid, patch({ ownerid: alice.id }), carol)))
        .kind,
    ).toBe('forbidden');
    expect(await fixture.services.connections.get(A, half.connectionid, alice)).toEqual(before);
  });

  it('a PATCH that changes nothing writes nothing: no new version, ETags stay valid', async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B, { description: 'same' }), alice);
    const after = await fixture.services.connections.update(
      B,
      half.relatedconnectionid,
      patch({ description: 'same' }),
      alice,
      [etagOf(half)],
    );
    expect(after.versionnumber).toBe(half.versionnumber);
    expect(etagOf(after)).toBe(etagOf(half));
  });
});

describe('finding 12: DELETE with If-Match is decided and done in one conditional write', () => {
  it('an update landing between the read and the delete makes the delete a 412, and nothing is deleted', async () => {
    const [A, B] = recordPair();
    const { half } = await fixture.services.connections.create(pairInput(A, B), alice);
    fixture.proxy.add({ match: (r) => isBatch(r) && touchesPartition(A)(r), action: 'delay', delayMs: 400, times: 1 });
    const deletion = rejection(fixture.services.connections.delete(A, half.connectionid, alice, [etagOf(half)]));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await fixture.services.connections.update(B, half.relatedconnectionid, patch({ description: 'in between' }), alice);
    expect((await deletion).kind).toBe('precondition-failed');
    expect((await fixture.services.connections.get(A, half.connectionid, alice)).description).toBe('in between');
    expect(reciprocalOf(await fixture.services.connections.get(A, half.connectionid, alice))).toEqual(
      await fixture.services.connections.get(B, half.relatedconnectionid, alice),
    );
  });
});
