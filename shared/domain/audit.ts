import { z } from 'zod';
import { rightsOf, type Share } from './access';
import type { ConnectionHalf } from './connection';
import { doc } from './doc';

/**
 * The audit history of a connection: one record per committed version, written in the same entity
 * group transaction as the version itself (see ConnectionStore.commit), so there is never a change
 * without its record, nor a record of a change that did not happen, and it costs no storage request.
 */

/** What a version did, Dataverse's audit actions for a connection. */
export const auditOperations = [
  'create',
  'update',
  'delete',
  'assign',
  'share',
  'activate',
  'deactivate',
  'repair',
] as const;
export type AuditOperation = (typeof auditOperations)[number];

/** Fields whose changes are recorded (ids, record types and timestamps never change or are the record itself). */
const AUDITED = [
  'record1roleid',
  'record2roleid',
  'record1name',
  'record2name',
  'description',
  'effectivestart',
  'effectiveend',
  'statecode',
  'statuscode',
  'ownerid',
] as const;

export interface AuditChange {
  /** A field of the connection, or "share:<principal id>" for that principal's rights. */
  attribute: string;
  oldvalue: string | null;
  newvalue: string | null;
}

export interface AuditRecord {
  operation: AuditOperation;
  /** Who made the change (the version's modifiedby). */
  userid: string;
  /** When (the version's modifiedon). */
  createdon: string;
  versionnumber: number;
  changes: AuditChange[];
}

const text = (value: string | number | null): string | null => (value === null ? null : String(value));
const rightsText = (share: Share | undefined): string | null => (share ? rightsOf(share.accessmask).join(',') : null);

/** The field changes from one state to the next, in the master's orientation; `before` undefined for a create. */
export function changesBetween(before: ConnectionHalf | undefined, after: ConnectionHalf): AuditChange[] {
  const changes: AuditChange[] = [];
  for (const field of AUDITED) {
    const oldvalue = before ? text(before[field]) : null;
    const newvalue = text(after[field]);
    if (oldvalue !== newvalue) changes.push({ attribute: field, oldvalue, newvalue });
  }
  const principals = [
    ...new Set([...(before?.shares ?? []), ...after.shares].map((share) => share.principalid)),
  ].sort();
  for (const principal of principals) {
    const oldvalue = rightsText(before?.shares.find((share) => share.principalid === principal));
    const newvalue = rightsText(after.shares.find((share) => share.principalid === principal));
    if (oldvalue !== newvalue) changes.push({ attribute: `share:${principal}`, oldvalue, newvalue });
  }
  return changes;
}

/** What a commit did, from the states around it; `byRepair` for the repair job's and an undo's commits. */
export function operationOf(
  before: ConnectionHalf | undefined,
  after: ConnectionHalf,
  deleted: boolean,
  byRepair: boolean,
): AuditOperation {
  if (byRepair) return 'repair';
  if (deleted) return 'delete';
  if (!before) return 'create';
  const changed = new Set(
    changesBetween(before, after).map((change) =>
      change.attribute.startsWith('share:') ? 'shares' : change.attribute,
    ),
  );
  if (changed.size === 1 && changed.has('ownerid')) return 'assign';
  if (changed.size === 1 && changed.has('shares')) return 'share';
  if ([...changed].every((field) => field === 'statecode' || field === 'statuscode') && changed.has('statecode')) {
    return after.statecode === 0 ? 'activate' : 'deactivate';
  }
  return 'update';
}

/** A record as seen from the other record: record 1 and record 2 swap, as they do in the connection's view. */
export function seenFromOtherSide(record: AuditRecord): AuditRecord {
  const swap = (attribute: string) =>
    attribute.replace(/^record([12])/, (_match, side: string) => `record${side === '1' ? '2' : '1'}`);
  return { ...record, changes: record.changes.map((change) => ({ ...change, attribute: swap(change.attribute) })) };
}

export const auditChangeSchema = z
  .object({
    attribute: z
      .string()
      .meta(doc('Attribute', 'The field that changed, or "share:" and the principal whose rights changed.')),
    oldvalue: z
      .string()
      .nullable()
      .meta(doc('Old value', 'Its value before the change (rights as a comma-separated list); null when it had none.')),
    newvalue: z.string().nullable().meta(doc('New value', 'Its value after the change; null when it has none.')),
  })
  .meta({ title: 'AuditChange', description: 'One field changed by a version of a connection.' });

export const auditRecordSchema = z
  .object({
    operation: z
      .enum(auditOperations)
      .meta(
        doc(
          'Operation',
          'What the change did: create, update, delete, assign, share, activate, deactivate, or repair (the repair job).',
        ),
      ),
    userid: z.string().meta(doc('Changed by', 'The user who made the change.')),
    createdon: z.string().meta(doc('Changed on', 'When the change was made (UTC).')),
    versionnumber: z.number().int().meta(doc('Version', 'The version of the connection the change made.')),
    changes: z.array(auditChangeSchema).meta(doc('Changes', 'The fields it changed, with their old and new values.')),
  })
  .meta({ title: 'AuditRecord', description: 'One change of a connection, newest first.' });
