import { createCipheriv, createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { validationError } from '../domain/errors';
import { settingsSchema, skipTokenKeys } from '../config/settings';

/**
 * The opaque `skiptoken` of a list: where the next page starts (the last key served, or storage's own
 * continuation), sealed with a key from the app settings and bound to the scope (record, role) and the
 * query it belongs to. What a token guarantees:
 * - only this deployment can make one: the position is authenticated with HMAC-SHA256 over scope,
 *   query and position, so a token made or edited by hand, or replayed for another scope or query, is
 *   a 400 (InvalidSkipToken) and never reaches storage;
 * - it reveals nothing: the position is encrypted (AES-256-CTR with the HMAC as its synthetic IV, as
 *   SIV does), so it cannot tell a caller the id of a row it may not read;
 * - even a genuine position must lie in the query's own key range (a record's halves, a role's index
 *   entries of the queried type, role ids), so no token can move a query outside its range;
 * - keys rotate without breaking nextLinks in flight: SKIPTOKEN_KEYS lists several, the first signs,
 *   all verify.
 * It does not expire and is not bound to the caller: whoever follows it sees only rows they may read.
 */
const VERSION = 2;
const TAG_BYTES = 16;
const MAX_TOKEN_LENGTH = 4096;

interface TokenKey {
  mac: Buffer;
  cipher: Buffer;
}

// Separate keys for the two jobs, derived from each configured key.
const deriveKey = (secret: Buffer): TokenKey => ({
  mac: Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'record-connections skiptoken mac', 32)),
  cipher: Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'record-connections skiptoken cipher', 32)),
});

const keySettings = settingsSchema.pick({ SKIPTOKEN_KEYS: true, LOCAL_DEVELOPMENT_MODE: true });
let ring: { source: string; keys: TokenKey[] } | undefined;

/**
 * The keys, first one signing, read from the app settings (the environment, as everywhere in the app)
 * and derived again only when those change, so a rotated setting takes effect without a restart.
 */
function currentKeys(env: NodeJS.ProcessEnv = process.env): TokenKey[] {
  const source = `${env.SKIPTOKEN_KEYS ?? ''}\n${env.LOCAL_DEVELOPMENT_MODE ?? ''}`;
  if (ring?.source !== source) {
    const parsed = keySettings.safeParse(env);
    if (!parsed.success)
      throw new Error(
        `Invalid app settings: SKIPTOKEN_KEYS: ${parsed.error.issues.map((issue) => issue.message).join('; ')}`,
      );
    ring = { source, keys: skipTokenKeys(parsed.data).map(deriveKey) };
  }
  return ring.keys;
}

/** Where a query's positions may lie: the row keys of its table it can read, nothing else. */
type KeyRange = { kind: 'halves' } | { kind: 'index'; typeCode?: number } | { kind: 'ids' } | { kind: 'audit' };

const guid = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
// Row key layouts of shared/storage/connectionStore.ts (halves) and roleIndexStore.ts (index entries).
const halfKey = new RegExp(`^c_${guid}$`);
const indexKey = new RegExp(`^\\d{10}_${guid}_${guid}$`);
const idKey = new RegExp(`^${guid}$`);
const auditKey = new RegExp(`^h_${guid}_\\d{15}_\\d{10}$`);
const TYPE_WIDTH = 10;

const recordQuery = z.object({ recordId: z.string() });
/** A connection's audit records (domain/audit.ts). */
const auditQuery = z.object({ audit: z.string() });
const roleQuery = z.object({ roleId: z.string(), typeCode: z.number().int().nonnegative().optional() });

/** A record's halves (HalfQuery), a role's index entries (RoleQuery), or anything else paged by id (roles). */
function keyRangeOf(query: object): KeyRange {
  if (recordQuery.safeParse(query).success) return { kind: 'halves' };
  if (auditQuery.safeParse(query).success) return { kind: 'audit' };
  const role = roleQuery.safeParse(query);
  if (role.success)
    return role.data.typeCode === undefined ? { kind: 'index' } : { kind: 'index', typeCode: role.data.typeCode };
  return { kind: 'ids' };
}

const rangeCode = (range: KeyRange): string =>
  range.kind === 'halves'
    ? 'h'
    : range.kind === 'ids'
      ? 'g'
      : range.kind === 'audit'
        ? 'a'
        : `i${range.typeCode ?? ''}`;

function rangeFromCode(code: string): KeyRange | undefined {
  if (code === 'h') return { kind: 'halves' };
  if (code === 'g') return { kind: 'ids' };
  if (code === 'a') return { kind: 'audit' };
  const index = /^i(\d{0,10})$/.exec(code);
  if (!index) return undefined;
  return index[1] ? { kind: 'index', typeCode: Number(index[1]) } : { kind: 'index' };
}

function inRange(position: string, range: KeyRange): boolean {
  if (range.kind === 'halves') return halfKey.test(position);
  if (range.kind === 'ids') return idKey.test(position);
  if (range.kind === 'audit') return auditKey.test(position);
  if (!indexKey.test(position)) return false;
  return range.typeCode === undefined || position.startsWith(`${String(range.typeCode).padStart(TYPE_WIDTH, '0')}_`);
}

/**
 * What a token is bound to: a digest of the query's filters, and the key range its positions must lie
 * in. Opaque to callers; passed back to encode and decode as it is.
 */
export function queryFingerprint(query: object): string {
  const digest = createHash('sha256').update(JSON.stringify(query)).digest('base64url').slice(0, 22);
  return `${rangeCode(keyRangeOf(query))}:${digest}`;
}

export const invalidToken = () =>
  validationError(
    'The skiptoken is not valid for this query: follow nextLink as returned.',
    [{ field: 'skiptoken', message: 'corrupt, or issued for another query' }],
    'InvalidSkipToken',
  );

// The header binds the tag to version, scope and query; JSON cannot contain a raw newline, so the
// position that follows it is never ambiguous.
const tagOf = (key: TokenKey, scope: string, fingerprint: string, position: Buffer): Buffer =>
  createHmac('sha256', key.mac)
    .update(`${JSON.stringify([VERSION, scope, fingerprint])}\n`)
    .update(position)
    .digest()
    .subarray(0, TAG_BYTES);

// CTR with the tag as IV: encrypting and decrypting are the same operation.
const crypt = (key: TokenKey, tag: Buffer, data: Buffer): Buffer => {
  const cipher = createCipheriv('aes-256-ctr', key.cipher, tag);
  return Buffer.concat([cipher.update(data), cipher.final()]);
};

export function encodeSkipToken(position: string, scope: string, fingerprint: string): string {
  const [key] = currentKeys();
  if (!key) throw new Error('no skiptoken key');
  const plain = Buffer.from(position, 'utf8');
  const tag = tagOf(key, scope, fingerprint, plain);
  return Buffer.concat([Buffer.from([VERSION]), tag, crypt(key, tag, plain)]).toString('base64url');
}

/** The position a token holds, if one of the keys sealed it for this scope and query; else a 400. */
function open(token: string, scope: string, fingerprint: string): string {
  if (token.length > MAX_TOKEN_LENGTH || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalidToken();
  const bytes = Buffer.from(token, 'base64url');
  // Only the canonical encoding: no second spelling of a token.
  if (bytes.toString('base64url') !== token || bytes.length <= 1 + TAG_BYTES || bytes[0] !== VERSION)
    throw invalidToken();
  const tag = bytes.subarray(1, 1 + TAG_BYTES);
  const sealed = bytes.subarray(1 + TAG_BYTES);
  for (const key of currentKeys()) {
    const plain = crypt(key, tag, sealed);
    if (timingSafeEqual(tagOf(key, scope, fingerprint, plain), tag)) {
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(plain);
      } catch {
        throw invalidToken();
      }
    }
  }
  throw invalidToken();
}

/** Returns the position a skiptoken holds, after checking it was sealed for this scope and query and lies in its key range. */
export function decodeSkipToken(token: string, scope: string, fingerprint: string): string {
  const position = open(token, scope, fingerprint);
  const range = rangeFromCode(fingerprint.split(':', 1)[0] ?? '');
  if (!range || !inRange(position, range)) throw invalidToken();
  return position;
}

const continuationSchema = z.object({ nextPartitionKey: z.string().min(1), nextRowKey: z.string().optional() });

/** Like decodeSkipToken, for positions that are storage continuation tokens (base64 JSON, printable keys). */
export function decodeStorageSkipToken(token: string, scope: string, fingerprint: string): string {
  const continuation = open(token, scope, fingerprint);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(continuation, 'base64').toString('utf8'));
  } catch {
    throw invalidToken();
  }
  if (!continuationSchema.safeParse(parsed).success || !/^[A-Za-z0-9+/=]+$/.test(continuation)) throw invalidToken();
  return continuation;
}
