import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';

export const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A GUID in any case, normalised to lowercase so keys never differ by case alone. */
export const guid = z
  .string()
  .regex(guidPattern, 'must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)')
  .transform((value) => value.toLowerCase());

export const newId = (): string => randomUUID();

// Fixed namespace for name-based (RFC 9562 version 5) ids of reciprocal halves.
const RECIPROCAL_NAMESPACE = Buffer.from('6f1c3c2e9a7d4b1e8e0f5a4d3c2b1a09', 'hex');

/**
 * The reciprocal half's id is derived from the master's, so a retried or repaired create writes the same
 * keys instead of a second twin.
 */
export function reciprocalIdOf(masterId: string): string {
  const hash = createHash('sha1').update(RECIPROCAL_NAMESPACE).update(masterId.toLowerCase()).digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
