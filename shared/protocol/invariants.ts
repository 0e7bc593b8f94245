// Protocol: the invariants the code keeps, by number and name only. Each is stated once, in
// docs/protocol.md ("The invariants"); the repair job's findings, the simulation's checks and the load
// tests' checks name the invariant they guard by these numbers.
export const INVARIANTS = {
  1: 'one-active-per-pair',
  2: 'visible-when-answered',
  3: 'versions-never-go-back',
  4: 'deleted-stays-deleted',
  5: 'revoked-reads-nothing',
  6: 'retry-answered-as-applied',
  7: 'copies-converge',
  8: 'no-internal-error',
  9: 'one-connection-per-id',
  10: 'deleted-role-unused',
  11: 'one-audit-record-per-version',
} as const;

export type InvariantNumber = keyof typeof INVARIANTS;

/** "I7 copies-converge": how a finding or a failed check names the invariant it is about. */
export const invariantLabel = (number: InvariantNumber): string => `I${number} ${INVARIANTS[number]}`;
