import { describe, expect, it } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { type ConnectionHalf, createConnectionSchema, reciprocalOf } from '../../shared/domain/connection';
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';
import { authoritativeOf } from '../../shared/protocol/copies';
import { createDomain } from '../../shared/useCases/services';
import { fromStored, guardRowKey, halfRowKey, toEntity } from '../../shared/storage/connectionStore';
import { indexRowKey } from '../../shared/storage/roleIndexStore';
import { StorageError, type TablePort } from '../../shared/storage/tablePort';
import { Scheduler } from '../../dev/simulation/scheduler';
import { SimTableService } from '../../dev/simulation/simTable';
import { TABLES } from '../../dev/simulation/workload';

/**
 * The repair job against states the protocol itself cannot produce but older data, or a bug, could:
 * built directly in the simulated tables, then repaired; the checker must then find nothing and the
 * tables must say what the fixed rules say.
 */
const A = '1aaaaaaa-0000-4000-8000-000000000001';
const B = '2bbbbbbb-0000-4000-8000-000000000002';
const alice: Caller = { id: 'a11ce000-0000-4000-8000-000000000001', teams: [], isAdmin: false };
const admin: Caller = { ...alice, isAdmin: true };
const ROLE = 'e0000000-0000-4000-8000-00000000000e';

async function world() {
  const service = new SimTableService();
  const scheduler = new Scheduler({ seed: 1 });
  const table = scheduler.tables(service);
  const tables = {
    connections: table(TABLES.connections),
    roles: table(TABLES.roles),
    roleIndex: table(TABLES.roleIndex),
  };
  const domain = createDomain(tables, buildObjectTypeRegistry('base'), {
    clock: () => scheduler.now(),
    protocol: { sleep: (ms) => scheduler.sleep(ms), random: () => scheduler.random() },
    log: () => undefined,
  });
  const run = async <T>(action: () => Promise<T>): Promise<T> => {
    const [outcome] = await scheduler.run([action]);
    if (outcome?.kind !== 'ok') throw outcome?.kind === 'error' ? outcome.error : new Error('crashed');
    return outcome.value;
  };
  const create = (id: string, body: Record<string, unknown> = {}) =>
    run(
      async () =>
        (
          await domain.connections.create(
            createConnectionSchema.parse({
              connectionid: id,
              record1id: A,
              record1objecttypecode: 'account',
              record2id: B,
              record2objecttypecode: 'contact',
              ...body,
            }),
            alice,
          )
        ).half,
    );
  const raw = (name: string, partitionKey: string, rowKey: string) =>
    service.dump(name).find((stored) => stored.entity.partitionKey === partitionKey && stored.entity.rowKey === rowKey);
  const repairAndCheck = async () => {
    await run(() => domain.consistency.walk({ repair: true, graceMs: 0 }));
    await run(() => domain.consistency.walk({ repair: true, graceMs: 0 }));
    return run(() => domain.consistency.walk({ repair: false, graceMs: 0 }));
  };
  return { service, domain, run, create, raw, repairAndCheck, tables };
}

describe('the repair job on states only older data or a bug can leave', () => {
  it('resolves a duplicate active pair by its fixed rule: the earliest created stays active, with the guard', async () => {
    const w = await world();
    const first = await w.create('c1c1c1c1-0000-4000-8000-000000000001');
    // A second active connection with the same records and roles, written around the guard.
    const second: ConnectionHalf = {
      ...first,
      connectionid: 'c2c2c2c2-0000-4000-8000-000000000002',
      relatedconnectionid: 'd2d2d2d2-0000-4000-8000-000000000002',
      createdon: '2031-01-01T00:00:00.000Z',
    };
    const copy = (half: ConnectionHalf) => ({ half, tombstone: false, lastop: '', indexed: [] });
    w.service.put(TABLES.connections, toEntity(copy(second)));
    w.service.put(TABLES.connections, toEntity(copy(reciprocalOf(second))));
    // The guard names the later one.
    w.service.put(TABLES.connections, {
      partitionKey: A,
      rowKey: guardRowKey(first),
      connectionid: second.connectionid,
      relatedconnectionid: second.relatedconnectionid,
    });
    const report = await w.run(() => w.domain.consistency.walk({ repair: false, graceMs: 0 }));
    expect(report.violations.map((violation) => violation.kind)).toContain('duplicate-active');
    expect((await w.repairAndCheck()).violations).toEqual([]);
    const state = (id: string) => fromStored(w.raw(TABLES.connections, A, halfRowKey(id))!).half.statecode;
    expect([state(first.connectionid), state(second.connectionid)]).toEqual([0, 1]);
    expect(w.raw(TABLES.connections, A, guardRowKey(first))?.entity.connectionid).toBe(first.connectionid);
  });

  it('removes a guard that names nothing, and restores one an active connection lost', async () => {
    const w = await world();
    const half = await w.create('c1c1c1c1-0000-4000-8000-000000000001');
    w.service.put(TABLES.connections, {
      partitionKey: A,
      rowKey: `u_${B}_x_y`,
      connectionid: 'ffffffff-0000-4000-8000-000000000000',
      relatedconnectionid: 'x',
    });
    const guard = w.raw(TABLES.connections, A, guardRowKey(half))!;
    w.service
      .table(TABLES.connections)
      .writeNow({ op: 'delete', partitionKey: A, rowKey: guard.entity.rowKey, etag: '*' });
    const kinds = (await w.run(() => w.domain.consistency.walk({ repair: false, graceMs: 0 }))).violations
      .map((violation) => violation.kind)
      .sort();
    expect(kinds).toEqual(['missing-guard', 'orphan-guard']);
    expect((await w.repairAndCheck()).violations).toEqual([]);
    expect(w.raw(TABLES.connections, A, guardRowKey(half))?.entity.connectionid).toBe(half.connectionid);
    expect(w.raw(TABLES.connections, A, `u_${B}_x_y`)).toBeUndefined();
  });

  it('ends a derived half with no authority (an unfinished delete of older data), and rewrites one ahead of its authority', async () => {
    const w = await world();
    const kept = await w.create('c1c1c1c1-0000-4000-8000-000000000001');
    // A lone derived half of a connection whose authoritative half is gone.
    const lone = reciprocalOf({
      ...kept,
      connectionid: 'c3c3c3c3-0000-4000-8000-000000000003',
      relatedconnectionid: 'd3d3d3d3-0000-4000-8000-000000000003',
    });
    w.service.put(TABLES.connections, toEntity({ half: lone, tombstone: false, lastop: '', indexed: [] }));
    // The derived half of `kept`, ahead of its authority with other content (garbage of an earlier incarnation).
    const derived = reciprocalOf(authoritativeOf(kept));
    w.service.put(
      TABLES.connections,
      toEntity({
        half: { ...derived, description: 'stale', versionnumber: 9 },
        tombstone: false,
        lastop: '',
        indexed: [],
      }),
    );
    const kinds = (await w.run(() => w.domain.consistency.walk({ repair: false, graceMs: 0 }))).violations
      .map((violation) => violation.kind)
      .sort();
    expect(kinds).toEqual(['derived-copy-mismatch', 'orphan-derived-half']);
    expect((await w.repairAndCheck()).violations).toEqual([]);
    expect(w.raw(TABLES.connections, B, halfRowKey(lone.connectionid))).toBeUndefined();
    const repaired = fromStored(w.raw(TABLES.connections, B, halfRowKey(derived.connectionid))!);
    expect(repaired.half).toEqual(derived);
  });

  it('removes an index entry that belongs to no connection, and writes one a connection lacks', async () => {
    const w = await world();
    await w.run(async () => {
      await w.domain.roles.create({ connectionroleid: ROLE, name: 'Peer', category: 5, objecttypecodes: [] }, admin);
      await w.domain.roles.addMatch(ROLE, ROLE, admin);
    });
    const half = await w.create('c1c1c1c1-0000-4000-8000-000000000001', { record1roleid: ROLE });
    const stray = { ...half, connectionid: 'c4c4c4c4-0000-4000-8000-000000000004' };
    w.service.put(
      TABLES.roleIndex,
      toEntity({ half: stray, tombstone: false, lastop: '', indexed: [] }, ROLE, indexRowKey(stray)),
    );
    w.service
      .table(TABLES.roleIndex)
      .writeNow({ op: 'delete', partitionKey: ROLE, rowKey: indexRowKey(half), etag: '*' });
    const kinds = (await w.run(() => w.domain.consistency.walk({ repair: false, graceMs: 0 }))).violations
      .map((violation) => violation.kind)
      .sort();
    expect(kinds).toEqual(['missing-index', 'orphan-index']);
    expect((await w.repairAndCheck()).violations).toEqual([]);
    expect(w.raw(TABLES.roleIndex, ROLE, indexRowKey(stray))).toBeUndefined();
    expect(w.raw(TABLES.roleIndex, ROLE, indexRowKey(half))).toBeDefined();
  });

  it('isolates a row it cannot check: counts it, goes on with the others, and does not stop', async () => {
    const w = await world();
    const bad = await w.create('c1c1c1c1-0000-4000-8000-000000000001');
    const good = await w.create('c3c3c3c3-0000-4000-8000-000000000003', {
      record1id: '0aaaaaaa-0000-4000-8000-000000000009',
    });
    // Break the derived half of `good` so the job has something to repair, and make every read of `bad`'s derived half fail.
    const goodDerived = reciprocalOf(authoritativeOf(good));
    w.service.table(TABLES.connections).writeNow({
      op: 'delete',
      partitionKey: goodDerived.record1id,
      rowKey: halfRowKey(goodDerived.connectionid),
      etag: '*',
    });
    const badDerivedKey = halfRowKey(reciprocalOf(authoritativeOf(bad)).connectionid);
    const failing: TablePort = {
      ...w.tables.connections,
      get: (partitionKey, rowKey) =>
        rowKey === badDerivedKey
          ? Promise.reject(new StorageError(500, 'broken row'))
          : w.tables.connections.get(partitionKey, rowKey),
      write: (op) => w.tables.connections.write(op),
      batch: (ops) => w.tables.connections.batch(ops),
      query: (query, page) => w.tables.connections.query(query, page),
    };
    const domain = createDomain({ ...w.tables, connections: failing }, buildObjectTypeRegistry('base'), {
      clock: () => new Date('2030-01-02'),
      protocol: { sleep: async () => undefined, random: () => 0.5 },
      log: () => undefined,
    });
    const result = await w.run(() => domain.consistency.walk({ repair: true, graceMs: 0 }));
    expect(result.failed).toBeGreaterThan(0);
    expect(result.violations.map((violation) => violation.kind)).toContain('missing-derived-half');
    expect(w.raw(TABLES.connections, goodDerived.record1id, halfRowKey(goodDerived.connectionid))).toBeDefined();
  });
});
