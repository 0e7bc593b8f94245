import { z } from 'zod';
import type { Caller } from './caller';
import { ACTIVE, changesSomething, requestedState, type StateCode, stateFields, type StatusCode } from './connection';
import { doc } from './doc';
import { validationError } from './errors';
import { guid, newId } from './ids';
import type { ObjectType, ObjectTypeRegistry } from './objectTypes';

/** A connection role, as Dataverse's ConnectionRole table has it. */
export interface ConnectionRole {
  connectionroleid: string;
  name: string;
  category: RoleCategory;
  description: string | null;
  statecode: StateCode;
  statuscode: StatusCode;
  /** Record types the role applies to; empty means every type. */
  objecttypecodes: number[];
  createdon: string;
  createdby: string;
  modifiedon: string;
  modifiedby: string;
  versionnumber: number;
}

export const roleCategories = {
  1: 'Business',
  2: 'Family',
  3: 'Social',
  4: 'Sales',
  5: 'Other',
  1000: 'Stakeholder',
  1001: 'Sales Team',
  1002: 'Service',
} as const;
export type RoleCategory = keyof typeof roleCategories;
const categoryCodes = Object.keys(roleCategories).map(Number) as RoleCategory[];

export const MAX_ROLE_NAME = 100;
export const MAX_ROLE_DESCRIPTION = 1000;
export const MAX_ROLE_TYPES = 100;

const category = z
  .number()
  .int()
  .refine((value): value is RoleCategory => categoryCodes.includes(value as RoleCategory), {
    message: `must be one of ${categoryCodes.join(', ')}`,
  })
  .meta(
    doc(
      'Category',
      "The role's category: 1 Business, 2 Family, 3 Social, 4 Sales, 5 Other, 1000 Stakeholder, 1001 Sales Team, 1002 Service.",
      { enum: categoryCodes },
    ),
  );
const objectTypeList = z
  .array(z.union([z.number().int().nonnegative(), z.string().min(1).max(128)]))
  .max(MAX_ROLE_TYPES)
  .meta(
    doc('Record types', 'The record types the role applies to, as codes or logical names; empty means every type.'),
  );
const roleName = z
  .string()
  .trim()
  .min(1)
  .max(MAX_ROLE_NAME)
  .meta(
    doc('Name', "The role's name, such as Doctor or Vendor (at most 100 characters).", { visibility: 'important' }),
  );
const roleDescription = z
  .string()
  .max(MAX_ROLE_DESCRIPTION)
  .nullable()
  .optional()
  .meta(doc('Description', 'What the role means (at most 1000 characters).'));

export const createRoleSchema = z
  .strictObject({
    connectionroleid: guid
      .optional()
      .meta(doc('Role ID', 'A GUID you choose for the role; generated when left out.', { visibility: 'advanced' })),
    name: roleName,
    category: category.default(5),
    description: roleDescription,
    objecttypecodes: objectTypeList.default([]),
  })
  .meta({ title: 'NewConnectionRole', description: 'A connection role to create.' });
export type CreateRoleInput = z.infer<typeof createRoleSchema>;

export const updateRoleSchema = z
  .strictObject({
    name: roleName.optional(),
    category: category.optional(),
    description: roleDescription,
    objecttypecodes: objectTypeList.optional(),
    ...stateFields(
      'Active (0) or inactive (1); an inactive role stays on existing connections but cannot be given to new ones.',
    ),
  })
  .refine(changesSomething, { message: 'the body changes nothing: give at least one field' })
  .meta({
    title: 'ConnectionRoleChanges',
    description: 'The fields of a role to change; the others keep their values.',
  });
export type UpdateRoleInput = z.infer<typeof updateRoleSchema>;

function resolveTypes(types: ObjectTypeRegistry, values: (number | string)[]): number[] {
  const codes = values.map((value, index) => {
    const type = types.resolve(value);
    if (!type) {
      throw validationError(
        `Unknown object type "${value}".`,
        [{ field: `objecttypecodes.${index}`, message: 'not a known object type code or logical name' }],
        'UnknownObjectType',
      );
    }
    return type.code;
  });
  return [...new Set(codes)].sort((a, b) => a - b);
}

export function newRole(input: CreateRoleInput, types: ObjectTypeRegistry, caller: Caller, now: Date): ConnectionRole {
  const timestamp = now.toISOString();
  return {
    connectionroleid: input.connectionroleid ?? newId(),
    name: input.name,
    category: input.category,
    description: input.description ?? null,
    statecode: ACTIVE,
    statuscode: 1,
    objecttypecodes: resolveTypes(types, input.objecttypecodes),
    createdon: timestamp,
    createdby: caller.id,
    modifiedon: timestamp,
    modifiedby: caller.id,
    versionnumber: 1,
  };
}

export function applyRoleUpdate(
  role: ConnectionRole,
  patch: UpdateRoleInput,
  types: ObjectTypeRegistry,
  caller: Caller,
  now: Date,
): ConnectionRole {
  const { statecode, statuscode } = requestedState(role.statecode, patch);
  return {
    ...role,
    name: patch.name ?? role.name,
    category: patch.category ?? role.category,
    description: patch.description === undefined ? role.description : patch.description,
    objecttypecodes:
      patch.objecttypecodes === undefined ? role.objecttypecodes : resolveTypes(types, patch.objecttypecodes),
    statecode,
    statuscode,
    modifiedon: now.toISOString(),
    modifiedby: caller.id,
    versionnumber: role.versionnumber + 1,
  };
}

export const appliesTo = (role: ConnectionRole, typeCode: number): boolean =>
  role.objecttypecodes.length === 0 || role.objecttypecodes.includes(typeCode);

/** What clients see: the role plus the logical names of its types and its category's label. */
export function toRoleView(role: ConnectionRole, types: ObjectTypeRegistry) {
  return {
    ...role,
    categoryname: roleCategories[role.category],
    objecttypenames: role.objecttypecodes.map((code) => types.resolve(code)?.name ?? String(code)),
  };
}

export const roleEtagOf = (role: Pick<ConnectionRole, 'versionnumber' | 'createdon'>): string =>
  `"${role.versionnumber}.${Date.parse(role.createdon).toString(36)}"`;

/** All roles and the symmetric matching relation between them, as one consistent snapshot. */
export class RoleCatalog {
  private readonly byId: Map<string, ConnectionRole>;
  private readonly matches = new Map<string, Set<string>>();

  constructor(roles: ConnectionRole[], matchPairs: [string, string][]) {
    this.byId = new Map(roles.map((role) => [role.connectionroleid, role]));
    for (const [a, b] of matchPairs) {
      if (!this.matches.has(a)) this.matches.set(a, new Set());
      this.matches.get(a)?.add(b);
    }
  }

  get(id: string): ConnectionRole | undefined {
    return this.byId.get(id);
  }

  all(): ConnectionRole[] {
    return [...this.byId.values()].sort((a, b) => (a.connectionroleid < b.connectionroleid ? -1 : 1));
  }

  matchingRoles(id: string): ConnectionRole[] {
    return [...(this.matches.get(id) ?? [])].flatMap((other) => this.byId.get(other) ?? []);
  }

  match(a: string, b: string): boolean {
    return this.matches.get(a)?.has(b) ?? false;
  }
}

export interface RoleAssignment {
  record1roleid: string | null;
  record2roleid: string | null;
}

function usableRole(catalog: RoleCatalog, id: string, type: ObjectType, field: string): ConnectionRole {
  const role = catalog.get(id);
  if (!role) {
    throw validationError(
      `Connection role ${id} does not exist.`,
      [{ field, message: 'no such connection role' }],
      'ConnectionRoleNotFound',
    );
  }
  if (role.statecode !== ACTIVE) {
    throw validationError(
      `Connection role "${role.name}" is inactive.`,
      [{ field, message: 'the role is inactive' }],
      'ConnectionRoleInactive',
    );
  }
  if (!appliesTo(role, type.code)) {
    throw validationError(
      `Connection role "${role.name}" does not apply to ${type.name} records.`,
      [{ field, message: `the role applies to ${role.objecttypecodes.join(', ')}` }],
      'ConnectionRoleNotValidForObjectType',
    );
  }
  return role;
}

/**
 * Dataverse's role rules for a connection: each role exists, is active and applies to its record's
 * type; two roles must match; a lone record 1 role with exactly one usable matching role gets it as
 * record 2's role.
 */
export function checkRoles(
  catalog: RoleCatalog,
  roles: RoleAssignment,
  record1type: ObjectType,
  record2type: ObjectType,
  fillRecord2 = true,
): RoleAssignment {
  const role1 = roles.record1roleid
    ? usableRole(catalog, roles.record1roleid, record1type, 'record1roleid')
    : undefined;
  const role2 = roles.record2roleid
    ? usableRole(catalog, roles.record2roleid, record2type, 'record2roleid')
    : undefined;
  if (role1 && role2 && !catalog.match(role1.connectionroleid, role2.connectionroleid)) {
    throw validationError(
      `Roles "${role1.name}" and "${role2.name}" are not matching roles.`,
      [{ field: 'record2roleid', message: 'must be a matching role of record1roleid' }],
      'UnrelatedConnectionRoles',
    );
  }
  if (role1 && !role2 && fillRecord2) {
    const candidates = catalog.matchingRoles(role1.connectionroleid);
    const only = candidates.length === 1 ? candidates[0] : undefined;
    if (only && only.statecode === ACTIVE && appliesTo(only, record2type.code)) {
      return { record1roleid: role1.connectionroleid, record2roleid: only.connectionroleid };
    }
  }
  return { record1roleid: role1?.connectionroleid ?? null, record2roleid: role2?.connectionroleid ?? null };
}
