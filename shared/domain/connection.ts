import { z } from 'zod';
import type { Share } from './access';
import type { Caller } from './caller';
import { instantOf, isoInstant } from './dates';
import { doc } from './doc';
import { conflict, validationError } from './errors';
import { guid, newId, reciprocalIdOf } from './ids';
import type { ObjectType, ObjectTypeRegistry } from './objectTypes';

/** One half of a connection, as stored and as returned (Dataverse logical names). */
export interface ConnectionHalf {
  connectionid: string;
  relatedconnectionid: string;
  ismaster: boolean;
  record1id: string;
  record1objecttypecode: number;
  record1roleid: string | null;
  record1name: string | null;
  record2id: string;
  record2objecttypecode: number;
  record2roleid: string | null;
  record2name: string | null;
  /** The name of record 2: what Dataverse shows in the "connected to" column. */
  name: string | null;
  description: string | null;
  effectivestart: string | null;
  effectiveend: string | null;
  statecode: StateCode;
  statuscode: StatusCode;
  ownerid: string;
  createdon: string;
  createdby: string;
  modifiedon: string;
  modifiedby: string;
  versionnumber: number;
  /** Who else may do what; equal on both halves. Not part of the connection's public shape. */
  shares: Share[];
}

export type StateCode = 0 | 1;
export type StatusCode = 1 | 2;
export const ACTIVE: StateCode = 0;
export const INACTIVE: StateCode = 1;
export const statusOfState: Record<StateCode, StatusCode> = { 0: 1, 1: 2 };

export const MAX_DESCRIPTION = 2000;
export const MAX_RECORD_NAME = 500;

const objectTypeInput = z.union([z.number().int().nonnegative(), z.string().min(1).max(128)]);

/** Connector pickers: object types from ListObjectTypes, roles from ListConnectionRoles filtered by type. */
export const objectTypePicker = {
  'x-ms-dynamic-values': {
    operationId: 'ListObjectTypes',
    'value-collection': 'value',
    'value-path': 'objecttypename',
    'value-title': 'objecttypename',
  },
  'x-ms-dynamic-list': {
    operationId: 'ListObjectTypes',
    itemsPath: 'value',
    itemValuePath: 'objecttypename',
    itemTitlePath: 'objecttypename',
  },
};
export const rolePicker = (typeField: string) => ({
  'x-ms-dynamic-values': {
    operationId: 'ListConnectionRoles',
    'value-collection': 'value',
    'value-path': 'connectionroleid',
    'value-title': 'name',
    parameters: { validfor: { parameter: typeField }, statecode: '0' },
  },
  'x-ms-dynamic-list': {
    operationId: 'ListConnectionRoles',
    itemsPath: 'value',
    itemValuePath: 'connectionroleid',
    itemTitlePath: 'name',
    parameters: { validfor: { parameterReference: `body/${typeField}` }, statecode: { value: '0' } },
  },
});

const description = z
  .string()
  .max(MAX_DESCRIPTION)
  .nullable()
  .optional()
  .meta(
    doc(
      'Description',
      'Information about the connection, such as the length or quality of the relationship (at most 2000 characters).',
    ),
  );
const effectivestart = isoInstant
  .nullable()
  .optional()
  .meta(
    doc(
      'Starting',
      'When the connection starts (ISO 8601 date or date-time); empty means it has always been in effect.',
      { format: 'date-time' },
    ),
  );
const effectiveend = isoInstant
  .nullable()
  .optional()
  .meta(
    doc(
      'Ending',
      'When the connection ends (ISO 8601 date or date-time), not before it starts; empty means open-ended.',
      { format: 'date-time' },
    ),
  );
const roleOf = (record: 1 | 2, summary: string) =>
  guid
    .nullable()
    .optional()
    .meta(
      doc(
        summary,
        `The connection role record ${record} plays toward the other record; pick from the roles valid for its type.`,
        rolePicker(`record${record}objecttypecode`),
      ),
    );

/** The statecode/statuscode pair of a change, as connections and roles both take it. */
export const stateFields = (statusDescription: string) => ({
  statecode: z
    .union([z.literal(0), z.literal(1)])
    .optional()
    .meta(doc('Status', statusDescription)),
  statuscode: z
    .union([z.literal(1), z.literal(2)])
    .optional()
    .meta(
      doc('Status reason', 'Active (1) or Inactive (2); follows the status when left out.', { visibility: 'advanced' }),
    ),
});

/** A PATCH body must change at least one field. */
export const changesSomething = (patch: object): boolean => Object.keys(patch).length > 0;

export const createConnectionSchema = z
  .strictObject({
    connectionid: guid
      .optional()
      .meta(
        doc(
          'Connection ID',
          'A GUID you choose for the connection, so a retried request never makes a second one; generated when left out. Unique across all connections (with the id of its other half).',
          { visibility: 'advanced' },
        ),
      ),
    record1id: guid.meta(
      doc('From record ID', 'The GUID of the source record (record 1).', { visibility: 'important' }),
    ),
    record1objecttypecode: objectTypeInput.meta(
      doc('From record type', "The source record's table, as an object type code (1) or logical name (account).", {
        visibility: 'important',
        ...objectTypePicker,
      }),
    ),
    record1roleid: roleOf(1, 'From role'),
    record1name: z
      .string()
      .max(MAX_RECORD_NAME)
      .nullable()
      .optional()
      .meta(
        doc(
          'From record name',
          "The source record's display name, shown as the connection name on the reciprocal side (at most 500 characters).",
        ),
      ),
    record2id: guid.meta(doc('To record ID', 'The GUID of the target record (record 2).', { visibility: 'important' })),
    record2objecttypecode: objectTypeInput.meta(
      doc('To record type', "The target record's table, as an object type code (2) or logical name (contact).", {
        visibility: 'important',
        ...objectTypePicker,
      }),
    ),
    record2roleid: roleOf(2, 'To role'),
    record2name: z
      .string()
      .max(MAX_RECORD_NAME)
      .nullable()
      .optional()
      .meta(
        doc(
          'To record name',
          "The target record's display name, shown as the connection name (at most 500 characters).",
        ),
      ),
    description,
    effectivestart,
    effectiveend,
  })
  .meta({ title: 'NewConnection', description: 'A connection to create between two records.' });
export type CreateConnectionInput = z.infer<typeof createConnectionSchema>;

export const updateConnectionSchema = z
  .strictObject({
    description,
    effectivestart,
    effectiveend,
    record1roleid: roleOf(1, 'From role'),
    record2roleid: roleOf(2, 'To role'),
    ownerid: guid.optional().meta(
      doc('Owner', 'Assigns the connection to another user or team, by object ID (needs AssignAccess).', {
        visibility: 'advanced',
      }),
    ),
    ...stateFields(
      'Whether the connection is active (0) or inactive (1); inactive connections are read-only until reactivated.',
    ),
  })
  .refine(changesSomething, { message: 'the body changes nothing: give at least one field' })
  .meta({
    title: 'ConnectionChanges',
    description: 'The fields of a connection to change; the others keep their values.',
  });
export type UpdateConnectionInput = z.infer<typeof updateConnectionSchema>;

export function resolveObjectType(registry: ObjectTypeRegistry, value: number | string, field: string): ObjectType {
  const type = registry.resolve(value);
  if (!type) {
    throw validationError(
      `Unknown object type "${value}".`,
      [{ field, message: 'not a known object type code or logical name; GET /api/objecttypes lists them' }],
      'UnknownObjectType',
    );
  }
  return type;
}

function checkWindow(start: string | null, end: string | null): void {
  if (start && end && instantOf(end) < instantOf(start)) {
    throw validationError(
      'The connection cannot end before it starts.',
      [{ field: 'effectiveend', message: 'must not be earlier than effectivestart' }],
      'ConnectionInvalidStartEndDate',
    );
  }
}

/** The master half of a new connection, as the caller asked for it. */
export function newMasterHalf(
  input: CreateConnectionInput,
  types: ObjectTypeRegistry,
  caller: Caller,
  now: Date,
): ConnectionHalf {
  if (input.record1id === input.record2id) {
    throw validationError(
      'A record cannot be connected to itself.',
      [{ field: 'record2id', message: 'must differ from record1id' }],
      'CannotConnectToSelf',
    );
  }
  const record1type = resolveObjectType(types, input.record1objecttypecode, 'record1objecttypecode');
  const record2type = resolveObjectType(types, input.record2objecttypecode, 'record2objecttypecode');
  const effectivestart = input.effectivestart ?? null;
  const effectiveend = input.effectiveend ?? null;
  checkWindow(effectivestart, effectiveend);
  const connectionid = input.connectionid ?? newId();
  const timestamp = now.toISOString();
  return {
    connectionid,
    relatedconnectionid: reciprocalIdOf(connectionid),
    ismaster: true,
    record1id: input.record1id,
    record1objecttypecode: record1type.code,
    record1roleid: input.record1roleid ?? null,
    record1name: input.record1name ?? null,
    record2id: input.record2id,
    record2objecttypecode: record2type.code,
    record2roleid: input.record2roleid ?? null,
    record2name: input.record2name ?? null,
    name: input.record2name ?? null,
    description: input.description ?? null,
    effectivestart,
    effectiveend,
    statecode: ACTIVE,
    statuscode: statusOfState[ACTIVE],
    ownerid: caller.id,
    createdon: timestamp,
    createdby: caller.id,
    modifiedon: timestamp,
    modifiedby: caller.id,
    versionnumber: 1,
    shares: [],
  };
}

/** The reciprocal of a half: records, types and roles swapped; everything else shared. */
export function reciprocalOf(master: ConnectionHalf): ConnectionHalf {
  return {
    ...master,
    connectionid: master.relatedconnectionid,
    relatedconnectionid: master.connectionid,
    ismaster: !master.ismaster,
    record1id: master.record2id,
    record1objecttypecode: master.record2objecttypecode,
    record1roleid: master.record2roleid,
    record1name: master.record2name,
    record2id: master.record1id,
    record2objecttypecode: master.record1objecttypecode,
    record2roleid: master.record1roleid,
    record2name: master.record1name,
    name: master.record1name,
  };
}

/** A half in its creator's orientation (the master half): itself, or its reciprocal. */
export const masterOf = (half: ConnectionHalf): ConnectionHalf => (half.ismaster ? half : reciprocalOf(half));

/** The fields a client chose on create; two creates with equal fields are the same request. */
const createdFields = [
  'record1id',
  'record1objecttypecode',
  'record1roleid',
  'record1name',
  'record2id',
  'record2objecttypecode',
  'record2roleid',
  'record2name',
  'description',
  'effectivestart',
  'effectiveend',
] as const satisfies readonly (keyof ConnectionHalf)[];

export function sameCreateRequest(existing: ConnectionHalf, requested: ConnectionHalf): boolean {
  return existing.ismaster && createdFields.every((field) => existing[field] === requested[field]);
}

/** A new version of a half: who changed it and when. */
export const touched = (half: ConnectionHalf, caller: Caller, now: Date): ConnectionHalf => ({
  ...half,
  modifiedon: now.toISOString(),
  modifiedby: caller.id,
  versionnumber: half.versionnumber + 1,
});

/**
 * The state a change asks for: statecode and statuscode as given, either one following the other when
 * left out, the current state when both are; a statuscode of the other state is refused.
 */
export function requestedState(
  current: StateCode,
  patch: { statecode?: StateCode | undefined; statuscode?: StatusCode | undefined },
): { statecode: StateCode; statuscode: StatusCode } {
  const statecode =
    patch.statecode ?? (patch.statuscode === undefined ? current : patch.statuscode === 1 ? ACTIVE : INACTIVE);
  const statuscode = patch.statuscode ?? statusOfState[statecode];
  if (statusOfState[statecode] !== statuscode) {
    throw validationError('statuscode does not belong to statecode.', [
      {
        field: 'statuscode',
        message: 'statecode 0 (Active) goes with statuscode 1; statecode 1 (Inactive) with statuscode 2',
      },
    ]);
  }
  return { statecode, statuscode };
}

/**
 * Deactivating an inactive connection changes nothing: answered with the connection as it is, so a
 * retried deactivation (the first attempt landed, its answer was lost) is not an error.
 */
export const isRepeatedDeactivation = (master: ConnectionHalf, patch: UpdateConnectionInput): boolean =>
  master.statecode === INACTIVE &&
  Object.keys(patch).every((field) => field === 'statecode' || field === 'statuscode') &&
  requestedState(master.statecode, patch).statecode === INACTIVE;

/** Applies a PATCH to the master half (the source of truth), enforcing Dataverse's state rules. */
export function applyUpdate(
  master: ConnectionHalf,
  patch: UpdateConnectionInput,
  caller: Caller,
  now: Date,
): ConnectionHalf {
  const { statecode, statuscode } = requestedState(master.statecode, patch);
  const onlyStateFields = Object.keys(patch).every((field) => field === 'statecode' || field === 'statuscode');
  if (master.statecode === INACTIVE && !(statecode === ACTIVE && onlyStateFields)) {
    throw conflict(
      'ConnectionInactive',
      'The connection is inactive and read-only: reactivate it (statecode 0) before changing it.',
      {
        connectionid: master.connectionid,
      },
    );
  }
  const next: ConnectionHalf = touched(
    {
      ...master,
      description: patch.description === undefined ? master.description : patch.description,
      effectivestart: patch.effectivestart === undefined ? master.effectivestart : patch.effectivestart,
      effectiveend: patch.effectiveend === undefined ? master.effectiveend : patch.effectiveend,
      record1roleid: patch.record1roleid === undefined ? master.record1roleid : patch.record1roleid,
      record2roleid: patch.record2roleid === undefined ? master.record2roleid : patch.record2roleid,
      ownerid: patch.ownerid ?? master.ownerid,
      statecode,
      statuscode,
    },
    caller,
    now,
  );
  checkWindow(next.effectivestart, next.effectiveend);
  return next;
}

/** What clients see: the half (without its shares) plus the logical names of both record types. */
export interface ConnectionView extends Omit<ConnectionHalf, 'shares'> {
  record1objecttypename: string | null;
  record2objecttypename: string | null;
}

export function toView({ shares: _shares, ...half }: ConnectionHalf, types: ObjectTypeRegistry): ConnectionView {
  return {
    ...half,
    record1objecttypename: types.resolve(half.record1objecttypecode)?.name ?? null,
    record2objecttypename: types.resolve(half.record2objecttypecode)?.name ?? null,
  };
}

/**
 * The strong ETag of a connection: both halves share version and creation time, so either half's ETag
 * works on both URLs, and a connection deleted and created again under the same id gets new ETags.
 */
export const etagOf = (half: Pick<ConnectionHalf, 'versionnumber' | 'createdon'>): string =>
  `"${half.versionnumber}.${Date.parse(half.createdon).toString(36)}"`;

/** Whether a connection is in effect at an instant (written with any offset); open ends count as open. */
export function isActiveOn(half: Pick<ConnectionHalf, 'effectivestart' | 'effectiveend'>, instant: string): boolean {
  const time = instantOf(instant);
  return (
    (half.effectivestart === null || instantOf(half.effectivestart) <= time) &&
    (half.effectiveend === null || time <= instantOf(half.effectiveend))
  );
}

/** Fields that record who changed a connection and when, not what it is. */
const bookkeeping = new Set<keyof ConnectionHalf>(['modifiedon', 'modifiedby', 'versionnumber']);

/** Whether two states of a connection say the same (a change to it would change nothing). */
export function sameContent(a: ConnectionHalf, b: ConnectionHalf): boolean {
  return (Object.keys(a) as (keyof ConnectionHalf)[]).every(
    (field) => bookkeeping.has(field) || JSON.stringify(a[field]) === JSON.stringify(b[field]),
  );
}
