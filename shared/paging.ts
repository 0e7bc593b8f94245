import { createHash } from 'node:crypto';
import { z } from 'zod';
import { validationError } from './errors';

/**
 * The opaque `skiptoken` of a list: where the next page starts, bound to the query it belongs to, so a
 * token replayed with other filters, for another record, or edited by hand is refused with a 400 rather
 * than silently returning the wrong rows.
 */
export interface Position {
  partitionKey: string;
  rowKey: string;
}

const tokenSchema = z.strictObject({
  v: z.literal(1),
  pk: z.string().min(1).max(1024),
  rk: z.string().min(1).max(1024),
  q: z.string().length(16),
});

export const queryFingerprint = (query: object): string =>
  createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);

export function encodeSkipToken(position: Position, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ v: 1, pk: position.partitionKey, rk: position.rowKey, q: fingerprint })).toString('base64url');
}

export function decodeSkipToken(token: string, fingerprint: string, partitionKey: string): Position {
  const invalid = () =>
    validationError('The skiptoken is not valid for this query: follow nextLink as returned.', [
      { field: 'skiptoken', message: 'corrupt, or issued for another query' },
    ], 'InvalidSkipToken');
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(token)) throw invalid();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const parsed = tokenSchema.safeParse(decoded);
  if (!parsed.success || parsed.data.q !== fingerprint || parsed.data.pk !== partitionKey) throw invalid();
  return { partitionKey: parsed.data.pk, rowKey: parsed.data.rk };
}
