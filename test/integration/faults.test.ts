import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Caller } from '../../shared/caller';
import { createConnectionSchema, reciprocalOf, updateConnectionSchema } from '../../shared/connection';
import type { DomainError } from '../../shared/errors';
import { asDomainError } from '../../shared/storage/errors';
import { createServices, type Services } from '../../shared/services';
import { type FaultProxy, inTable, isBatch, startFaultProxy, touchesPartition } from '../../scripts/faultProxy';
import { alice, uniqueTableName } from '../support/storage';
import { readSettings } from '../../shared/settings';

// The app's services talk to Azurite through the fault proxy; each case breaks one write of an
// operation, then shows the client's retry or the repair job brings the tables back to the invariant.
let proxy: FaultProxy;
let services: Services;
const admin: Caller = { ...alice, isAdmin: true };
// The SDK retries a failed request three times: four failures in a row make a failure stick.
const STICKY = 4;

beforeAll(async () => {
  proxy = await startFaultProxy(inject('azuriteConnectionString'));
  services = createServices(readSettings({ DataTables__connectionString: proxy.connectionString, TABLE_NAME_PREFIX: uniqueTableName('faults') }));
  await services.ready();
});
afterEach(async () => {
  proxy.clear();
  // Whatever a case broke, the repair job restores it and the checker then finds nothing.
  await services.consistency.walk({ repair: true, graceMs: 0 });
  expect((await services.consistency.walk({ repair: false, graceMs: 0 })).violations).toEqual([]);
});
afterAll(async () => proxy.close());

const input = (body: Record<string, unknown> = {}) =>
  createConnectionSchema.parse({ record1id: randomUUID(), record1objecttypecode: 'account', record2id: randomUUID(), record2objecttypecode: 'contact', ...body });

async function unavailable(action: Promise<unknown>): Promise<DomainError> {
  try {
    await action;
  } catch (error) {
    // What the HTTP layer answers for it: every storage failure becomes a 503 problem.
    const mapped = asDomainError(error);
    if (mapped?.kind === 'unavailable') return mapped;
    throw error;
  }
  throw new Error('expected a 503');
}

const kinds = async () => (await services.consistency.walk({ repair: false, graceMs: 0 })).violations.map((violation) => violation.kind).sort();

describe('create', () => {
  it('fails with a 503 when the twin cannot be written; the retry with the same id completes the pair', async () => {
    const request = input({ connectionid: randomUUID() });
    proxy.add({ match: (r) => isBatch(r) && touchesPartition(request.record2id)(r), action: 'fail', status: 500, times: STICKY });
    await unavailable(services.connections.create(request, alice));
    expect(await kinds()).toEqual(['missing-twin']);
    const retried = await services.connections.create(request, alice);
    expect(retried.created).toBe(false);
    expect(await services.connections.get(request.record2id, retried.half.relatedconnectionid, alice)).toEqual(reciprocalOf(retried.half));
  });

  it('is completed by the repair job when the client never retries', async () => {
    const request = input();
    proxy.add({ match: (r) => isBatch(r) && touchesPartition(request.record2id)(r), action: 'cut', times: STICKY });
    await unavailable(services.connections.create(request, alice));
    proxy.clear();
    const result = await services.consistency.walk({ repair: true, graceMs: 0 });
    expect(result.violations.map((violation) => violation.kind)).toEqual(['missing-twin']);
    const page = await services.connections.list({ recordId: request.record2id }, alice, { top: 10 });
    expect(page.items).toHaveLength(1);
  });

  it('survives a response lost after storage applied the write (a timeout): no second pair', async () => {
    const request = input();
    proxy.add({ match: (r) => isBatch(r) && touchesPartition(request.record1id)(r), action: 'cut-after', times: 1 });
    const result = await services.connections.create(request, alice);
    expect(result.half.record1id).toBe(request.record1id);
    expect((await services.connections.list({ recordId: request.record1id }, alice, { top: 10 })).items).toHaveLength(1);
    expect((await services.connections.list({ recordId: request.record2id }, alice, { top: 10 })).items).toHaveLength(1);
  });

  it('absorbs throttling the SDK retries away, and reports throttling that lasts as a 503 with Retry-After', async () => {
    proxy.add({ match: isBatch, action: 'fail', status: 503, times: 2 });
    await expect(services.connections.create(input(), alice)).resolves.toMatchObject({ created: true });
    proxy.clear();
    proxy.add({ match: isBatch, action: 'fail', status: 503 });
    const error = await unavailable(services.connections.create(input(), alice));
    expect(error.extra.retryAfterSeconds).toBeGreaterThan(0);
  });

  it('leaves a role index entry to the repair job when the index write fails', async () => {
    const { role } = await services.roles.create({ name: 'Auditor', category: 5, objecttypecodes: [] }, admin);
    proxy.add({ match: inTable(services.tables.roleIndex.tableName), action: 'fail', status: 500 });
    await unavailable(services.connections.create(input({ record1roleid: role.connectionroleid }), alice));
    proxy.clear();
    expect(await kinds()).toEqual(['missing-index']);
  });
});

describe('update, share and delete', () => {
  it('a failed twin write on update is finished by the client\'s retry', async () => {
    const { half } = await services.connections.create(input(), alice);
    proxy.add({ match: (r) => isBatch(r) && touchesPartition(half.record2id)(r), action: 'fail', status: 500, times: STICKY });
    await unavailable(services.connections.update(half.record1id, half.connectionid, updateConnectionSchema.parse({ description: 'new' }), alice));
    expect(await kinds()).toEqual(['twin-mismatch']);
    await services.connections.update(half.record1id, half.connectionid, updateConnectionSchema.parse({ description: 'new' }), alice);
    expect((await services.connections.get(half.record2id, half.relatedconnectionid, alice)).description).toBe('new');
  });

  it('a failed twin write on grant leaves the halves apart until the retry or the repair job', async () => {
    const { half } = await services.connections.create(input(), alice);
    proxy.add({ match: (r) => isBatch(r) && touchesPartition(half.record2id)(r), action: 'cut', times: STICKY });
    await unavailable(services.connections.grantAccess(half.record1id, half.connectionid, alice, { principalid: randomUUID(), principaltype: 'team', accessmask: 1 }));
    proxy.clear();
    expect(await kinds()).toEqual(['twin-mismatch']);
  });

  it('a delete interrupted after the master went is finished by read repair or the repair job', async () => {
    const { half } = await services.connections.create(input(), alice);
    proxy.add({ match: (r) => touchesPartition(half.record2id)(r) && r.method === 'POST', action: 'fail', status: 500, times: STICKY });
    await unavailable(services.connections.delete(half.record1id, half.connectionid, alice));
    proxy.clear();
    expect(await kinds()).toEqual(['orphan-twin']);
    // Touching the twin finishes the delete.
    await expect(services.connections.update(half.record2id, half.relatedconnectionid, updateConnectionSchema.parse({ description: 'x' }), alice)).rejects.toMatchObject({ kind: 'not-found' });
    expect(await kinds()).toEqual([]);
  });

  it('a delete whose index removal fails deletes nothing and can be retried', async () => {
    const { role } = await services.roles.create({ name: 'Witness', category: 5, objecttypecodes: [] }, admin);
    const { half } = await services.connections.create(input({ record1roleid: role.connectionroleid }), alice);
    proxy.add({ match: inTable(services.tables.roleIndex.tableName), action: 'fail', status: 500, times: STICKY });
    await unavailable(services.connections.delete(half.record1id, half.connectionid, alice));
    proxy.clear();
    await services.connections.delete(half.record1id, half.connectionid, alice);
    await expect(services.connections.get(half.record1id, half.connectionid, alice)).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('a cascade delete interrupted halfway is finished by running it again', async () => {
    const hub = randomUUID();
    for (let index = 0; index < 12; index++) await services.connections.create(input(index % 2 ? { record1id: hub } : { record2id: hub, record1objecttypecode: 'contact' }), alice);
    // Parallel deletes each retry: fail every write elsewhere after the first three.
    proxy.add({ match: (r) => r.method === 'POST' && !touchesPartition(hub)(r), action: 'fail', status: 500, skip: 3 });
    await unavailable(services.connections.deleteAllOf(hub, admin));
    proxy.clear();
    expect(await services.connections.deleteAllOf(hub, admin)).toBeGreaterThan(0);
    expect((await services.connections.list({ recordId: hub }, admin, { top: 100 })).items).toEqual([]);
  });
});

describe('the repair job', () => {
  it('works in slices that resume where they stopped', async () => {
    const broken: string[] = [];
    for (let index = 0; index < 6; index++) {
      const request = input();
      proxy.add({ match: (r) => isBatch(r) && touchesPartition(request.record2id)(r), action: 'fail', status: 500, times: STICKY });
      await unavailable(services.connections.create(request, alice));
      broken.push(request.record2id);
    }
    proxy.clear();
    let slices = 0;
    let repaired = 0;
    let next = await services.consistency.walk({ repair: true, graceMs: 0, deadline: 0 });
    repaired += next.repaired;
    while (next.next) {
      slices++;
      await services.consistency.saveCheckpoint(next.next);
      const from = await services.consistency.loadCheckpoint();
      next = await services.consistency.walk({ repair: true, graceMs: 0, deadline: 0, ...(from && { from }) });
      repaired += next.repaired;
    }
    await services.consistency.saveCheckpoint(undefined);
    expect(slices).toBeGreaterThan(3);
    expect(repaired).toBe(6);
    for (const record of broken) expect((await services.connections.list({ recordId: record }, admin, { top: 10 })).items).toHaveLength(1);
  });

  it('leaves rows written within the grace period to the operations writing them', async () => {
    const request = input();
    proxy.add({ match: (r) => isBatch(r) && touchesPartition(request.record2id)(r), action: 'fail', status: 500, times: STICKY });
    await unavailable(services.connections.create(request, alice));
    proxy.clear();
    const early = await services.consistency.walk({ repair: true, graceMs: 60_000 });
    expect(early.repaired).toBe(0);
    expect(early.skippedRecent).toBeGreaterThan(0);
  });
});
