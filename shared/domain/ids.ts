import { randomUUID } from 'node:crypto';
import { z } from 'zod';

export const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A GUID in any case, normalised to lowercase so keys never differ by case alone. */
export const guid = z
  .string()
  .regex(guidPattern, 'must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)')
  .transform((value) => value.toLowerCase());

export const newId = (): string => randomUUID();

// Fixed 128-bit mask of reciprocal ids. Zero where a GUID keeps its version and variant, so the
// reciprocal of a version-4 GUID is one too.
const RECIPROCAL_MASK = '5a3c9e71b2d40f863a5ce1d7b94f2a68';
const HEX = '0123456789abcdef';

/**
 * The id of a connection's other half: derived from this half's id, so a retried or repaired create
 * writes the same keys instead of a second, different half. It is an involution (the reciprocal of the reciprocal
 * is the id itself), so both ids of a connection share one claim key (idKeyOf) and one row in storage
 * makes both unique. Connections created before this rule have a name-based (version 5) reciprocal id:
 * each of their two ids has its own claim.
 */
export function reciprocalIdOf(id: string): string {
  let mask = 0;
  return id
    .toLowerCase()
    .replace(/[0-9a-f]/g, (digit) => HEX[HEX.indexOf(digit) ^ HEX.indexOf(RECIPROCAL_MASK[mask++] ?? '0')] ?? digit);
}

/** The key under which a connection id is claimed: the same for an id and its reciprocal. */
export function idKeyOf(id: string): string {
  const lower = id.toLowerCase();
  const reciprocal = reciprocalIdOf(lower);
  return lower < reciprocal ? lower : reciprocal;
}
