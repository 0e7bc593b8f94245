// Protocol: propagation, bringing every derived copy (the derived half, each index entry) to the authoritative copy's version.
import { reciprocalOf } from '../domain/connection';
import type { ConnectionStore } from '../storage/connectionStore';
import type { RoleIndexStore } from '../storage/roleIndexStore';
import { allSettled } from './concurrency';
import { type Copy, derivedHalfSlot, fencedPut, indexEntrySlot, isFence, type KnownVersion } from './copies';
import { currentIndexKeys, isAuthoritativeEntry, mergedKeys, roleOfIndexKey } from './indexKeys';

/** The copy of the derived half that an authoritative copy stands for. */
export const derivedOf = (authoritative: Copy): Copy => ({
  half: reciprocalOf(authoritative.half),
  tombstone: authoritative.tombstone,
  lastop: '',
  indexed: [],
});

/**
 * The index entries an authoritative copy stands for: a live copy under each role a half plays now, a
 * tombstone under each role it played before (or every role, when the connection is deleted).
 */
export function entriesOf(authoritative: Copy): { key: string; roleId: string; copy: Copy }[] {
  const current = new Set<string>(authoritative.tombstone ? [] : currentIndexKeys(authoritative.half));
  return mergedKeys(authoritative.indexed, currentIndexKeys(authoritative.half)).map((key) => {
    const half = isAuthoritativeEntry(key) ? authoritative.half : reciprocalOf(authoritative.half);
    return { key, roleId: roleOfIndexKey(key), copy: { half, tombstone: !current.has(key), lastop: '', indexed: [] } };
  });
}

/**
 * Commit, then propagate: every copy but the authoritative one is derived from it by fenced writes, so
 * propagating is idempotent and order-free, and anyone may repeat it at any time.
 */
export class Propagation {
  constructor(
    private readonly store: ConnectionStore,
    private readonly index: RoleIndexStore,
  ) {}

  /**
   * Brings every derived copy (the derived half, each index entry) to the authoritative copy's version.
   * `derived` is the derived half's version as just read, or null when it is known to be absent.
   */
  async propagate(authoritative: Copy, derived?: KnownVersion | null, entriesAbsent = false): Promise<void> {
    if (isFence(authoritative)) return; // no connection ever committed there: nothing derived
    // The derived half first: if its slot holds another connection (an id used twice), this connection
    // is refused there, before it has written anything else outside its own partition.
    const slot = await this.putDerived(derivedOf(authoritative), derived);
    // The derived half's index entries go with its slot: where another connection holds it, so are they.
    const entries = entriesOf(authoritative).filter(({ key }) => slot === 'ours' || isAuthoritativeEntry(key));
    await allSettled(
      entries.map(({ roleId, copy }) =>
        fencedPut(indexEntrySlot(this.index, roleId, copy), copy, entriesAbsent ? null : undefined),
      ),
    );
  }

  /** Writes a derived half, version-fenced (see fencedPut). */
  putDerived(copy: Copy, known?: KnownVersion | null): Promise<'ours' | 'foreign'> {
    return fencedPut(derivedHalfSlot(this.store, copy), copy, known);
  }
}
