import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { createConnectionSchema, reciprocalOf, updateConnectionSchema } from '../../shared/domain/connection';
import { createServices, type Services } from '../../shared/useCases/services';
import { alice, bob, testSettings } from '../support/storage';

let services: Services;
beforeAll(async () => {
  services = createServices(testSettings());
  await services.ready();
});

const connect = () =>
  services.connections.create(
    createConnectionSchema.parse({
      record1id: randomUUID(),
      record1objecttypecode: 'account',
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    }),
    alice,
  );

async function bothHalves(master: {
  record1id: string;
  connectionid: string;
  record2id: string;
  relatedconnectionid: string;
}) {
  const admin: Caller = { ...alice, isAdmin: true };
  const first = await services.connections.get(master.record1id, master.connectionid, admin);
  const second = await services.connections.get(master.record2id, master.relatedconnectionid, admin);
  return { first, second };
}

describe('shares under concurrency', () => {
  it('stay equal on both halves under parallel grants and revokes', async () => {
    const { half } = await connect();
    const principals = Array.from({ length: 20 }, () => randomUUID());
    await Promise.all(
      principals.map((principalid, index) =>
        services.connections.grantAccess(
          index % 2 ? half.record1id : half.record2id,
          index % 2 ? half.connectionid : half.relatedconnectionid,
          alice,
          {
            principalid,
            principaltype: 'systemuser',
            accessmask: 1,
          },
        ),
      ),
    );
    let { first, second } = await bothHalves(half);
    expect(first.shares.map((share) => share.principalid).sort()).toEqual([...principals].sort());
    expect(second).toEqual(reciprocalOf(first));

    await Promise.all([
      ...principals
        .slice(0, 10)
        .map((principalid) => services.connections.revokeAccess(half.record1id, half.connectionid, alice, principalid)),
      ...principals.slice(10).map((principalid) =>
        services.connections.grantAccess(half.record2id, half.relatedconnectionid, alice, {
          principalid,
          principaltype: 'systemuser',
          accessmask: 65536,
        }),
      ),
      services.connections.update(
        half.record1id,
        half.connectionid,
        updateConnectionSchema.parse({ description: 'during sharing' }),
        alice,
      ),
    ]);
    ({ first, second } = await bothHalves(half));
    expect(first.shares).toHaveLength(10);
    expect(first.shares.every((share) => share.accessmask === 65537)).toBe(true);
    expect(first.description).toBe('during sharing');
    expect(second).toEqual(reciprocalOf(first));
  });

  it('travel into the role index, so role queries hide what the caller may not read', async () => {
    const admin: Caller = { ...alice, isAdmin: true };
    const { role } = await services.roles.create({ name: 'Observer', category: 5, objecttypecodes: [] }, admin);
    const created = await services.connections.create(
      createConnectionSchema.parse({
        record1id: randomUUID(),
        record1objecttypecode: 'account',
        record1roleid: role.connectionroleid,
        record2id: randomUUID(),
        record2objecttypecode: 'contact',
      }),
      alice,
    );
    const asBob = () =>
      services.connections.listByRole({ roleid: role.connectionroleid }, bob, { top: 10, count: true });
    expect(await asBob()).toMatchObject({ items: [], count: 0 });
    await services.connections.grantAccess(created.half.record1id, created.half.connectionid, alice, {
      principalid: bob.id,
      principaltype: 'systemuser',
      accessmask: 1,
    });
    const visible = await asBob();
    expect(visible.count).toBe(1);
    expect(visible.items[0]?.connectionid).toBe(created.half.connectionid);
  });
});
