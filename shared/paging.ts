import { createHash } from 'node:crypto';
import { z } from 'zod';
import { validationError } from './errors';

/**
 * The opaque `skiptoken` of a list: where the next page starts (storage's own continuation, itself
 * opaque since Azure and Azurite encode their next keys differently, or the last key served), bound to
 * the scope (record, role) and the query it belongs to. A token replayed with other filters, for another
 * scope, or edited by hand is a 400, never the wrong rows; and every storage query names its partition,
 * so no token can reach outside it.
 */
const tokenSchema = z.strictObject({
  v: z.literal(1),
  s: z.string().min(1).max(1024),
  q: z.string().length(16),
  p: z.string().min(1).max(2048),
});

const continuationSchema = z.object({ nextPartitionKey: z.string().min(1), nextRowKey: z.string().optional() });

export const queryFingerprint = (query: object): string =>
  createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);

export function encodeSkipToken(position: string, scope: string, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ v: 1, s: scope, q: fingerprint, p: position })).toString('base64url');
}

const invalidToken = () =>
  validationError('The skiptoken is not valid for this query: follow nextLink as returned.', [
    { field: 'skiptoken', message: 'corrupt, or issued for another query' },
  ], 'InvalidSkipToken');

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalidToken();
  }
}

/** Returns the position a skiptoken holds, after checking it belongs to this scope and query. */
export function decodeSkipToken(token: string, scope: string, fingerprint: string): string {
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(token)) throw invalidToken();
  const parsed = tokenSchema.safeParse(parseJson(Buffer.from(token, 'base64url').toString('utf8')));
  if (!parsed.success || parsed.data.q !== fingerprint || parsed.data.s !== scope) throw invalidToken();
  return parsed.data.p;
}

/** Like decodeSkipToken, for positions that are storage continuation tokens. */
export function decodeStorageSkipToken(token: string, scope: string, fingerprint: string): string {
  const continuation = decodeSkipToken(token, scope, fingerprint);
  if (!continuationSchema.safeParse(parseJson(Buffer.from(continuation, 'base64').toString('utf8'))).success) throw invalidToken();
  return continuation;
}
