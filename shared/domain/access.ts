import { z } from 'zod';
import type { Caller } from './caller';
import { doc } from './doc';
import { forbidden, notFound, validationError } from './errors';
import { guid } from './ids';

/** Dataverse's AccessRights flags. */
export const AccessRights = {
  ReadAccess: 1,
  WriteAccess: 2,
  AppendAccess: 4,
  AppendToAccess: 16,
  CreateAccess: 32,
  DeleteAccess: 65536,
  ShareAccess: 262144,
  AssignAccess: 524288,
} as const;
export type AccessRightName = keyof typeof AccessRights;
const rightNames = Object.keys(AccessRights) as AccessRightName[];
export const ALL_RIGHTS = rightNames.reduce((mask, name) => mask | AccessRights[name], 0);

export type PrincipalType = 'systemuser' | 'team';

/** A principal's rights on one connection; both halves carry the same list. */
export interface Share {
  principalid: string;
  principaltype: PrincipalType;
  accessmask: number;
}

/** A connection holds at most this many shares (they travel in each half and each index entry). */
export const MAX_SHARES = 200;

export const rightsOf = (mask: number): AccessRightName[] =>
  rightNames.filter((name) => (mask & AccessRights[name]) !== 0);
export const formatRights = (mask: number): string => rightsOf(mask).join(', ');

/** A mask as a number or as comma-separated names ("ReadAccess, WriteAccess"); never empty. */
export const accessMaskSchema = z.union([z.number(), z.string()]).transform((value, context) => {
  let mask = 0;
  if (typeof value === 'number') {
    mask = value;
  } else if (/^\s*\d+\s*$/.test(value)) {
    mask = Number(value);
  } else {
    for (const part of value
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean)) {
      const name = rightNames.find((candidate) => candidate.toLowerCase() === part.toLowerCase());
      if (!name) {
        context.addIssue({ code: 'custom', message: `unknown right "${part}"; rights are ${rightNames.join(', ')}` });
        return z.NEVER;
      }
      mask |= AccessRights[name];
    }
  }
  // Range first: bitwise operators work on 32 bits, so 2^32 + 1 would pass as ReadAccess and 1e300 as
  // no right at all. Within 1..ALL_RIGHTS (under 2^20) they are exact.
  if (!Number.isSafeInteger(mask) || mask < 1 || mask > ALL_RIGHTS || (mask & ~ALL_RIGHTS) !== 0) {
    context.addIssue({
      code: 'custom',
      message: `must name at least one right, and only these: ${rightNames.join(', ')} (mask ${ALL_RIGHTS})`,
    });
    return z.NEVER;
  }
  return mask;
});

const principalType = z
  .enum(['systemuser', 'team'])
  .meta(
    doc('Principal type', 'Whether the principal is a user (systemuser) or a team (team, a Microsoft Entra group).'),
  );
const accessMask = accessMaskSchema.meta(
  doc(
    'Access rights',
    "The rights, as names separated by commas (ReadAccess, WriteAccess) or as Dataverse's AccessRights number.",
    { visibility: 'important' },
  ),
);

export const grantAccessSchema = z
  .strictObject({
    principalid: guid.meta(
      doc('Principal ID', 'The object ID of the user or team to share with.', { visibility: 'important' }),
    ),
    principaltype: principalType,
    accessmask: accessMask,
  })
  .meta({ title: 'Grant', description: "The rights to add to a principal's share." });
export type GrantAccessInput = z.infer<typeof grantAccessSchema>;

export const modifyAccessSchema = z
  .strictObject({
    principaltype: principalType.optional(),
    accessmask: accessMask,
  })
  .meta({ title: 'AccessChange', description: "The rights that replace a principal's share." });
export type ModifyAccessInput = z.infer<typeof modifyAccessSchema>;

export const shareView = (share: Share) => ({ ...share, accessrights: formatRights(share.accessmask) });

/** Where a right comes from, for RetrievePrincipalAccess. */
export type AccessOrigin = 'owner' | 'administrator' | 'direct' | `team:${string}`;

export interface EffectiveAccess {
  mask: number;
  origins: { right: AccessRightName; from: AccessOrigin[] }[];
}

interface Owned {
  ownerid: string;
  shares: Share[];
}

/** What a principal holds on a connection: owner and administrators everything, others the union of their shares. */
export function effectiveAccess(
  principal: { id: string; teams: string[]; isAdmin: boolean },
  connection: Owned,
): EffectiveAccess {
  const sources: { mask: number; from: AccessOrigin }[] = [];
  if (principal.isAdmin) sources.push({ mask: ALL_RIGHTS, from: 'administrator' });
  if (connection.ownerid === principal.id || principal.teams.includes(connection.ownerid))
    sources.push({ mask: ALL_RIGHTS, from: 'owner' });
  for (const share of connection.shares) {
    if (share.principaltype === 'systemuser' && share.principalid === principal.id)
      sources.push({ mask: share.accessmask, from: 'direct' });
    if (share.principaltype === 'team' && principal.teams.includes(share.principalid)) {
      sources.push({ mask: share.accessmask, from: `team:${share.principalid}` });
    }
  }
  const mask = sources.reduce((all, source) => all | source.mask, 0);
  return {
    mask,
    origins: rightsOf(mask).map((right) => ({
      right,
      from: sources.filter((source) => source.mask & AccessRights[right]).map((source) => source.from),
    })),
  };
}

export const canRead = (caller: Caller, connection: Owned): boolean =>
  (effectiveAccess(caller, connection).mask & AccessRights.ReadAccess) !== 0;

/**
 * Existence does not leak: without ReadAccess a connection is "not found"; with it, a missing right
 * for the operation is 403.
 */
export function requireRights(caller: Caller, connection: Owned, ...needed: AccessRightName[]): EffectiveAccess {
  const access = effectiveAccess(caller, connection);
  if ((access.mask & AccessRights.ReadAccess) === 0)
    throw notFound('No such connection for this record.', 'ConnectionNotFound');
  const missing = needed.filter((name) => (access.mask & AccessRights[name]) === 0);
  if (missing.length > 0) throw forbidden(`This needs ${missing.join(' and ')} on the connection.`, 'AccessDenied');
  return access;
}

/** A sharer can only pass on rights it holds itself. */
export function requireGrantable(access: EffectiveAccess, mask: number): void {
  const beyond = mask & ~access.mask;
  if (beyond !== 0)
    throw forbidden(`You cannot grant rights you do not hold: ${formatRights(beyond)}.`, 'AccessDenied');
}

const sortShares = (shares: Share[]): Share[] =>
  [...shares].sort((a, b) => (a.principalid < b.principalid ? -1 : a.principalid > b.principalid ? 1 : 0));

/** GrantAccess: adds rights to any the principal already has. */
export function grant(shares: Share[], share: Share): Share[] {
  const existing = shares.find((candidate) => candidate.principalid === share.principalid);
  if (!existing && shares.length >= MAX_SHARES) {
    throw validationError(
      `A connection can be shared with at most ${MAX_SHARES} principals: share with a team instead.`,
      [],
      'TooManyShares',
    );
  }
  const merged: Share = existing
    ? { ...existing, principaltype: share.principaltype, accessmask: existing.accessmask | share.accessmask }
    : share;
  return sortShares([...shares.filter((candidate) => candidate.principalid !== share.principalid), merged]);
}

/** ModifyAccess: replaces the principal's rights; 404 when it has no share. */
export function modify(shares: Share[], principalId: string, input: ModifyAccessInput): Share[] {
  const existing = shares.find((candidate) => candidate.principalid === principalId);
  if (!existing) throw notFound('This principal has no share on the connection.', 'ShareNotFound');
  return sortShares([
    ...shares.filter((candidate) => candidate.principalid !== principalId),
    { ...existing, principaltype: input.principaltype ?? existing.principaltype, accessmask: input.accessmask },
  ]);
}

/** RevokeAccess: removes the share entirely. */
export const revoke = (shares: Share[], principalId: string): Share[] =>
  shares.filter((share) => share.principalid !== principalId);
