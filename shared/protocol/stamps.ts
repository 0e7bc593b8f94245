// Protocol: the stamps a commit keeps in `lastop` (which request made a version, whether a call's commit landed), and request fingerprints.
import { createHash } from 'node:crypto';

/** A stable fingerprint of a request's parts (object keys sorted, so equal bodies give equal prints). */
export function fingerprintOf(parts: unknown[]): string {
  const canonical = JSON.stringify(parts, (_key, value: unknown) =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : value,
  );
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 22);
}

/**
 * `lastop` holds the stamps ("<fingerprint>.<nonce>") of the latest commits, newest last: the newest
 * tells which request made the current state, all of them whether one call's commit landed.
 */
const RECENT_STAMPS = 8;

/** The stamps a commit keeps in `lastop`, newest last. */
export const stampsIn = (lastop: string): string[] => lastop.split(' ').filter(Boolean);

/** The fingerprint of the request that made the current state. */
export const latestRequest = (lastop: string): string => stampsIn(lastop).at(-1)?.split('.')[0] ?? '';

/** A stamp for one call of a request: its fingerprint, and a nonce only this call has. */
export function newStamp(random: () => number, fingerprint: string): string {
  const draw = () => Math.floor(random() * 2 ** 48).toString(36);
  return `${fingerprint}.${draw()}${draw()}`;
}

/** `lastop` after a commit with `stamp`: the latest stamps, this one newest. */
export const withStamp = (lastop: string, stamp: string): string =>
  [...stampsIn(lastop), stamp].slice(-RECENT_STAMPS).join(' ');

/** Whether a call's commit landed (its stamp is among the latest), whatever came after it. */
export const landed = (lastop: string, stamp: string): boolean => stampsIn(lastop).includes(stamp);

/** The fingerprints of commits no client asked for: the repair job's, and an undone create's. */
export const REPAIR = 'repair';
export const UNDO = 'undo';
export const byRepair = (lastop: string): boolean => [REPAIR, UNDO].includes(latestRequest(lastop));
