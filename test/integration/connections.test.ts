import { TableClient } from '@azure/data-tables';
import { randomUUID } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createConnectionSchema, etagOf, reciprocalOf, updateConnectionSchema } from '../../shared/domain/connection';
import type { ConnectionService } from '../../shared/useCases/connections';
import type { DomainError } from '../../shared/domain/errors';
import { rejection } from '../support/errors';
import { authoritativeOf } from '../../shared/protocol/copies';
import { AzureTable } from '../../shared/storage/azureTable';
import { ConnectionStore, guardRowKey, toEntity } from '../../shared/storage/connectionStore';
import { createServices, type Services } from '../../shared/useCases/services';
import { alice, bob, countRequests, type RequestCounter, testSettings } from '../support/storage';

let client: TableClient;
let store: ConnectionStore;
let service: ConnectionService;
let requests: RequestCounter;
let services: Services;

beforeAll(async () => {
  services = createServices(testSettings());
  await services.ready();
  client = services.tables.connections;
  requests = countRequests(client);
  store = new ConnectionStore(new AzureTable(client));
  service = services.connections;
});
beforeEach(() => requests.reset());

const input = (body: Record<string, unknown> = {}) =>
  createConnectionSchema.parse({
    record1id: randomUUID(),
    record1objecttypecode: 'account',
    record2id: randomUUID(),
    record2objecttypecode: 'contact',
    ...body,
  });
const patch = (body: Record<string, unknown>) => updateConnectionSchema.parse(body);

const isAuditRow = (row: Record<string, unknown>): boolean => String(row.rowKey).startsWith('h_');

async function entitiesOf(partitionKey: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for await (const row of client.listEntities({ queryOptions: { filter: `PartitionKey eq '${partitionKey}'` } }))
    rows.push(row);
  return rows;
}

describe('creating a connection', () => {
  it('claims its id, then writes the master and its reciprocal: three storage requests', async () => {
    const request = input({ record1name: 'Contoso', record2name: 'Ada', description: 'met at a fair' });
    const { half, created } = await service.create(request, alice);
    expect(created).toBe(true);
    expect(requests.count).toBe(3);

    const fromTarget = await service.get(request.record2id, half.relatedconnectionid, alice);
    expect(fromTarget).toEqual(reciprocalOf(half));
    expect(fromTarget).toMatchObject({
      record1id: request.record2id,
      record2id: request.record1id,
      name: 'Contoso',
      ismaster: false,
    });
    expect(await service.get(request.record1id, half.connectionid, alice)).toEqual(half);
  });

  it('costs at most four storage requests to change or delete, through either half', async () => {
    const { half } = await service.create(input(), alice);
    const cost = async (action: () => Promise<unknown>) => {
      requests.reset();
      await action();
      return requests.count;
    };
    // Read the URL's half (and the authoritative one when the URL names the other), commit, then the
    // other half: read and fenced write (the read is saved when the URL named it).
    expect(
      await cost(() => service.update(half.record1id, half.connectionid, patch({ description: 'a' }), alice)),
    ).toBe(4);
    expect(
      await cost(() => service.update(half.record2id, half.relatedconnectionid, patch({ description: 'b' }), alice)),
    ).toBe(4);
    expect(
      await cost(() =>
        service.grantAccess(half.record1id, half.connectionid, alice, {
          principalid: bob.id,
          principaltype: 'systemuser',
          accessmask: 1,
        }),
      ),
    ).toBe(4);
    // A change that changes nothing writes nothing but still brings the other half along: reads only.
    expect(
      await cost(() => service.update(half.record1id, half.connectionid, patch({ description: 'b' }), alice)),
    ).toBe(2);
    expect(await cost(() => service.delete(half.record2id, half.relatedconnectionid, alice))).toBe(4);
  });

  it('reads one half with a single point read', async () => {
    const { half } = await service.create(input(), alice);
    requests.reset();
    await service.get(half.record1id, half.connectionid, alice);
    expect(requests.count).toBe(1);
  });

  it('answers a repeated identical create with the existing connection and no second pair', async () => {
    const request = input({ connectionid: randomUUID(), description: 'same' });
    const first = await service.create(request, alice);
    const again = await service.create(request, alice);
    expect(again).toEqual({ half: first.half, created: false });
    expect((await entitiesOf(request.record1id)).filter((row) => String(row.rowKey).startsWith('c_'))).toHaveLength(1);
    expect((await entitiesOf(request.record2id)).filter((row) => String(row.rowKey).startsWith('c_'))).toHaveLength(1);
  });

  it('refuses the same id with different content', async () => {
    const request = input({ connectionid: randomUUID() });
    await service.create(request, alice);
    const error = await rejection(service.create({ ...request, description: 'changed' }, alice));
    expect(error.code).toBe('DuplicateRecord');
  });

  it('finishes a create that stopped after its commit, when the client retries', async () => {
    const request = input({ connectionid: randomUUID() });
    const { half: master } = await service.create(request, alice);
    // As if the process had died between the commit and the other half.
    const derived = reciprocalOf(authoritativeOf(master));
    await client.deleteEntity(derived.record1id, `c_${derived.connectionid}`);
    const retried = await service.create(request, alice);
    expect(retried.created).toBe(false); // a repeat: answered with the existing connection
    expect(await service.get(request.record2id, master.relatedconnectionid, alice)).toEqual(reciprocalOf(master));
    expect((await service.create(request, bob).catch((error: DomainError) => error)) instanceof Error).toBe(true);
  });

  it('answers 200 to the same create from another caller who can read it', async () => {
    const request = input({ connectionid: randomUUID() });
    const { half: master } = await service.create(request, alice);
    const again = await service.create(request, { ...bob, isAdmin: true });
    expect(again.created).toBe(false);
    expect(await service.get(request.record2id, master.relatedconnectionid, alice)).toEqual(reciprocalOf(master));
  });

  it('refuses a second active connection with the same records and roles, naming the first', async () => {
    const admin = { ...alice, isAdmin: true };
    const role1 = (await services.roles.create({ name: 'Supplier', category: 1, objecttypecodes: [] }, admin)).role
      .connectionroleid;
    const role2 = (await services.roles.create({ name: 'Customer', category: 1, objecttypecodes: [] }, admin)).role
      .connectionroleid;
    const role3 = (await services.roles.create({ name: 'Partner', category: 1, objecttypecodes: [] }, admin)).role
      .connectionroleid;
    await services.roles.addMatch(role1, role2, admin);
    await services.roles.addMatch(role1, role3, admin);
    const request = input({ record1roleid: role1, record2roleid: role2 });
    const { half } = await service.create(request, alice);

    const duplicate = await rejection(service.create({ ...request, connectionid: randomUUID() }, alice));
    expect(duplicate.code).toBe('ConnectionExists');
    expect(duplicate.extra.members?.existingconnectionid).toBe(half.connectionid);
    // A caller who may not read it learns that the pair is taken, and nothing about the connection.
    const stranger = await rejection(service.create({ ...request, connectionid: randomUUID() }, bob));
    expect(stranger.code).toBe('ConnectionExists');
    expect(stranger.extra.members).toBeUndefined();
    expect(stranger.message).not.toContain(half.connectionid);

    // The same connection made from the other side is the same connection.
    const reversed = input({
      record1id: request.record2id,
      record1objecttypecode: 'contact',
      record1roleid: role2,
      record2id: request.record1id,
      record2objecttypecode: 'account',
      record2roleid: role1,
    });
    expect((await rejection(service.create(reversed, bob))).code).toBe('ConnectionExists');

    // Other roles make another connection.
    await expect(service.create({ ...request, record2roleid: role3 }, bob)).resolves.toMatchObject({ created: true });
  });

  it('allows a new connection once the old one is inactive, and then refuses to reactivate the old one', async () => {
    const request = input();
    const { half: old } = await service.create(request, alice);
    await service.update(old.record1id, old.connectionid, patch({ statecode: 1 }), alice);
    const { half: replacement } = await service.create(request, alice);
    const error = await rejection(service.update(old.record1id, old.connectionid, patch({ statecode: 0 }), alice));
    expect(error.code).toBe('ConnectionExists');
    expect(error.extra.members?.existingconnectionid).toBe(replacement.connectionid);
  });

  it('lets only one of many concurrent identical creates through', async () => {
    const request = input();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => service.create(request, alice)));
    const created = results.filter((result) => result.status === 'fulfilled');
    expect(created).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') expect((result.reason as DomainError).code).toBe('ConnectionExists');
    }
    const halves = (await entitiesOf(request.record1id)).filter((row) => String(row.rowKey).startsWith('c_'));
    expect(halves).toHaveLength(1);
  });
});

describe('updating a connection', () => {
  it('changes both halves, from either URL', async () => {
    const { half } = await service.create(input(), alice);
    const updated = await service.update(
      half.record2id,
      half.relatedconnectionid,
      patch({ description: 'via the reciprocal', effectivestart: '2026-01-01' }),
      { ...bob, isAdmin: true },
    );
    expect(updated).toMatchObject({
      connectionid: half.relatedconnectionid,
      description: 'via the reciprocal',
      versionnumber: 2,
      modifiedby: bob.id,
    });
    expect(await service.get(half.record1id, half.connectionid, alice)).toEqual(reciprocalOf(updated));
  });

  it('honours If-Match with the ETag of either half, and refuses a stale one', async () => {
    const { half } = await service.create(input(), alice);
    const stale = etagOf(half);
    const first = await service.update(half.record1id, half.connectionid, patch({ description: 'one' }), alice, [
      stale,
    ]);
    const error = await rejection(
      service.update(half.record2id, half.relatedconnectionid, patch({ description: 'two' }), alice, [stale]),
    );
    expect(error.kind).toBe('precondition-failed');
    await expect(
      service.update(half.record2id, half.relatedconnectionid, patch({ description: 'two' }), alice, [etagOf(first)]),
    ).resolves.toMatchObject({ description: 'two' });
    expect((await service.get(half.record1id, half.connectionid, alice)).description).toBe('two');
  });

  it('keeps inactive connections read-only until reactivated, on both halves', async () => {
    const { half } = await service.create(input(), alice);
    const inactive = await service.update(half.record1id, half.connectionid, patch({ statecode: 1 }), alice);
    expect(inactive).toMatchObject({ statecode: 1, statuscode: 2 });
    expect((await service.get(half.record2id, half.relatedconnectionid, alice)).statecode).toBe(1);
    expect(
      (await rejection(service.update(half.record2id, half.relatedconnectionid, patch({ description: 'no' }), alice)))
        .code,
    ).toBe('ConnectionInactive');
    const active = await service.update(half.record2id, half.relatedconnectionid, patch({ statecode: 0 }), alice);
    expect(active).toMatchObject({ statecode: 0, statuscode: 1 });
    expect((await service.get(half.record1id, half.connectionid, alice)).statecode).toBe(0);
  });

  it('never leaves the halves apart under concurrent updates', async () => {
    const { half } = await service.create(input(), alice);
    await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        service.update(
          index % 2 ? half.record1id : half.record2id,
          index % 2 ? half.connectionid : half.relatedconnectionid,
          patch({ description: `update ${index}` }),
          alice,
        ),
      ),
    );
    const master = await service.get(half.record1id, half.connectionid, alice);
    expect(master.versionnumber).toBe(13);
    expect(await service.get(half.record2id, half.relatedconnectionid, alice)).toEqual(reciprocalOf(master));
  });

  it('is a 404 for a connection that is not there', async () => {
    expect((await rejection(service.update(randomUUID(), randomUUID(), patch({ description: 'x' }), alice))).kind).toBe(
      'not-found',
    );
  });
});

describe('deleting', () => {
  it('removes both halves and their guards, from either URL', async () => {
    const request = input();
    const { half } = await service.create(request, alice);
    await service.delete(half.record2id, half.relatedconnectionid, alice);
    expect((await rejection(service.get(half.record1id, half.connectionid, alice))).kind).toBe('not-found');
    expect((await rejection(service.get(half.record2id, half.relatedconnectionid, alice))).kind).toBe('not-found');
    // Tombstones stay until the repair job purges them after the grace period.
    const rows = [...(await entitiesOf(request.record1id)), ...(await entitiesOf(request.record2id))];
    // (and the audit records of the create and the delete, beside the authoritative half, purged with it)
    expect(
      rows
        .filter((row) => isAuditRow(row))
        .map((row) => row.operation)
        .sort(),
    ).toEqual(['create', 'delete']);
    expect(rows.filter((row) => !isAuditRow(row)).map((row) => [row.rowKey, row.tombstone])).toEqual([
      [`c_${half.connectionid}`, true],
      [`c_${half.relatedconnectionid}`, true],
    ]);
    await services.consistency.walk({ repair: true, graceMs: 0 });
    expect(await entitiesOf(request.record1id)).toEqual([]);
    expect(await entitiesOf(request.record2id)).toEqual([]);
    // and the pair may be made again
    await expect(service.create(request, alice)).resolves.toMatchObject({ created: true });
  });

  it('refuses a stale If-Match', async () => {
    const { half } = await service.create(input(), alice);
    await service.update(half.record1id, half.connectionid, patch({ description: 'newer' }), alice);
    expect((await rejection(service.delete(half.record1id, half.connectionid, alice, [etagOf(half)]))).kind).toBe(
      'precondition-failed',
    );
  });

  it('finishes a delete that stopped after its commit, when the other half is next touched', async () => {
    const { half } = await service.create(input(), alice);
    // As if the process had died after committing the tombstone on the authoritative copy.
    const authoritative = (await store.read(authoritativeOf(half).record1id, authoritativeOf(half).connectionid))!;
    const tombstone = {
      ...authoritative,
      half: { ...authoritative.half, versionnumber: authoritative.half.versionnumber + 1 },
      tombstone: true,
    };
    await client.deleteEntity(authoritative.half.record1id, guardRowKey(authoritative.half));
    await client.updateEntity(toEntity(tombstone), 'Replace', { etag: authoritative.etag });
    const derived = reciprocalOf(authoritative.half);
    expect((await rejection(service.delete(derived.record1id, derived.connectionid, alice))).kind).toBe('not-found');
    expect((await store.read(derived.record1id, derived.connectionid))?.tombstone).toBe(true);
    expect((await service.list({ recordId: derived.record1id }, alice, { top: 10 })).items).toEqual([]);
  });

  it('removes every connection of a record, on whichever side it was', async () => {
    const hub = randomUUID();
    const others: string[] = [];
    for (let index = 0; index < 240; index++) {
      const other = randomUUID();
      others.push(other);
      const asSource = index % 2 === 0;
      await service.create(
        input(asSource ? { record1id: hub, record2id: other } : { record1id: other, record2id: hub }),
        alice,
      );
      if (index % 3 === 0) {
        const halves = await service.list({ recordId: other }, alice, { top: 1 });
        const first = halves.items[0];
        if (first) await service.update(other, first.connectionid, patch({ statecode: 1 }), alice);
      }
    }
    const survivor = await service.create(input({ record1id: others[0], record2id: others[1] }), alice);

    expect(await service.deleteAllOf(hub, { ...alice, isAdmin: true })).toBe(240);
    expect((await service.list({ recordId: hub }, alice, { top: 10, count: true })).count).toBe(0);
    await services.consistency.walk({ repair: true, graceMs: 0 });
    expect(await entitiesOf(hub)).toEqual([]);
    for (const other of others.slice(2, 40)) expect(await entitiesOf(other)).toEqual([]);
    expect(await service.get(survivor.half.record1id, survivor.half.connectionid, alice)).toEqual(survivor.half);
    expect(await service.deleteAllOf(hub, { ...alice, isAdmin: true })).toBe(0);
  });
});

describe("listing a record's connections", () => {
  const hub = randomUUID();
  const partner = randomUUID();

  beforeAll(async () => {
    await service.create(
      input({ record1id: hub, record2id: partner, record2objecttypecode: 'systemuser', description: 'user' }),
      alice,
    );
    await service.create(
      input({
        record1id: hub,
        record2objecttypecode: 'contact',
        effectivestart: '2026-01-01',
        effectiveend: '2026-06-30',
      }),
      alice,
    );
    await service.create(
      input({
        record2id: hub,
        record2objecttypecode: 'account',
        record1objecttypecode: 'team',
        effectiveend: '2025-12-31',
      }),
      alice,
    );
    const { half } = await service.create(input({ record2id: hub, record1objecttypecode: 'contact' }), alice);
    await service.update(hub, half.relatedconnectionid, patch({ statecode: 1 }), alice);
    await service.create(
      input({ record1id: hub, record2objecttypecode: 'contact', effectivestart: '2026-07-01' }),
      alice,
    );
  });

  it('returns every connection the record takes part in, as its own halves, in one request', async () => {
    requests.reset();
    const page = await service.list({ recordId: hub }, alice, { top: 100 });
    expect(requests.count).toBe(1);
    expect(page.items).toHaveLength(5);
    expect(page.items.every((half) => half.record1id === hub)).toBe(true);
    expect(page.skiptoken).toBeUndefined();
  });

  it("filters by the other record's type (code or name), the other record, the state and a date", async () => {
    expect((await service.list({ recordId: hub, othertypecode: 'contact' }, alice, { top: 100 })).items).toHaveLength(
      3,
    );
    expect(
      (await service.list({ recordId: hub, othertypecode: 8 }, alice, { top: 100 })).items.map(
        (half) => half.description,
      ),
    ).toEqual(['user']);
    expect((await service.list({ recordId: hub, otherrecordid: partner }, alice, { top: 100 })).items).toHaveLength(1);
    expect((await service.list({ recordId: hub, statecode: 1 }, alice, { top: 100 })).items).toHaveLength(1);
    expect((await service.list({ recordId: hub, statecode: 0 }, alice, { top: 100 })).items).toHaveLength(4);
    const activeOn = (date: string) =>
      service
        .list({ recordId: hub, activeon: new Date(date).toISOString() }, alice, { top: 100 })
        .then((page) => page.items.length);
    expect(await activeOn('2026-03-01')).toBe(3); // open, Jan-Jun, and the inactive one (state is a separate filter)
    expect(await activeOn('2025-06-01')).toBe(3); // open, ended 2025-12-31, inactive open
    expect(await activeOn('2026-08-01')).toBe(3); // open, from July, inactive open
    expect(await activeOn('2026-06-30T00:00:00Z')).toBe(3);
  });

  it('pages with top and a skiptoken, each page one request, without repeats or gaps', async () => {
    const seen: string[] = [];
    let skiptoken: string | undefined;
    let pages = 0;
    do {
      requests.reset();
      const page = await service.list({ recordId: hub }, alice, { top: 2, skiptoken: skiptoken });
      expect(requests.count).toBe(1);
      seen.push(...page.items.map((half) => half.connectionid));
      skiptoken = page.skiptoken;
      pages++;
    } while (skiptoken);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(5);
  });

  it('refuses a skiptoken from another query or record', async () => {
    const page = await service.list({ recordId: hub }, alice, { top: 2 });
    expect(
      (await rejection(service.list({ recordId: hub, statecode: 0 }, alice, { top: 2, skiptoken: page.skiptoken })))
        .code,
    ).toBe('InvalidSkipToken');
    expect(
      (await rejection(service.list({ recordId: partner }, alice, { top: 2, skiptoken: page.skiptoken }))).code,
    ).toBe('InvalidSkipToken');
  });

  it('refuses an unknown type filter', async () => {
    expect((await rejection(service.list({ recordId: hub, othertypecode: 'spaceship' }, alice, { top: 2 }))).code).toBe(
      'UnknownObjectType',
    );
  });
});

describe('storage layout', () => {
  it('keeps the guard of an active connection beside its authoritative half (the lower record id) only', async () => {
    for (const [low, high] of [
      ['1', '9'],
      ['9', '1'],
    ]) {
      const { half } = await service.create(
        input({ record1id: `${low}${randomUUID().slice(1)}`, record2id: `${high}${randomUUID().slice(1)}` }),
        alice,
      );
      const authoritative = authoritativeOf(half);
      const derived = reciprocalOf(authoritative);
      const rowKeys = async (partition: string) =>
        (await entitiesOf(partition))
          .filter((row) => !isAuditRow(row))
          .map((row) => String(row.rowKey))
          .sort();
      expect(await rowKeys(authoritative.record1id)).toEqual(
        [`c_${authoritative.connectionid}`, guardRowKey(authoritative)].sort(),
      );
      expect(await rowKeys(derived.record1id)).toEqual([`c_${derived.connectionid}`]);
      await service.update(half.record1id, half.connectionid, patch({ statecode: 1 }), alice);
      expect(await rowKeys(authoritative.record1id)).toEqual([`c_${authoritative.connectionid}`]);
      expect(await rowKeys(derived.record1id)).toEqual([`c_${derived.connectionid}`]);
    }
  });
});
