import { z } from 'zod';
import type { IfMatch } from '../connections';
import { guid } from '../ids';
import { type RoleCategory, roleCategories } from '../roles';

/** Route, query and header shapes shared by the HTTP adapters. */
export const recordParams = z.object({ recordid: guid });
export const connectionParams = z.object({ recordid: guid, connectionid: guid });

const digits = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,4}$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

export const DEFAULT_PAGE_SIZE = 100;

const objectType = z.string().min(1).max(128);
const statecode = z.enum(['0', '1']).transform(Number);
const paging = {
  top: digits(1, 1000).default(DEFAULT_PAGE_SIZE),
  skiptoken: z.string().min(1).max(4096).optional(),
  count: z.enum(['true', 'false']).transform((value) => value === 'true').optional(),
};

export const listQuerySchema = z.strictObject({
  othertypecode: objectType.optional(),
  otherrecordid: guid.optional(),
  roleid: guid.optional(),
  otherroleid: guid.optional(),
  statecode: statecode.optional(),
  activeon: z
    .union([z.iso.datetime({ offset: true }), z.iso.date()])
    .transform((value) => new Date(value).toISOString())
    .optional(),
  ...paging,
});

export const roleQuerySchema = z.strictObject({
  roleid: guid,
  typecode: objectType.optional(),
  statecode: statecode.optional(),
  ...paging,
});

export const roleParams = z.object({ connectionroleid: guid });
export const matchParams = z.object({ connectionroleid: guid, matchingroleid: guid });

export const roleListQuerySchema = z.strictObject({
  category: z
    .enum(Object.keys(roleCategories) as [string, ...string[]])
    .transform((value) => Number(value) as RoleCategory)
    .optional(),
  statecode: statecode.optional(),
  validfor: objectType.optional(),
  counterpart: objectType.optional(),
  ...paging,
});

/** If-Match: "*" or a list of ETags; weak ETags are kept and simply never match (strong comparison). */
export function parseIfMatch(header: string | null): IfMatch | undefined {
  if (header === null || header.trim() === '') return undefined;
  if (header.trim() === '*') return '*';
  return header.split(',').map((tag) => tag.trim()).filter(Boolean);
}

export const principalParams = z.object({ recordid: guid, connectionid: guid, principalid: guid });
