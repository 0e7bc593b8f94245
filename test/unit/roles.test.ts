import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors';
import { offeredToward } from '../../shared/useCases/connectionRoles';
import { buildObjectTypeRegistry } from '../../shared/domain/objectTypes';
import {
  applyRoleUpdate,
  checkRoles,
  type ConnectionRole,
  createRoleSchema,
  newRole,
  RoleCatalog,
  updateRoleSchema,
} from '../../shared/domain/roles';

const types = buildObjectTypeRegistry('base');
const admin = { id: 'ad000000-0000-4000-8000-0000000000ad', teams: [], isAdmin: true };
const now = new Date('2026-11-23T00:00:00Z');
const account = { code: 1, name: 'account' };
const contact = { code: 2, name: 'contact' };

const make = (id: string, name: string, extra: Record<string, unknown> = {}): ConnectionRole =>
  newRole(createRoleSchema.parse({ connectionroleid: id, name, ...extra }), types, admin, now);

const ids = {
  doctor: 'd0000000-0000-4000-8000-000000000001',
  patient: 'd0000000-0000-4000-8000-000000000002',
  nurse: 'd0000000-0000-4000-8000-000000000003',
  friend: 'd0000000-0000-4000-8000-000000000004',
  vendor: 'd0000000-0000-4000-8000-000000000005',
  gone: 'd0000000-0000-4000-8000-000000000006',
  buyer: 'd0000000-0000-4000-8000-000000000007',
};
const catalog = new RoleCatalog(
  [
    make(ids.doctor, 'Doctor', { objecttypecodes: ['contact'] }),
    make(ids.patient, 'Patient', { objecttypecodes: [2] }),
    make(ids.nurse, 'Nurse'),
    make(ids.friend, 'Friend'),
    make(ids.vendor, 'Vendor', { objecttypecodes: ['account'] }),
    { ...make(ids.gone, 'Former'), statecode: 1, statuscode: 2 },
    make(ids.buyer, 'Buyer', { objecttypecodes: ['contact'] }),
  ],
  [
    [ids.doctor, ids.patient],
    [ids.patient, ids.doctor],
    [ids.friend, ids.friend],
    [ids.vendor, ids.buyer],
    [ids.buyer, ids.vendor],
  ],
);

const codeOf = (action: () => unknown): string => {
  try {
    action();
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
  return 'none';
};

describe('role rules on a connection', () => {
  it('fill record 2 with the only matching role, when it applies to record 2', () => {
    expect(checkRoles(catalog, { record1roleid: ids.doctor, record2roleid: null }, contact, contact)).toEqual({
      record1roleid: ids.doctor,
      record2roleid: ids.patient,
    });
    expect(checkRoles(catalog, { record1roleid: ids.friend, record2roleid: null }, account, contact)).toEqual({
      record1roleid: ids.friend,
      record2roleid: ids.friend,
    });
    // Buyer applies to contacts only: not filled toward an account.
    expect(checkRoles(catalog, { record1roleid: ids.vendor, record2roleid: null }, account, account)).toEqual({
      record1roleid: ids.vendor,
      record2roleid: null,
    });
    expect(checkRoles(catalog, { record1roleid: ids.nurse, record2roleid: null }, contact, contact)).toEqual({
      record1roleid: ids.nurse,
      record2roleid: null,
    });
    expect(checkRoles(catalog, { record1roleid: ids.doctor, record2roleid: null }, contact, contact, false)).toEqual({
      record1roleid: ids.doctor,
      record2roleid: null,
    });
  });

  it('refuse missing, inactive, misapplied and unrelated roles', () => {
    expect(
      codeOf(() =>
        checkRoles(
          catalog,
          { record1roleid: 'e0000000-0000-4000-8000-000000000000', record2roleid: null },
          contact,
          contact,
        ),
      ),
    ).toBe('ConnectionRoleNotFound');
    expect(codeOf(() => checkRoles(catalog, { record1roleid: ids.gone, record2roleid: null }, contact, contact))).toBe(
      'ConnectionRoleInactive',
    );
    expect(
      codeOf(() => checkRoles(catalog, { record1roleid: ids.doctor, record2roleid: null }, account, contact)),
    ).toBe('ConnectionRoleNotValidForObjectType');
    expect(
      codeOf(() => checkRoles(catalog, { record1roleid: null, record2roleid: ids.vendor }, contact, contact)),
    ).toBe('ConnectionRoleNotValidForObjectType');
    expect(
      codeOf(() => checkRoles(catalog, { record1roleid: ids.doctor, record2roleid: ids.nurse }, contact, contact)),
    ).toBe('UnrelatedConnectionRoles');
    expect(checkRoles(catalog, { record1roleid: null, record2roleid: ids.nurse }, contact, contact)).toEqual({
      record1roleid: null,
      record2roleid: ids.nurse,
    });
  });
});

describe('roles', () => {
  it("take Dataverse's categories, names and types", () => {
    expect(createRoleSchema.safeParse({ name: 'x', category: 6 }).success).toBe(false);
    expect(createRoleSchema.safeParse({ name: '' }).success).toBe(false);
    expect(createRoleSchema.safeParse({ name: 'x'.repeat(101) }).success).toBe(false);
    expect(createRoleSchema.safeParse({ name: 'x', description: 'd'.repeat(1001) }).success).toBe(false);
    expect(createRoleSchema.parse({ name: ' Friend ' })).toMatchObject({
      name: 'Friend',
      category: 5,
      objecttypecodes: [],
    });
    expect(make(ids.doctor, 'Doctor', { objecttypecodes: ['contact', 2, 'account'] }).objecttypecodes).toEqual([1, 2]);
    expect(codeOf(() => make(ids.doctor, 'Doctor', { objecttypecodes: ['starship'] }))).toBe('UnknownObjectType');
  });

  it('deactivate and reactivate with matching status codes', () => {
    const role = make(ids.nurse, 'Nurse');
    expect(applyRoleUpdate(role, updateRoleSchema.parse({ statecode: 1 }), types, admin, now)).toMatchObject({
      statecode: 1,
      statuscode: 2,
      versionnumber: 2,
    });
    expect(
      codeOf(() => applyRoleUpdate(role, updateRoleSchema.parse({ statecode: 0, statuscode: 2 }), types, admin, now)),
    ).toBe('ValidationFailed');
  });
});

describe('the role picker toward a record type (offeredToward)', () => {
  const role = (id: string) => catalog.get(id) as ConnectionRole;
  const retired = 'd0000000-0000-4000-8000-000000000008';
  const lonely = 'd0000000-0000-4000-8000-000000000009';
  const withRetiredMatch = new RoleCatalog(
    [
      make(retired, 'Retired', { objecttypecodes: ['contact'] }),
      { ...make(lonely, 'Lonely'), statecode: 0 },
      { ...make(ids.gone, 'Former'), statecode: 1, statuscode: 2 },
    ],
    [
      [retired, ids.gone],
      [ids.gone, retired],
    ],
  );

  it('offers a role whose active matching role the other type can take', () => {
    expect(offeredToward(catalog, role(ids.doctor), contact.code)).toBe(true);
    expect(offeredToward(catalog, role(ids.friend), account.code)).toBe(true); // Friend matches itself and applies to every type
  });

  it("offers a role with no matching roles: record 1 takes it, record 2's role stays empty", () => {
    expect(offeredToward(catalog, role(ids.nurse), account.code)).toBe(true);
    expect(offeredToward(withRetiredMatch, withRetiredMatch.get(lonely) as ConnectionRole, contact.code)).toBe(true);
  });

  it('offers a role whose only matching roles are inactive, as one with none', () => {
    expect(offeredToward(withRetiredMatch, withRetiredMatch.get(retired) as ConnectionRole, account.code)).toBe(true);
  });

  it('does not offer a role whose active matching roles are all for other types', () => {
    expect(offeredToward(catalog, role(ids.doctor), account.code)).toBe(false);
    expect(offeredToward(catalog, role(ids.buyer), contact.code)).toBe(false); // Vendor, its match, is for accounts
  });
});
