import { randomUUID } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createConnectionSchema, reciprocalOf, updateConnectionSchema } from '../../shared/domain/connection';
import { rejection } from '../support/errors';
import { createRoleSchema, updateRoleSchema } from '../../shared/domain/roles';
import { createServices, type Services } from '../../shared/useCases/services';
import { alice, countRequests, type RequestCounter, testSettings } from '../support/storage';

let services: Services;
let indexRequests: RequestCounter;
let connectionRequests: RequestCounter;
const admin = { ...alice, id: 'ad000000-0000-4000-8000-0000000000ad', isAdmin: true };

beforeAll(async () => {
  services = createServices(testSettings());
  await services.ready();
  indexRequests = countRequests(services.tables.roleIndex);
  connectionRequests = countRequests(services.tables.connections);
});
beforeEach(() => {
  indexRequests.reset();
  connectionRequests.reset();
});

const role = async (name: string, body: Record<string, unknown> = {}) =>
  (await services.roles.create(createRoleSchema.parse({ name, ...body }), admin)).role.connectionroleid;

const connect = (body: Record<string, unknown>) =>
  services.connections.create(
    createConnectionSchema.parse({
      record1id: randomUUID(),
      record1objecttypecode: 'contact',
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
      ...body,
    }),
    alice,
  );

describe('connection roles', () => {
  it('are created, read, changed and listed by administrators only', async () => {
    const error = await rejection(services.roles.create(createRoleSchema.parse({ name: 'Intruder' }), alice));
    expect(error.kind).toBe('forbidden');
    const id = await role('Stakeholder', { category: 1000, objecttypecodes: ['account', 2] });
    expect(await services.roles.get(id)).toMatchObject({
      name: 'Stakeholder',
      category: 1000,
      objecttypecodes: [1, 2],
      statecode: 0,
      statuscode: 1,
      createdby: admin.id,
    });
    const updated = await services.roles.update(
      id,
      updateRoleSchema.parse({ description: 'People with a stake', statecode: 1 }),
      admin,
    );
    expect(updated).toMatchObject({
      description: 'People with a stake',
      statecode: 1,
      statuscode: 2,
      versionnumber: 2,
    });
    expect((await rejection(services.roles.update(id, updateRoleSchema.parse({ name: 'x' }), alice))).kind).toBe(
      'forbidden',
    );
  });

  it('match symmetrically, and a role may match itself', async () => {
    const doctor = await role('Doctor');
    const patient = await role('Patient');
    const nurse = await role('Nurse');
    const friend = await role('Friend');
    await services.roles.addMatch(doctor, patient, admin);
    await services.roles.addMatch(nurse, doctor, admin);
    await services.roles.addMatch(friend, friend, admin);
    expect((await services.roles.matchingRoles(doctor)).map((match) => match.name)).toEqual(['Nurse', 'Patient']);
    expect((await services.roles.matchingRoles(patient)).map((match) => match.name)).toEqual(['Doctor']);
    expect((await services.roles.matchingRoles(friend)).map((match) => match.name)).toEqual(['Friend']);
    await services.roles.removeMatch(patient, doctor, admin);
    expect((await services.roles.matchingRoles(doctor)).map((match) => match.name)).toEqual(['Nurse']);
    expect((await rejection(services.roles.removeMatch(patient, doctor, admin))).code).toBe('MatchingRoleNotFound');
    expect((await rejection(services.roles.addMatch(doctor, randomUUID(), admin))).code).toBe('ConnectionRoleNotFound');
  });

  it('cannot be deleted while connections use them, and can once they do not', async () => {
    const supplier = await role('Supplier');
    const { half } = await connect({ record1roleid: supplier });
    expect((await rejection(services.roles.delete(supplier, admin))).code).toBe('ConnectionRoleInUse');
    await services.connections.delete(half.record1id, half.connectionid, alice);
    await services.roles.delete(supplier, admin);
    expect((await rejection(services.roles.get(supplier))).code).toBe('ConnectionRoleNotFound');
  });
});

describe('roles on connections', () => {
  let doctor: string;
  let patient: string;
  let friend: string;
  let vendor: string;
  let retired: string;
  beforeAll(async () => {
    doctor = await role('Doctor', { objecttypecodes: ['contact'] });
    patient = await role('Patient', { objecttypecodes: ['contact'] });
    friend = await role('Friend', { category: 3 });
    vendor = await role('Vendor', { category: 4, objecttypecodes: ['account'] });
    retired = await role('Retired');
    await services.roles.addMatch(doctor, patient, admin);
    await services.roles.addMatch(friend, friend, admin);
    await services.roles.update(retired, updateRoleSchema.parse({ statecode: 1 }), admin);
  });

  it('are swapped on the reciprocal half, and record 2 gets the only matching role when left out', async () => {
    const { half } = await connect({ record1roleid: doctor });
    expect(half).toMatchObject({ record1roleid: doctor, record2roleid: patient });
    const reciprocal = await services.connections.get(half.record2id, half.relatedconnectionid, alice);
    expect(reciprocal).toMatchObject({ record1roleid: patient, record2roleid: doctor });
  });

  it("follow Dataverse's rules", async () => {
    expect((await rejection(connect({ record1roleid: randomUUID() }))).code).toBe('ConnectionRoleNotFound');
    expect((await rejection(connect({ record1roleid: retired }))).code).toBe('ConnectionRoleInactive');
    expect((await rejection(connect({ record1roleid: vendor }))).code).toBe('ConnectionRoleNotValidForObjectType');
    expect((await rejection(connect({ record1roleid: doctor, record2roleid: friend }))).code).toBe(
      'UnrelatedConnectionRoles',
    );
    expect((await connect({ record1roleid: friend, record2roleid: friend })).half).toMatchObject({
      record1roleid: friend,
      record2roleid: friend,
    });
    expect((await connect({ record1objecttypecode: 'account', record1roleid: vendor })).half).toMatchObject({
      record1roleid: vendor,
      record2roleid: null,
    });
  });

  it('change on update, on both halves and in the index', async () => {
    const { half } = await connect({ record1roleid: friend });
    expect(half.record2roleid).toBe(friend);
    const updated = await services.connections.update(
      half.record1id,
      half.connectionid,
      updateConnectionSchema.parse({ record1roleid: doctor }),
      alice,
    );
    expect(updated).toMatchObject({ record1roleid: doctor, record2roleid: patient });
    expect(await services.connections.get(half.record2id, half.relatedconnectionid, alice)).toEqual(
      reciprocalOf(updated),
    );
    const doctors = await services.connections.listByRole({ roleid: doctor }, alice, { top: 1000 });
    expect(doctors.items.map((item) => item.connectionid)).toContain(half.connectionid);
    const friends = await services.connections.listByRole({ roleid: friend }, alice, { top: 1000 });
    expect(friends.items.map((item) => item.connectionid)).not.toContain(half.connectionid);
    const error = await rejection(
      services.connections.update(
        half.record1id,
        half.connectionid,
        updateConnectionSchema.parse({ record2roleid: friend }),
        alice,
      ),
    );
    expect(error.code).toBe('UnrelatedConnectionRoles');
  });

  it('cost, on create, a reservation and a fresh read of each role, then one index write per half with a role', async () => {
    const roleRequests = countRequests(services.tables.roles);
    await connect({ record1roleid: doctor }); // record 2 takes the matching role, patient
    expect(connectionRequests.count).toBe(3);
    expect(indexRequests.count).toBe(4);
    expect(roleRequests.count).toBe(2);
    indexRequests.reset();
    connectionRequests.reset();
    roleRequests.reset();
    await connect({});
    expect(connectionRequests.count).toBe(3);
    expect(indexRequests.count).toBe(0);
    expect(roleRequests.count).toBe(0);
  });

  it("are answered by record: own role, the other side's role, and the distinct roles with counts", async () => {
    const clinic = randomUUID();
    await connect({ record1id: clinic, record1roleid: doctor });
    await connect({ record1id: clinic, record1roleid: doctor });
    await connect({ record2id: clinic, record2roleid: friend, record1roleid: friend });
    const asDoctor = await services.connections.list({ recordId: clinic, roleid: doctor }, alice, {
      top: 100,
      count: true,
    });
    expect(asDoctor.items).toHaveLength(2);
    expect(asDoctor.count).toBe(2);
    expect(
      (await services.connections.list({ recordId: clinic, otherroleid: patient }, alice, { top: 100 })).items,
    ).toHaveLength(2);
    expect(await services.connections.recordRoles(clinic, alice)).toEqual([
      { connectionroleid: doctor, name: 'Doctor', count: 2 },
      { connectionroleid: friend, name: 'Friend', count: 1 },
    ]);
  });

  it('are deleted from the index with their connections, also by cascade', async () => {
    const hub = randomUUID();
    const { half } = await connect({ record1id: hub, record1roleid: friend });
    await connect({ record2id: hub, record1roleid: friend });
    await services.connections.deleteAllOf(hub, { ...alice, isAdmin: true });
    const friends = await services.connections.listByRole({ roleid: friend }, alice, { top: 1000 });
    expect(friends.items.filter((item) => item.record1id === hub || item.record2id === hub)).toEqual([]);
    expect(friends.items.map((item) => item.connectionid)).not.toContain(half.connectionid);
  });
});

describe('the role query across all records', () => {
  it('reads only the matching index entries, whatever the table holds', async () => {
    const salesperson = await role('Salesperson');
    const bystander = await role('Bystander');
    const account = await role('Key account', { objecttypecodes: ['account'] });
    const created = [];
    for (let batch = 0; batch < 25; batch++) {
      created.push(
        ...(await Promise.all(
          Array.from({ length: 80 }, (_, index) => {
            const number = batch * 80 + index;
            if (number % 100 === 0) return connect({ record1roleid: salesperson });
            if (number % 100 === 1) return connect({ record1objecttypecode: 'account', record1roleid: account });
            return connect({ record1roleid: bystander });
          }),
        )),
      );
    }
    expect(created).toHaveLength(2000);

    indexRequests.reset();
    connectionRequests.reset();
    const salespeople = await services.connections.listByRole({ roleid: salesperson }, alice, {
      top: 1000,
      count: true,
    });
    expect(salespeople.items).toHaveLength(20);
    expect(salespeople.count).toBe(20);
    expect(salespeople.items.every((item) => item.record1roleid === salesperson)).toBe(true);
    expect(indexRequests.count).toBe(2); // the page and the count, each one partition query
    expect(connectionRequests.count).toBe(0);

    indexRequests.reset();
    const contacts = await services.connections.listByRole({ roleid: account, typecode: 'contact' }, alice, {
      top: 10,
    });
    expect(contacts.items).toEqual([]);
    const accounts = await services.connections.listByRole({ roleid: account, typecode: 'account' }, alice, {
      top: 10,
    });
    expect(accounts.items).toHaveLength(10);
    expect(accounts.skiptoken).toBeDefined();
    const rest = await services.connections.listByRole({ roleid: account, typecode: 'account' }, alice, {
      top: 10,
      ...(accounts.skiptoken && { skiptoken: accounts.skiptoken }),
    });
    expect(rest.items).toHaveLength(10);
    expect(new Set([...accounts.items, ...rest.items].map((item) => item.connectionid)).size).toBe(20);
    expect(indexRequests.count).toBe(3);
  });
});
