import { z } from 'zod';
import { auditRecordSchema } from '../domain/audit';
import type { IfMatch } from '../domain/preconditions';
import { objectTypePicker } from '../domain/connection';
import { isoInstant, restorePlusOffset } from '../domain/dates';
import { doc } from '../domain/doc';
import { DEFAULT_GRAPH_TOP, DEFAULT_NODE_LIMIT, MAX_DEPTH, MAX_NODE_LIMIT } from '../useCases/graph';
import { guid } from '../domain/ids';
import { type RoleCategory, roleCategories } from '../domain/roles';

/**
 * Route, query and response shapes of the HTTP API. Request schemas validate; all of them, with their
 * `doc` metadata, generate the API definition (shared/api/openApi.ts).
 */
const recordid = guid.meta(
  doc('Record ID', 'The GUID of the record whose connections these are.', { visibility: 'important' }),
);
// The connector platform reserves the parameter name connectionId; the definition calls it connectionrecordid.
const connectionid = guid.meta(
  doc('Connection ID', 'The GUID of the connection half, as the record sees it.', { visibility: 'important' }),
);
const connectionroleid = guid.meta(doc('Role ID', 'The GUID of the connection role.', { visibility: 'important' }));

export const recordParams = z.object({ recordid });
export const connectionParams = z.object({ recordid, connectionid });
export const principalParams = z.object({
  recordid,
  connectionid,
  principalid: guid.meta(doc('Principal ID', 'The object ID of the user or team.', { visibility: 'important' })),
});
export const roleParams = z.object({ connectionroleid });
export const matchParams = z.object({
  connectionroleid,
  matchingroleid: guid.meta(
    doc('Matching role ID', 'The GUID of the role that matches it.', { visibility: 'important' }),
  ),
});

const digits = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,4}$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const DEFAULT_PAGE_SIZE = 100;

const objectType = z.string().min(1).max(128);
const statecode = z
  .enum(['0', '1'])
  .transform(Number)
  .meta(doc('Status', 'Only active (0) or only inactive (1) ones.', { visibility: 'advanced' }));
const paging = {
  top: digits(1, 1000)
    .default(DEFAULT_PAGE_SIZE)
    .meta(
      doc('Page size', 'How many to return per page, 1 to 1000 (default 100); follow nextLink for more.', {
        visibility: 'advanced',
        type: 'integer',
      }),
    ),
  skiptoken: z
    .string()
    .min(1)
    .max(4096)
    .optional()
    .meta(
      doc('Skip token', 'Where the next page starts; taken from nextLink, not made by hand.', {
        visibility: 'internal',
      }),
    ),
  count: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .optional()
    .meta(
      doc('Count', 'Whether to return the total number of matches (true or false).', {
        visibility: 'advanced',
        type: 'boolean',
      }),
    ),
};

const activeon = z
  .preprocess(restorePlusOffset, isoInstant)
  .optional()
  .meta(
    doc('Active on', 'Only connections in effect on this date (open start or end counts as in effect).', {
      visibility: 'advanced',
      format: 'date-time',
      type: 'string',
    }),
  );

export const listQuerySchema = z.strictObject({
  othertypecode: objectType
    .optional()
    .meta(
      doc('Other record type', 'Only connections to records of this type (code or logical name).', objectTypePicker),
    ),
  otherrecordid: guid
    .optional()
    .meta(doc('Other record ID', 'Only connections to this record.', { visibility: 'advanced' })),
  roleid: guid
    .optional()
    .meta(doc('Role', 'Only connections where the record plays this role.', { visibility: 'advanced' })),
  otherroleid: guid
    .optional()
    .meta(doc('Other role', 'Only connections where the other record plays this role.', { visibility: 'advanced' })),
  statecode: statecode.optional(),
  activeon,
  ...paging,
});

export const auditQuerySchema = z.strictObject({ top: paging.top, skiptoken: paging.skiptoken });

export const graphQuerySchema = z.strictObject({
  depth: digits(1, MAX_DEPTH)
    .default(1)
    .meta(
      doc(
        'Depth',
        'How many hops from the record, 1 or 2 (default 1): 2 also reads the connections of each connected record.',
        { type: 'integer' },
      ),
    ),
  limit: digits(1, MAX_NODE_LIMIT)
    .default(DEFAULT_NODE_LIMIT)
    .meta(
      doc(
        'Node limit',
        `At most this many records, the record itself included, 1 to ${MAX_NODE_LIMIT} (default ${DEFAULT_NODE_LIMIT}); truncated says when it cut.`,
        { visibility: 'advanced', type: 'integer' },
      ),
    ),
  top: digits(1, 1000)
    .default(DEFAULT_GRAPH_TOP)
    .meta(
      doc(
        'Connections per record',
        `At most this many connections read per expanded record, 1 to 1000 (default ${DEFAULT_GRAPH_TOP}); nextLink on a node reads on.`,
        { visibility: 'advanced', type: 'integer' },
      ),
    ),
  count: paging.count.meta(
    doc(
      'Count',
      "Whether to return each record's number of connections (true or false); costs a count per record not fully read.",
      { visibility: 'advanced', type: 'boolean' },
    ),
  ),
  roleid: guid.optional().meta(
    doc('Role', "Only the record's own connections where it plays this role (the first hop).", {
      visibility: 'advanced',
    }),
  ),
  otherroleid: guid.optional().meta(
    doc('Other role', "Only the record's own connections where the other record plays this role (the first hop).", {
      visibility: 'advanced',
    }),
  ),
  othertypecode: objectType
    .optional()
    .meta(
      doc(
        'Other record type',
        "Only the record's own connections to records of this type, code or logical name (the first hop).",
        objectTypePicker,
      ),
    ),
  statecode: statecode
    .meta(doc('Status', 'Only active (0) or only inactive (1) connections, on every hop.', { visibility: 'advanced' }))
    .optional(),
  activeon: activeon.meta(
    doc('Active on', 'Only connections in effect on this date, on every hop (open start or end counts as in effect).', {
      visibility: 'advanced',
      format: 'date-time',
      type: 'string',
    }),
  ),
});

export const roleQuerySchema = z.strictObject({
  roleid: guid.meta(
    doc('Role', 'The role the records play.', {
      visibility: 'important',
      'x-ms-dynamic-values': {
        operationId: 'ListConnectionRoles',
        'value-collection': 'value',
        'value-path': 'connectionroleid',
        'value-title': 'name',
      },
      'x-ms-dynamic-list': {
        operationId: 'ListConnectionRoles',
        itemsPath: 'value',
        itemValuePath: 'connectionroleid',
        itemTitlePath: 'name',
      },
    }),
  ),
  typecode: objectType
    .optional()
    .meta(doc('Record type', 'Only records of this type (code or logical name), such as contact.', objectTypePicker)),
  statecode: statecode.optional(),
  ...paging,
});

export const roleListQuerySchema = z.strictObject({
  category: z
    .enum(Object.keys(roleCategories) as [string, ...string[]])
    .transform((value) => Number(value) as RoleCategory)
    .optional()
    .meta(
      doc(
        'Category',
        'Only roles of this category code (1 Business, 2 Family, 3 Social, 4 Sales, 5 Other, 1000-1002).',
        { visibility: 'advanced' },
      ),
    ),
  statecode: statecode.optional(),
  validfor: objectType
    .optional()
    .meta(doc('Valid for type', 'Only roles a record of this type can take (code or logical name).', objectTypePicker)),
  counterpart: objectType
    .optional()
    .meta(
      doc(
        'Toward type',
        'Only roles usable toward a record of this type: those with an active matching role it can take, and those with no active matching role (the other role stays empty).',
        { visibility: 'advanced', ...objectTypePicker },
      ),
    ),
  ...paging,
});

/** If-Match: "*" or a list of ETags; weak ETags are kept and simply never match (strong comparison). */
export function parseIfMatch(header: string | null): IfMatch | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (header.trim() === '*') return '*';
  return header
    .split(',')
    .map((tag) => tag.trim())
    .filter(Boolean);
}

// Responses.

const text = (summary: string, description: string, extra = {}) =>
  z
    .string()
    .nullable()
    .meta(doc(summary, description, extra));
const id = (summary: string, description: string, extra = {}) =>
  z.string().meta(doc(summary, description, { format: 'uuid', ...extra }));
const nextLink = z
  .string()
  .optional()
  .meta(doc('Next page', 'The absolute URL of the next page; absent on the last page.', { visibility: 'internal' }));
const count = z
  .number()
  .int()
  .optional()
  .meta(doc('Count', 'The total number of matches, when count=true was asked for.', { visibility: 'advanced' }));

export const connectionViewSchema = z
  .object({
    connectionid: id('Connection ID', 'The GUID of this half of the connection.'),
    relatedconnectionid: id('Reciprocal connection ID', "The GUID of the other half, in the other record's list.", {
      visibility: 'advanced',
    }),
    ismaster: z
      .boolean()
      .meta(doc('Is master', 'Whether this half is the one the caller created.', { visibility: 'advanced' })),
    record1id: id('From record ID', "The GUID of this half's record (record 1)."),
    record1objecttypecode: z.number().int().meta(doc('From record type code', 'The object type code of record 1.')),
    record1objecttypename: text('From record type', "The logical name of record 1's table."),
    record1roleid: text('From role', 'The role record 1 plays, if any.'),
    record1name: text('From record name', "Record 1's display name, if given."),
    record2id: id('To record ID', 'The GUID of the connected record (record 2).'),
    record2objecttypecode: z.number().int().meta(doc('To record type code', 'The object type code of record 2.')),
    record2objecttypename: text('To record type', "The logical name of record 2's table."),
    record2roleid: text('To role', 'The role record 2 plays, if any.'),
    record2name: text('To record name', "Record 2's display name, if given."),
    name: text('Connected to', 'The name of record 2, as Dataverse shows it.'),
    description: text('Description', 'Information about the connection.'),
    effectivestart: text('Starting', 'When the connection starts, if set.', { format: 'date-time' }),
    effectiveend: text('Ending', 'When the connection ends, if set.', { format: 'date-time' }),
    statecode: z.number().int().meta(doc('Status', '0 Active, 1 Inactive.')),
    statuscode: z
      .number()
      .int()
      .meta(doc('Status reason', '1 Active, 2 Inactive.', { visibility: 'advanced' })),
    ownerid: id('Owner', 'The object ID of the owning user or team.'),
    createdon: z.string().meta(doc('Created on', 'When the connection was created.', { format: 'date-time' })),
    createdby: id('Created by', 'Who created the connection.', { visibility: 'advanced' }),
    modifiedon: z.string().meta(doc('Modified on', 'When the connection last changed.', { format: 'date-time' })),
    modifiedby: id('Modified by', 'Who changed the connection last.', { visibility: 'advanced' }),
    versionnumber: z
      .number()
      .int()
      .meta(doc('Version', 'Grows with every change; both halves share it.', { visibility: 'advanced' })),
  })
  .meta({ title: 'Connection', description: 'One half of a connection, as its record 1 sees it.' });

export const connectionListSchema = z
  .object({
    value: z.array(connectionViewSchema).meta(doc('Connections', 'The connections on this page.')),
    count,
    nextLink,
  })
  .meta({ title: 'ConnectionList', description: 'A page of connections.' });

export const auditListSchema = z
  .object({
    value: z.array(auditRecordSchema).meta(doc('Changes', 'The changes on this page, newest first.')),
    nextLink,
  })
  .meta({ title: 'AuditList', description: "A page of a connection's audit history." });

export const roleViewSchema = z
  .object({
    connectionroleid: id('Role ID', 'The GUID of the role.'),
    name: z.string().meta(doc('Name', "The role's name.")),
    category: z.number().int().meta(doc('Category', 'The category code.')),
    categoryname: z.string().meta(doc('Category name', "The category's label.")),
    description: text('Description', 'What the role means.'),
    statecode: z.number().int().meta(doc('Status', '0 Active, 1 Inactive.')),
    statuscode: z
      .number()
      .int()
      .meta(doc('Status reason', '1 Active, 2 Inactive.', { visibility: 'advanced' })),
    objecttypecodes: z
      .array(z.number().int())
      .meta(
        doc('Record type codes', 'The types the role applies to; empty means every type.', { visibility: 'advanced' }),
      ),
    objecttypenames: z.array(z.string()).meta(doc('Record types', 'The logical names of those types.')),
    createdon: z
      .string()
      .meta(doc('Created on', 'When the role was created.', { format: 'date-time', visibility: 'advanced' })),
    createdby: id('Created by', 'Who created the role.', { visibility: 'advanced' }),
    modifiedon: z
      .string()
      .meta(doc('Modified on', 'When the role last changed.', { format: 'date-time', visibility: 'advanced' })),
    modifiedby: id('Modified by', 'Who changed the role last.', { visibility: 'advanced' }),
    versionnumber: z
      .number()
      .int()
      .meta(doc('Version', 'Grows with every change.', { visibility: 'advanced' })),
  })
  .meta({ title: 'ConnectionRole', description: 'A connection role.' });

export const roleListSchema = z
  .object({
    value: z.array(roleViewSchema).meta(doc('Roles', 'The roles on this page.')),
    count,
    nextLink,
  })
  .meta({ title: 'ConnectionRoleList', description: 'A page of connection roles.' });

export const matchingRolesSchema = z
  .object({
    value: z.array(roleViewSchema).meta(doc('Matching roles', 'The roles that match the role.')),
  })
  .meta({ title: 'MatchingRoles', description: 'The matching roles of a role.' });

export const shareViewSchema = z
  .object({
    principalid: id('Principal ID', 'The object ID of the user or team.'),
    principaltype: z.string().meta(doc('Principal type', 'systemuser or team.')),
    accessmask: z.number().int().meta(doc('Access mask', "The rights as Dataverse's AccessRights number.")),
    accessrights: z.string().meta(doc('Access rights', 'The rights by name, separated by commas.')),
  })
  .meta({ title: 'Share', description: 'The rights one principal holds on a connection through a share.' });

export const shareListSchema = z
  .object({
    value: z.array(shareViewSchema).meta(doc('Shares', 'Every principal with a share.')),
  })
  .meta({ title: 'ShareList', description: 'The shares of a connection.' });

export const principalAccessSchema = z
  .object({
    principalid: id('Principal ID', 'The object ID of the user or team.'),
    accessmask: z.number().int().meta(doc('Access mask', 'The effective rights as a number.')),
    accessrights: z.string().meta(doc('Access rights', 'The effective rights by name.')),
    origins: z
      .array(
        z
          .object({
            right: z.string().meta(doc('Right', 'One right the principal holds.')),
            from: z
              .array(z.string())
              .meta(doc('From', 'Where it comes from: owner, administrator, direct, or team:<id>.')),
          })
          .meta({ title: 'RightOrigin', description: 'One right and its sources.' }),
      )
      .meta(doc('Origins', 'Each right with where it comes from.')),
  })
  .meta({ title: 'PrincipalAccess', description: "A principal's effective rights on a connection." });

export const recordRolesSchema = z
  .object({
    recordid: id('Record ID', 'The record.'),
    count: z.number().int().meta(doc('Number of roles', 'How many distinct roles the record plays.')),
    value: z
      .array(
        z
          .object({
            connectionroleid: id('Role ID', 'The role.'),
            name: text('Name', "The role's name."),
            count: z
              .number()
              .int()
              .meta(doc('Connections', "In how many of the record's connections it plays the role.")),
          })
          .meta({ title: 'RecordRole', description: 'A role a record plays, with its number of connections.' }),
      )
      .meta(doc('Roles', 'The roles the record plays.')),
  })
  .meta({ title: 'RecordRoles', description: 'The distinct roles a record plays.' });

const roleName = (side: string) =>
  text(`${side} role name`, `The name of the role ${side.toLowerCase()} record plays, if any.`, {
    visibility: 'advanced',
  });

export const graphSchema = z
  .object({
    recordid: id('Record ID', 'The record the graph is drawn around.'),
    depth: z.number().int().meta(doc('Depth', 'How many hops from the record were read.')),
    truncated: z
      .boolean()
      .meta(doc('Truncated', 'Whether the answer leaves connections or records out (truncatedby says why).')),
    truncatedby: z
      .array(z.enum(['limit', 'top']))
      .meta(
        doc(
          'Truncated by',
          'limit: records left out at the node limit; top: a record has more connections than were read (see its nextLink).',
        ),
      ),
    nodes: z
      .array(
        z
          .object({
            recordid: id('Record ID', 'The record.'),
            objecttypecode: z
              .number()
              .int()
              .nullable()
              .meta(doc('Record type code', 'Its object type code; empty when no readable connection names it.')),
            objecttypename: text('Record type', 'The logical name of its table.'),
            name: text('Name', 'Its display name, as connections give it.'),
            depth: z
              .number()
              .int()
              .meta(doc('Hops', 'How many hops from the record the graph is drawn around (0 for that record).')),
            expanded: z.boolean().meta(doc('Expanded', 'Whether its connections were read.')),
            hasmore: z.boolean().meta(doc('Has more', 'Whether it has more connections than were read.')),
            connectioncount: z
              .number()
              .int()
              .optional()
              .meta(doc('Connections', 'Its number of connections the caller can read, when count=true.')),
            nextLink: z
              .string()
              .optional()
              .meta(
                doc(
                  'Next page',
                  'The list of its connections from where the graph stopped reading, when it has more.',
                  { visibility: 'internal' },
                ),
              ),
          })
          .meta({ title: 'GraphNode', description: 'A record in the graph.' }),
      )
      .meta(doc('Records', 'The records, the one the graph is drawn around first, then by hops.')),
    edges: z
      .array(
        connectionViewSchema
          .extend({
            record1rolename: roleName('From'),
            record2rolename: roleName('To'),
            depth: z
              .number()
              .int()
              .meta(doc('Hop', 'On which hop the connection was found (1: a connection of the record itself).')),
          })
          .meta({
            title: 'GraphEdge',
            description:
              'A connection between two records of the graph, as the record nearer the centre (record 1) sees it.',
          }),
      )
      .meta(doc('Connections', 'Each connection once, between records of the graph.')),
  })
  .meta({ title: 'RecordGraph', description: 'The records connected to a record and the connections between them.' });

export const deletedSchema = z
  .object({
    recordid: id('Record ID', 'The record whose connections were deleted.'),
    deleted: z.number().int().meta(doc('Deleted', 'How many connections were deleted.')),
  })
  .meta({ title: 'DeletedConnections', description: "The result of deleting a record's connections." });

export const objectTypesSchema = z
  .object({
    value: z
      .array(
        z
          .object({
            objecttypecode: z.number().int().meta(doc('Code', 'The object type code.')),
            objecttypename: z.string().meta(doc('Logical name', "The table's logical name.")),
          })
          .meta({ title: 'ObjectType', description: 'A record type the service accepts.' }),
      )
      .meta(doc('Types', 'Every type this deployment accepts.')),
  })
  .meta({ title: 'ObjectTypes', description: 'The record types this deployment accepts.' });

export const healthSchema = z
  .object({ status: z.string().meta(doc('Status', 'ok when the app answers.')) })
  .meta({ title: 'Health', description: 'The liveness answer.' });

export const etagHeader = { etag: "The connection's version, for If-Match." };
