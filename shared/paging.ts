import { createHash } from 'node:crypto';
import { z } from 'zod';
import { validationError } from './errors';

/**
 * The opaque `skiptoken` of a list: storage's own continuation (itself opaque: Azure and Azurite encode
 * their next keys differently), bound to the record and the query it belongs to, so a token replayed
 * with other filters, for another record, or edited by hand is a 400 rather than the wrong rows. The
 * storage query always names the record's partition, so no token can reach outside it.
 */
const tokenSchema = z.strictObject({
  v: z.literal(1),
  r: z.string().min(1).max(1024),
  q: z.string().length(16),
  c: z.string().min(1).max(2048),
});

const continuationSchema = z.object({ nextPartitionKey: z.string().min(1), nextRowKey: z.string().optional() });

export const queryFingerprint = (query: object): string =>
  createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 16);

export function encodeSkipToken(continuation: string, recordId: string, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ v: 1, r: recordId, q: fingerprint, c: continuation })).toString('base64url');
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

/** Returns storage's continuation token, after checking the skiptoken belongs to this query. */
export function decodeSkipToken(token: string, recordId: string, fingerprint: string): string {
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(token)) throw invalidToken();
  const parsed = tokenSchema.safeParse(parseJson(Buffer.from(token, 'base64url').toString('utf8')));
  if (!parsed.success || parsed.data.q !== fingerprint || parsed.data.r !== recordId) throw invalidToken();
  if (!continuationSchema.safeParse(parseJson(Buffer.from(parsed.data.c, 'base64').toString('utf8'))).success) throw invalidToken();
  return parsed.data.c;
}
