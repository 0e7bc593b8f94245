import { describe, expect, it } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { createConnectionSchema, masterOf } from '../../shared/domain/connection';
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';
import type { PendingChange } from '../../shared/protocol/change';
import { createDomain } from '../../shared/useCases/services';
import { requestPrint } from '../../shared/useCases/connectionCommands';
import { SimTableService } from '../../dev/simulation/simTable';
import { TABLES } from '../../dev/simulation/workload';

/**
 * The protocol's boundary holds at run time, not only in the types: what a change read stays out of the
 * use case's reach (a handle carries nothing, and one not sealed by the protocol does not open), and a
 * decision can only change the connection, in the incarnation, that the protocol read.
 */
const A = '1aaaaaaa-0000-4000-8000-000000000001';
const B = '2bbbbbbb-0000-4000-8000-000000000002';
const C = '3ccccccc-0000-4000-8000-000000000003';
const C1 = 'c1c1c1c1-0000-4000-8000-000000000001';
const alice: Caller = { id: 'a11ce000-0000-4000-8000-000000000001', teams: [], isAdmin: false };

async function changeBegun() {
  const service = new SimTableService();
  const domain = createDomain(
    {
      connections: service.table(TABLES.connections),
      roles: service.table(TABLES.roles),
      roleIndex: service.table(TABLES.roleIndex),
    },
    buildObjectTypeRegistry('base'),
    {
      clock: () => new Date(),
      protocol: { sleep: () => Promise.resolve(), random: Math.random },
      log: () => undefined,
    },
  );
  const input = createConnectionSchema.parse({
    connectionid: C1,
    record1id: A,
    record1objecttypecode: 'account',
    record2id: B,
    record2objecttypecode: 'contact',
  });
  await domain.connections.create(input, alice);
  const step = await domain.protocol.beginChange(A, C1, { fingerprint: requestPrint.delete(alice, A, C1) });
  if (step.kind !== 'decide') throw new Error(`expected a decision, got ${step.kind}`);
  return { domain, step };
}

describe('sealed protocol state', () => {
  it('hands the use case an empty, frozen handle: nothing of what the protocol read can be read or changed', async () => {
    const { step } = await changeBegun();
    expect(Object.keys(step.pending)).toEqual([]);
    expect(Object.isFrozen(step.pending)).toBe(true);
  });

  it('opens only handles it sealed', async () => {
    const { domain, step } = await changeBegun();
    const forged = Object.freeze({}) as PendingChange;
    await expect(domain.protocol.commitChange(forged, { kind: 'keep' })).rejects.toThrow(/not sealed/);
    expect((await domain.connections.get(A, C1, alice)).versionnumber).toBe(step.current.versionnumber);
  });

  it('refuses a decision about another connection than the one it read, and writes nothing', async () => {
    const { domain, step } = await changeBegun();
    const elsewhere = masterOf({ ...step.current, record2id: C });
    await expect(domain.protocol.commitChange(step.pending, { kind: 'write', half: elsewhere })).rejects.toThrow(
      /the connection the protocol read/,
    );
    const now = await domain.connections.get(A, C1, alice);
    expect(now.record2id).toBe(B);
    expect(now.versionnumber).toBe(step.current.versionnumber);
  });
});
