import { describe, expect, it } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { createConnectionSchema, etagOf, reciprocalOf, updateConnectionSchema } from '../../shared/domain/connection';
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';
import { createDomain } from '../../shared/useCases/services';
import { halfRowKey } from '../../shared/storage/connectionStore';
import { StorageError, type TablePort, type WriteOp } from '../../shared/storage/tablePort';
import { SimTableService } from '../../dev/simulation/simTable';
import { TABLES } from '../../dev/simulation/workload';
import { rejection } from '../support/errors';

/**
 * The use cases judge what the protocol hands them (prefetch, decide, write): these pin the answers the
 * simulation does not compare (who is named, what a refusal says) at the points where a judgement moved
 * from a protocol callback into a use case: every round of a change decided again on its own read, a
 * repeat judged by access, a taken pair named only to a caller who may read its holder.
 */
const A = '1aaaaaaa-0000-4000-8000-000000000001';
const B = '2bbbbbbb-0000-4000-8000-000000000002';
const alice: Caller = { id: 'a11ce000-0000-4000-8000-000000000001', teams: [], isAdmin: false };
const bob: Caller = { id: 'b0b00000-0000-4000-8000-000000000002', teams: [], isAdmin: false };
const admin: Caller = { id: 'ad000000-0000-4000-8000-00000000000a', teams: [], isAdmin: true };
const C1 = 'c1c1c1c1-0000-4000-8000-000000000001';
const C2 = 'c2c2c2c2-0000-4000-8000-000000000002';
const C3 = 'c3c3c3c3-0000-4000-8000-000000000003';

/** A table that runs `before` once, just before the first batch `when` picks, then sends that batch. */
function intercepting(inner: TablePort) {
  let hook: { when: (ops: WriteOp[]) => boolean; before: () => Promise<void> } | undefined;
  let after: ((ops: WriteOp[]) => boolean) | undefined;
  const table: TablePort = {
    get: (partitionKey, rowKey) => inner.get(partitionKey, rowKey),
    write: (op) => inner.write(op),
    query: (query, page) => inner.query(query, page),
    async batch(ops) {
      if (hook?.when(ops)) {
        const { before } = hook;
        hook = undefined;
        await before();
      }
      await inner.batch(ops);
      // The SDK resent a batch whose answer was lost: the resend fails on the ETag the first one moved.
      if (after?.(ops)) {
        after = undefined;
        throw new StorageError(412, 'simulated: the resend of a commit that landed');
      }
    },
  };
  return {
    table,
    beforeBatch: (when: (ops: WriteOp[]) => boolean, before: () => Promise<void>) => (hook = { when, before }),
    lostAnswer: (when: (ops: WriteOp[]) => boolean) => (after = when),
  };
}

const commitOf =
  (partitionKey: string, connectionId: string) =>
  (ops: WriteOp[]): boolean =>
    ops[0]?.op === 'replace' &&
    ops[0].entity.partitionKey === partitionKey &&
    ops[0].entity.rowKey === halfRowKey(connectionId);

function world() {
  const service = new SimTableService();
  const connections = intercepting(service.table(TABLES.connections));
  const domain = createDomain(
    { connections: connections.table, roles: service.table(TABLES.roles), roleIndex: service.table(TABLES.roleIndex) },
    buildObjectTypeRegistry('base'),
    {
      clock: () => new Date(),
      protocol: { sleep: () => Promise.resolve(), random: Math.random },
      log: () => undefined,
    },
  );
  const input = (body: Record<string, unknown> = {}) =>
    createConnectionSchema.parse({
      connectionid: C1,
      record1id: A,
      record1objecttypecode: 'account',
      record2id: B,
      record2objecttypecode: 'contact',
      ...body,
    });
  return { connections, service: domain.connections, input };
}

const patch = (body: Record<string, unknown>) => updateConnectionSchema.parse(body);

describe('a change decided again after a lost race', () => {
  it("checks access again on the new state: an assign to bob landing first makes alice's PATCH not found", async () => {
    const w = world();
    const { half } = await w.service.create(w.input(), alice);
    // Alice's commit meets the assign: round 1 was decided while she owned it; round 2 must not reuse that.
    w.connections.beforeBatch(commitOf(A, C1), async () => {
      await w.service.update(A, C1, patch({ ownerid: bob.id }), admin);
    });
    const refused = await rejection(w.service.update(A, C1, patch({ description: 'mine' }), alice));
    expect(refused.code).toBe('ConnectionNotFound');
    const now = await w.service.get(A, C1, bob);
    expect(now.description).toBe(half.description);
    expect(now.ownerid).toBe(bob.id);
    expect(reciprocalOf(now)).toEqual(await w.service.get(B, now.relatedconnectionid, bob));
  });

  it('checks If-Match on the new state: a stale ETag after a lost race is 412, and nothing is written', async () => {
    const w = world();
    const { half } = await w.service.create(w.input(), alice);
    w.connections.beforeBatch(commitOf(A, C1), async () => {
      await w.service.update(B, half.relatedconnectionid, patch({ description: 'first' }), alice);
    });
    const refused = await rejection(w.service.update(A, C1, patch({ description: 'second' }), alice, [etagOf(half)]));
    expect(refused.kind).toBe('precondition-failed');
    expect((await w.service.get(A, C1, alice)).description).toBe('first');
  });

  it("a commit that landed and was answered 412 (the SDK resent it) is this call's change, answered once", async () => {
    const w = world();
    const { half } = await w.service.create(w.input(), alice);
    w.connections.lostAnswer(commitOf(A, C1));
    const updated = await w.service.update(A, C1, patch({ description: 'once' }), alice);
    expect(updated.versionnumber).toBe(half.versionnumber + 1);
    expect((await w.service.get(B, half.relatedconnectionid, alice)).description).toBe('once');
  });
});

describe('a create meeting a connection with its id (judgeRepeat)', () => {
  it('is refused to a caller who may not read it, even with the very same body, and names nothing else', async () => {
    const w = world();
    await w.service.create(w.input({ description: 'x' }), alice);
    const refused = await rejection(w.service.create(w.input({ description: 'x' }), bob));
    expect(refused.code).toBe('DuplicateRecord');
    expect(refused.extra.members).toEqual({ connectionid: C1 });
  });

  it('is answered with the existing connection (200) to a caller who may read it and sends the same body', async () => {
    const w = world();
    const { half } = await w.service.create(w.input({ description: 'x' }), alice);
    const repeat = await w.service.create(w.input({ description: 'x' }), admin);
    expect(repeat).toEqual({ half, created: false });
  });

  it('is refused to a caller who may read it but sends another body', async () => {
    const w = world();
    await w.service.create(w.input({ description: 'x' }), alice);
    expect((await rejection(w.service.create(w.input({ description: 'y' }), admin))).code).toBe('DuplicateRecord');
  });
});

describe('a taken pair', () => {
  it('met by a create: named to a caller who may read its holder, not to a stranger', async () => {
    const w = world();
    const { half } = await w.service.create(w.input(), alice);
    const stranger = await rejection(w.service.create(w.input({ connectionid: C2 }), bob));
    expect(stranger.code).toBe('ConnectionExists');
    expect(stranger.extra.members).toBeUndefined();
    expect(stranger.message).not.toContain(C1);
    // From the other direction, the holder is named as B sees it (C2 is still claimed by bob's refused create).
    const reader = await rejection(w.service.create(w.input({ connectionid: C3, record1id: B, record2id: A }), admin));
    expect(reader.extra.members).toEqual({ existingconnectionid: half.relatedconnectionid });
  });

  it('met by a reactivation (a change): named only to a caller who may read its holder', async () => {
    const w = world();
    await w.service.create(w.input(), alice);
    await w.service.update(A, C1, patch({ statecode: 1 }), alice);
    await w.service.create(w.input({ connectionid: C2 }), bob);
    const stranger = await rejection(w.service.update(A, C1, patch({ statecode: 0 }), alice));
    expect(stranger.code).toBe('ConnectionExists');
    expect(stranger.extra.members).toBeUndefined();
    const reader = await rejection(
      w.service.update(B, reciprocalOf(await w.service.get(A, C1, alice)).connectionid, patch({ statecode: 0 }), admin),
    );
    expect(reader.code).toBe('ConnectionExists');
    expect(reader.extra.members).toEqual({
      existingconnectionid: reciprocalOf(await w.service.get(A, C2, bob)).connectionid,
    });
  });
});
