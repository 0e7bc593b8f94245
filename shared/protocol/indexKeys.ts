// Protocol: the names of a connection's role-index entries, as its authoritative copy lists them.
import type { ConnectionHalf } from '../domain/connection';

/**
 * An index key names one role-index entry of a connection: "a:<role>" for the authoritative half's
 * entry under the role its record plays, "d:<role>" for the derived half's.
 */
export type IndexKey = `a:${string}` | `d:${string}`;

/** The index keys of a connection's current roles, from its authoritative half. */
export function currentIndexKeys(authoritative: ConnectionHalf): IndexKey[] {
  return [
    ...(authoritative.record1roleid === null ? [] : [`a:${authoritative.record1roleid}` as const]),
    ...(authoritative.record2roleid === null ? [] : [`d:${authoritative.record2roleid}` as const]),
  ];
}

/** The role an index key is for. */
export const roleOfIndexKey = (key: string): string => key.slice(2);

/** Whether the entry is the authoritative half's (else the derived half's). */
export const isAuthoritativeEntry = (key: string): boolean => key.startsWith('a:');

/** Lists of index keys as one sorted list without repeats (what an authoritative copy's `indexed` keeps). */
export const mergedKeys = (...lists: string[][]): string[] => [...new Set(lists.flat())].sort();
