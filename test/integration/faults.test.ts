import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { reciprocalOf, updateConnectionSchema } from '../../shared/domain/connection';
import { inTable, isBatch, type SeenRequest, touchesPartition } from '../../dev/load/faultProxy';
import { createInput as input, recordPair, behindFaultProxy, STICKY, unavailable, writesTo } from '../support/faults';
import { alice } from '../support/storage';

// The app's services talk to Azurite through the fault proxy; each case breaks one write of an
// operation, then shows the client's retry or the repair job brings the tables back to the invariant.
const admin: Caller = { ...alice, isAdmin: true };

const fixture = behindFaultProxy();

const kinds = async () =>
  (await fixture.services.consistency.walk({ repair: false, graceMs: 0 })).violations
    .map((violation) => violation.kind)
    .sort();
/** A connection whose authoritative half is record 1's (A < B). */
const ordered = (body: Record<string, unknown> = {}) => {
  const [A, B] = recordPair();
  return input({ record1id: A, record2id: B, ...body });
};

describe('create', () => {
  it('fails with a 503 when the other half cannot be written; the retry with the same id completes the pair', async () => {
    const request = ordered({ connectionid: randomUUID() });
    fixture.proxy.add({ match: writesTo(request.record2id), action: 'fail', status: 500, times: STICKY });
    await unavailable(fixture.services.connections.create(request, alice));
    expect(await kinds()).toEqual(['missing-derived-half']);
    const retried = await fixture.services.connections.create(request, alice);
    expect(retried.created).toBe(false);
    expect(await fixture.services.connections.get(request.record2id, retried.half.relatedconnectionid, alice)).toEqual(
      reciprocalOf(retried.half),
    );
  });

  it('is completed by the repair job when the client never retries', async () => {
    const request = ordered();
    fixture.proxy.add({ match: writesTo(request.record2id), action: 'cut', times: STICKY });
    await unavailable(fixture.services.connections.create(request, alice));
    fixture.proxy.clear();
    const result = await fixture.services.consistency.walk({ repair: true, graceMs: 0 });
    expect(result.violations.map((violation) => violation.kind)).toEqual(['missing-derived-half']);
    expect(
      (await fixture.services.connections.list({ recordId: request.record2id }, alice, { top: 10 })).items,
    ).toHaveLength(1);
  });

  it('survives a response lost after storage applied the commit (a timeout): created, no second pair', async () => {
    const request = ordered();
    fixture.proxy.add({
      match: (r) => isBatch(r) && touchesPartition(request.record1id)(r),
      action: 'cut-after',
      times: 1,
    });
    const result = await fixture.services.connections.create(request, alice);
    expect(result).toMatchObject({ created: true, half: { record1id: request.record1id } });
    expect(
      (await fixture.services.connections.list({ recordId: request.record1id }, alice, { top: 10 })).items,
    ).toHaveLength(1);
    expect(
      (await fixture.services.connections.list({ recordId: request.record2id }, alice, { top: 10 })).items,
    ).toHaveLength(1);
  });

  it('absorbs throttling the SDK retries away, and reports throttling that lasts as a 503 with Retry-After', async () => {
    fixture.proxy.add({ match: isBatch, action: 'fail', status: 503, times: 2 });
    await expect(fixture.services.connections.create(input(), alice)).resolves.toMatchObject({ created: true });
    fixture.proxy.clear();
    fixture.proxy.add({ match: isBatch, action: 'fail', status: 503 });
    const error = await unavailable(fixture.services.connections.create(input(), alice));
    expect(error.extra.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('leaves a role index entry to the retry or the repair job when the index write fails', async () => {
    const { role } = await fixture.services.roles.create({ name: 'Auditor', category: 5, objecttypecodes: [] }, admin);
    // The entries fail, not the reservation made before the commit (a failed reservation stops the create).
    const isReservation = (request: SeenRequest) => request.path.includes("RowKey='r_");
    fixture.proxy.add({
      match: (request) => inTable(fixture.services.tables.roleIndex.tableName)(request) && !isReservation(request),
      action: 'fail',
      status: 500,
    });
    await unavailable(fixture.services.connections.create(input({ record1roleid: role.connectionroleid }), alice));
    fixture.proxy.clear();
    expect(await kinds()).toEqual(['missing-index']);
  });
});

describe('update, share and delete', () => {
  it("a failed write of the other half on update is finished by the client's retry", async () => {
    const { half } = await fixture.services.connections.create(ordered(), alice);
    fixture.proxy.add({ match: writesTo(half.record2id), action: 'fail', status: 500, times: STICKY });
    await unavailable(
      fixture.services.connections.update(
        half.record1id,
        half.connectionid,
        updateConnectionSchema.parse({ description: 'new' }),
        alice,
      ),
    );
    expect(await kinds()).toEqual(['lagging-derived-half']);
    await fixture.services.connections.update(
      half.record1id,
      half.connectionid,
      updateConnectionSchema.parse({ description: 'new' }),
      alice,
    );
    expect((await fixture.services.connections.get(half.record2id, half.relatedconnectionid, alice)).description).toBe(
      'new',
    );
  });

  it('a failed write of the other half on grant leaves the halves apart until the retry or the repair job', async () => {
    const { half } = await fixture.services.connections.create(ordered(), alice);
    fixture.proxy.add({ match: writesTo(half.record2id), action: 'cut', times: STICKY });
    await unavailable(
      fixture.services.connections.grantAccess(half.record1id, half.connectionid, alice, {
        principalid: randomUUID(),
        principaltype: 'team',
        accessmask: 1,
      }),
    );
    fixture.proxy.clear();
    expect(await kinds()).toEqual(['lagging-derived-half']);
  });

  it('a delete interrupted after its commit is finished by a change through the other half, or the repair job', async () => {
    const { half } = await fixture.services.connections.create(ordered(), alice);
    fixture.proxy.add({ match: writesTo(half.record2id), action: 'fail', status: 500, times: STICKY });
    await unavailable(fixture.services.connections.delete(half.record1id, half.connectionid, alice));
    fixture.proxy.clear();
    expect(await kinds()).toEqual(['lagging-derived-half']);
    // Touching the other half finishes the delete.
    await expect(
      fixture.services.connections.update(
        half.record2id,
        half.relatedconnectionid,
        updateConnectionSchema.parse({ description: 'x' }),
        alice,
      ),
    ).rejects.toMatchObject({ kind: 'not-found' });
    expect(await kinds()).toEqual([]);
    expect((await fixture.services.connections.list({ recordId: half.record2id }, alice, { top: 10 })).items).toEqual(
      [],
    );
  });

  it('a delete whose index writes fail is finished by its retry, which answers as the first attempt would have', async () => {
    const { role } = await fixture.services.roles.create({ name: 'Witness', category: 5, objecttypecodes: [] }, admin);
    const { half } = await fixture.services.connections.create(input({ record1roleid: role.connectionroleid }), alice);
    fixture.proxy.add({ match: inTable(fixture.services.tables.roleIndex.tableName), action: 'fail', status: 500 });
    await unavailable(fixture.services.connections.delete(half.record1id, half.connectionid, alice));
    fixture.proxy.clear();
    await fixture.services.connections.delete(half.record1id, half.connectionid, alice);
    await expect(fixture.services.connections.get(half.record1id, half.connectionid, alice)).rejects.toMatchObject({
      kind: 'not-found',
    });
    expect(
      (await fixture.services.connections.listByRole({ roleid: role.connectionroleid }, admin, { top: 10 })).items,
    ).toEqual([]);
  });

  it('a cascade delete interrupted halfway is finished by running it again', async () => {
    const hub = randomUUID();
    for (let index = 0; index < 12; index++)
      await fixture.services.connections.create(
        input(index % 2 ? { record1id: hub } : { record2id: hub, record1objecttypecode: 'contact' }),
        alice,
      );
    // Parallel deletes: fail every write after the first three.
    fixture.proxy.add({ match: (r) => r.method !== 'GET', action: 'fail', status: 500, skip: 3 });
    await unavailable(fixture.services.connections.deleteAllOf(hub, admin));
    fixture.proxy.clear();
    expect(await fixture.services.connections.deleteAllOf(hub, admin)).toBeGreaterThan(0);
    expect((await fixture.services.connections.list({ recordId: hub }, admin, { top: 100 })).items).toEqual([]);
  });
});

describe('the repair job', () => {
  it('works in slices that resume where they stopped', async () => {
    const broken: string[] = [];
    for (let index = 0; index < 6; index++) {
      const request = ordered();
      fixture.proxy.add({ match: writesTo(request.record2id), action: 'fail', status: 500, times: STICKY });
      await unavailable(fixture.services.connections.create(request, alice));
      fixture.proxy.clear();
      broken.push(request.record2id);
    }
    let slices = 0;
    let repaired = 0;
    let next = await fixture.services.consistency.walk({ repair: true, graceMs: 0, deadline: 0 });
    repaired += next.repaired;
    while (next.next) {
      slices++;
      await fixture.services.consistency.saveCheckpoint(next.next);
      const from = await fixture.services.consistency.loadCheckpoint();
      next = await fixture.services.consistency.walk({ repair: true, graceMs: 0, deadline: 0, ...(from && { from }) });
      repaired += next.repaired;
    }
    await fixture.services.consistency.saveCheckpoint(undefined);
    expect(slices).toBeGreaterThan(0);
    expect(repaired).toBe(6);
    for (const record of broken)
      expect((await fixture.services.connections.list({ recordId: record }, admin, { top: 10 })).items).toHaveLength(1);
  });

  it('keeps tombstones through the grace period, then purges them', async () => {
    const { half } = await fixture.services.connections.create(ordered(), alice);
    await fixture.services.connections.delete(half.record1id, half.connectionid, alice);
    const early = await fixture.services.consistency.walk({ repair: true, graceMs: 60_000 });
    expect(early.purged).toBe(0);
    expect(early.skippedRecent).toBeGreaterThan(0);
    const late = await fixture.services.consistency.walk({ repair: true, graceMs: 0 });
    expect(late.purged).toBeGreaterThan(0);
  });
});
