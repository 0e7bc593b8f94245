import { describe, expect, it } from 'vitest';
import {
  applyUpdate,
  type ConnectionHalf,
  createConnectionSchema,
  etagOf,
  isActiveOn,
  newMasterHalf,
  reciprocalOf,
  sameCreateRequest,
  updateConnectionSchema,
} from '../../shared/domain/connection';
import { thrown } from '../support/errors';
import { idKeyOf, reciprocalIdOf } from '../../shared/domain/ids';
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';

const types = buildObjectTypeRegistry('base');
const caller = { id: 'a11ce000-0000-4000-8000-000000000001', teams: [], isAdmin: false };
const now = new Date('2026-11-23T10:00:00Z');
const account = 'AAAAAAAA-0000-4000-8000-000000000001';
const contact = 'bbbbbbbb-0000-4000-8000-000000000002';

const create = (body: Record<string, unknown>) => createConnectionSchema.parse(body);
const baseBody = { record1id: account, record1objecttypecode: 'account', record2id: contact, record2objecttypecode: 2 };

describe('a new connection', () => {
  it('is a master half from record 1 to record 2, normalised, active, owned by the caller', () => {
    const master = newMasterHalf(create({ ...baseBody, record2name: 'Ada Lovelace' }), types, caller, now);
    expect(master).toMatchObject({
      ismaster: true,
      record1id: account.toLowerCase(),
      record1objecttypecode: 1,
      record2id: contact,
      record2objecttypecode: 2,
      name: 'Ada Lovelace',
      statecode: 0,
      statuscode: 1,
      ownerid: caller.id,
      createdby: caller.id,
      modifiedby: caller.id,
      createdon: now.toISOString(),
      versionnumber: 1,
    });
    expect(master.relatedconnectionid).toBe(reciprocalIdOf(master.connectionid));
  });

  it('keeps an id the client chose', () => {
    const connectionid = '0f0f0f0f-0000-4000-8000-0000000000ff';
    expect(newMasterHalf(create({ ...baseBody, connectionid }), types, caller, now).connectionid).toBe(connectionid);
  });

  it('cannot connect a record to itself', () => {
    const error = thrown(() =>
      newMasterHalf(create({ ...baseBody, record2id: account.toLowerCase() }), types, caller, now),
    );
    expect(error.code).toBe('CannotConnectToSelf');
  });

  it('cannot end before it starts', () => {
    const body = { ...baseBody, effectivestart: '2026-02-01', effectiveend: '2026-01-31T23:59:59Z' };
    expect(thrown(() => newMasterHalf(create(body), types, caller, now)).code).toBe('ConnectionInvalidStartEndDate');
  });

  it('refuses an unknown object type', () => {
    const error = thrown(() =>
      newMasterHalf(create({ ...baseBody, record2objecttypecode: 'spaceship' }), types, caller, now),
    );
    expect(error.code).toBe('UnknownObjectType');
    expect(error.extra.errors?.[0]?.field).toBe('record2objecttypecode');
  });

  it('refuses unknown fields, bad GUIDs and oversized text in the body schema', () => {
    expect(createConnectionSchema.safeParse({ ...baseBody, colour: 'red' }).success).toBe(false);
    expect(createConnectionSchema.safeParse({ ...baseBody, record1id: 'nope' }).success).toBe(false);
    expect(createConnectionSchema.safeParse({ ...baseBody, description: 'x'.repeat(2001) }).success).toBe(false);
    expect(createConnectionSchema.safeParse({ ...baseBody, record1name: 'x'.repeat(501) }).success).toBe(false);
    expect(createConnectionSchema.safeParse({ ...baseBody, effectivestart: 'yesterday' }).success).toBe(false);
    expect(createConnectionSchema.safeParse({ ...baseBody, record1objecttypecode: -1 }).success).toBe(false);
  });
});

describe('the reciprocal half', () => {
  const master = newMasterHalf(
    create({
      ...baseBody,
      record1name: 'Contoso',
      record2name: 'Ada',
      record1roleid: 'c0000000-0000-4000-8000-000000000001',
      description: 'd',
    }),
    types,
    caller,
    now,
  );
  const reciprocal = reciprocalOf(master);

  it('swaps records, types, roles and names, and points back at the master', () => {
    expect(reciprocal).toMatchObject({
      connectionid: master.relatedconnectionid,
      relatedconnectionid: master.connectionid,
      ismaster: false,
      record1id: master.record2id,
      record1objecttypecode: 2,
      record1roleid: null,
      record1name: 'Ada',
      record2id: master.record1id,
      record2objecttypecode: 1,
      record2roleid: 'c0000000-0000-4000-8000-000000000001',
      record2name: 'Contoso',
      name: 'Contoso',
      description: 'd',
    });
  });

  it("is its master's reciprocal both ways, with the same ETag", () => {
    expect(reciprocalOf(reciprocal)).toEqual(master);
    expect(etagOf(reciprocal)).toBe(etagOf(master));
  });

  it("has an id derived from the master's, so retries write the same keys, and both share one claim key", () => {
    expect(reciprocalIdOf(master.connectionid)).toBe(reciprocalIdOf(master.connectionid.toUpperCase()));
    // A version-4 GUID's reciprocal is a version-4 GUID.
    expect(reciprocalIdOf('3f2504e0-4f89-41d3-9a0c-0305e82c3301')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(reciprocalIdOf(reciprocal.connectionid)).toBe(master.connectionid);
    expect(reciprocal.connectionid).not.toBe(master.connectionid);
    expect(idKeyOf(reciprocal.connectionid)).toBe(idKeyOf(master.connectionid));
  });
});

describe('an identical create', () => {
  const master = newMasterHalf(
    create({ ...baseBody, connectionid: '0f0f0f0f-0000-4000-8000-0000000000ff' }),
    types,
    caller,
    later(),
  );
  function later() {
    return new Date(now.getTime() + 5000);
  }
  it('is recognised whatever the time and caller, and a different body is not', () => {
    const again = newMasterHalf(
      create({ ...baseBody, connectionid: master.connectionid, record1objecttypecode: 1 }),
      types,
      { ...caller, id: contact },
      now,
    );
    expect(sameCreateRequest(master, again)).toBe(true);
    const other = newMasterHalf(
      create({ ...baseBody, connectionid: master.connectionid, description: 'other' }),
      types,
      caller,
      now,
    );
    expect(sameCreateRequest(master, other)).toBe(false);
    expect(sameCreateRequest(reciprocalOf(master), again)).toBe(false);
  });
});

describe('updates', () => {
  const master: ConnectionHalf = newMasterHalf(create({ ...baseBody, description: 'old' }), types, caller, now);
  const later = new Date('2026-11-24T00:00:00Z');
  const patch = (body: Record<string, unknown>) => updateConnectionSchema.parse(body);

  it('change the fields given, bump the version and record who and when', () => {
    const next = applyUpdate(
      master,
      patch({ description: 'new', effectiveend: '2027-01-01' }),
      { ...caller, id: contact },
      later,
    );
    expect(next).toMatchObject({
      description: 'new',
      effectiveend: '2027-01-01T00:00:00.000Z',
      versionnumber: 2,
      modifiedby: contact,
      modifiedon: later.toISOString(),
      createdon: master.createdon,
    });
    expect(applyUpdate(master, patch({ description: null }), caller, later).description).toBeNull();
  });

  it('deactivate with the matching status, and refuse a status of the other state', () => {
    expect(applyUpdate(master, patch({ statecode: 1 }), caller, later)).toMatchObject({ statecode: 1, statuscode: 2 });
    expect(applyUpdate(master, patch({ statuscode: 2 }), caller, later)).toMatchObject({ statecode: 1, statuscode: 2 });
    expect(thrown(() => applyUpdate(master, patch({ statecode: 1, statuscode: 1 }), caller, later)).kind).toBe(
      'validation',
    );
  });

  it('leave an inactive connection read-only except for reactivation', () => {
    const inactive = applyUpdate(master, patch({ statecode: 1 }), caller, later);
    const error = thrown(() => applyUpdate(inactive, patch({ description: 'x' }), caller, later));
    expect(error.kind).toBe('conflict');
    expect(error.code).toBe('ConnectionInactive');
    expect(thrown(() => applyUpdate(inactive, patch({ statecode: 0, description: 'x' }), caller, later)).kind).toBe(
      'conflict',
    );
    expect(applyUpdate(inactive, patch({ statecode: 0 }), caller, later)).toMatchObject({
      statecode: 0,
      statuscode: 1,
      versionnumber: 3,
    });
  });

  it('keep the window valid against the stored dates', () => {
    const windowed = applyUpdate(master, patch({ effectivestart: '2026-06-01' }), caller, later);
    expect(thrown(() => applyUpdate(windowed, patch({ effectiveend: '2026-05-01' }), caller, later)).code).toBe(
      'ConnectionInvalidStartEndDate',
    );
  });

  it('must change something and nothing unknown', () => {
    expect(updateConnectionSchema.safeParse({}).success).toBe(false);
    expect(updateConnectionSchema.safeParse({ record1id: contact }).success).toBe(false);
    expect(updateConnectionSchema.safeParse({ statecode: 2 }).success).toBe(false);
  });
});

describe('the effective window', () => {
  it('counts open ends as open and includes its bounds', () => {
    expect(isActiveOn({ effectivestart: null, effectiveend: null }, '2026-01-01T00:00:00.000Z')).toBe(true);
    expect(
      isActiveOn({ effectivestart: '2026-01-01T00:00:00.000Z', effectiveend: null }, '2026-01-01T00:00:00.000Z'),
    ).toBe(true);
    expect(
      isActiveOn({ effectivestart: '2026-01-02T00:00:00.000Z', effectiveend: null }, '2026-01-01T00:00:00.000Z'),
    ).toBe(false);
    expect(
      isActiveOn({ effectivestart: null, effectiveend: '2025-12-31T00:00:00.000Z' }, '2026-01-01T00:00:00.000Z'),
    ).toBe(false);
  });
});

describe('dates', () => {
  const stored = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
  const parsed = (value: string) => createConnectionSchema.safeParse({ ...baseBody, effectivestart: value });

  it('are kept as the instant in normalised UTC, four-digit year and milliseconds, whatever offset they came with', () => {
    for (const [given, expected] of [
      ['2026-03-01', '2026-03-01T00:00:00.000Z'],
      ['2026-03-01T01:30:00+02:00', '2026-02-28T23:30:00.000Z'],
      ['2024-01-01T00:00:00.123456789Z', '2024-01-01T00:00:00.123Z'],
      ['0001-01-01', '0001-01-01T00:00:00.000Z'],
      ['0001-01-01T05:00:00+05:00', '0001-01-01T00:00:00.000Z'],
      ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
      ['9999-12-31T23:59:59.999+00:00', '9999-12-31T23:59:59.999Z'],
    ] as const) {
      const result = parsed(given);
      expect(result.success, given).toBe(true);
      expect(result.data?.effectivestart, given).toBe(expected);
      expect(result.data?.effectivestart).toMatch(stored);
    }
  });

  it("are refused outside Dataverse's range once in UTC (0001-01-01 to 9999-12-31), and when they are no date", () => {
    for (const value of [
      '9999-12-31T23:59:59-23:59',
      '9999-12-31T23:59:59-00:01',
      '0000-12-31',
      '0001-01-01T00:00:00+00:01',
      '0000-01-01T00:00:00Z',
      '2023-02-29',
      '2024-02-30T00:00:00Z',
      '2024-13-01',
    ]) {
      const result = parsed(value);
      expect(result.success, value).toBe(false);
      expect(createConnectionSchema.safeParse({ ...baseBody, effectiveend: value }).success, value).toBe(false);
      expect(updateConnectionSchema.safeParse({ effectiveend: value }).success, value).toBe(false);
    }
  });

  it('are compared as instants: an end later in time is accepted whatever its offset, an earlier one refused', () => {
    const window = (effectivestart: string, effectiveend: string) => () =>
      newMasterHalf(create({ ...baseBody, effectivestart, effectiveend }), types, caller, now);
    expect(window('2026-01-01T10:00:00+05:00', '2026-01-01T06:00:00Z')().effectiveend).toBe('2026-01-01T06:00:00.000Z');
    expect(thrown(window('2026-01-01T10:00:00-05:00', '2026-01-01T14:00:00Z')).code).toBe(
      'ConnectionInvalidStartEndDate',
    );
  });

  it('in effect on an instant given with any offset, open ends included', () => {
    expect(
      isActiveOn({ effectivestart: null, effectiveend: '2025-12-31T23:30:00.000Z' }, '2026-01-01T01:00:00+02:00'),
    ).toBe(true);
    expect(
      isActiveOn({ effectivestart: '2026-01-01T00:30:00.000Z', effectiveend: null }, '2026-01-01T01:00:00+02:00'),
    ).toBe(false);
    expect(isActiveOn({ effectivestart: null, effectiveend: null }, '9999-12-31T23:59:59.999Z')).toBe(true);
  });
});
