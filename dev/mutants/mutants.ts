// Dev, mutants: the kill suite: realistic bugs planted one at a time in the protocol and the use cases, each of which the simulation or a named test must catch.
import { invariantLabel, type InvariantNumber } from '../../shared/protocol/invariants';

/**
 * A mutant is a one-to-five-line change a real developer might make: `find` must occur exactly once in
 * `file` (apply.ts refuses it otherwise, so a mutant never rots silently when the code moves), and is
 * replaced by `replace`. `npm run mutants` (run.ts) applies each to a copy of the tree and runs the
 * simulation campaign until its first failing seed, then, with --tests, the vitest files in `tests`.
 *
 * To add one: copy an entry, name it (kebab-case, what the bug does), cite the rule it breaks, paste a
 * snippet that occurs once (`npx vitest run test/unit/mutants.test.ts` checks), say in `why` how a
 * developer would come to write it, and list the test files that should catch it if the simulation
 * cannot. Then `npm run mutants -- --only <name> --tests`, and add its row to docs/testing.md.
 */
export interface Mutant {
  /** Kebab-case: what the planted bug does. */
  name: string;
  /** The rule it breaks, as the docs state it. */
  rule: Rule;
  /** The file it changes, relative to the repository root. */
  file: string;
  /** A snippet that occurs exactly once in `file`. */
  find: string;
  replace: string;
  /** What a real developer might plausibly get wrong to write this. */
  why: string;
  /** Test files (relative to the root) that should catch it where the simulation cannot: run with --tests. */
  tests?: string[];
}

/** The numbered rules of docs/protocol.md, "The protocol". */
export const PROTOCOL_RULES = {
  1: 'One authority',
  2: 'Commit, then propagate',
  3: 'Tombstones, not deletes',
  4: 'Helping',
  5: 'Recognised retries',
  6: 'Claimed ids',
  7: 'Reserved roles',
} as const;
export type ProtocolRuleNumber = keyof typeof PROTOCOL_RULES;

/**
 * Where the docs state the rule a mutant breaks: an invariant (docs/protocol.md "The invariants", numbered
 * in shared/protocol/invariants.ts), a numbered rule of "The protocol", or another section (file#anchor:
 * the statement).
 */
export type Rule = { invariant: InvariantNumber } | { protocol: ProtocolRuleNumber } | { section: string };

export const ruleLabel = (rule: Rule): string =>
  'invariant' in rule
    ? invariantLabel(rule.invariant)
    : 'protocol' in rule
      ? `rule ${rule.protocol} ${PROTOCOL_RULES[rule.protocol].toLowerCase()}`
      : rule.section;

/** Lines of a snippet, as they stand in the file (indentation included). */
const lines = (...text: string[]): string => text.join('\n');

const ACCESS = 'access-and-audit.md#access';
const ACCESS_TESTS = ['test/http/access.http.test.ts', 'test/unit/access.test.ts', 'test/integration/access.test.ts'];
const RETRY_TESTS = [
  'test/simulation/decisionRounds.test.ts',
  'test/integration/findings.test.ts',
  'test/http/access.http.test.ts',
  'test/http/concurrency.http.test.ts',
];

export const MUTANTS: Mutant[] = [
  // ---- Fences: derived copies only move forward, and only within their own connection (rule 2).
  {
    name: 'fence-dropped',
    rule: { invariant: 3 },
    file: 'shared/protocol/copies.ts',
    find: "    if (current !== null && !isLater(wanted, current)) return 'ours';\n",
    replace: '',
    why: 'The write is already conditional on the ETag just read, so the version comparison looks redundant; but the ETag only orders writers, it does not stop a late propagation of an older version from landing after a newer one.',
  },
  {
    name: 'fence-ignores-incarnation',
    rule: { section: 'protocol.md#glossary: Incarnation (copies are ordered by incarnation, then version)' },
    file: 'shared/protocol/copies.ts',
    find: '!isLater(wanted, current)',
    replace: 'wanted.version <= current.version',
    why: 'Versions look like the whole story; a connection id deleted, purged and created again restarts at version 1, so a late write of the old incarnation at a higher version beats the new one.',
    tests: ['test/integration/findings.test.ts', 'test/simulation/repair.test.ts'],
  },
  {
    name: 'fence-overwrites-foreign-copy',
    rule: { invariant: 9 },
    file: 'shared/protocol/copies.ts',
    find: '    if (current !== null && current.owner !== owner) {',
    replace: '    if (current !== null && current.owner !== owner && current.tombstone) {',
    why: "Reading 'a tombstone is simply not needed there' as 'only tombstones of other connections are left alone': a live copy of another connection with the same id is then overwritten when ours looks later.",
    tests: ['test/integration/uniqueness.test.ts'],
  },

  // ---- The commit: one ETag-conditional transaction on the authoritative copy (rule 1).
  {
    name: 'commit-without-etag',
    rule: { protocol: 1 },
    file: 'shared/storage/connectionStore.ts',
    find: "{ op: 'replace', entity: toEntity(next), etag: previous.etag }",
    replace: "{ op: 'replace', entity: toEntity(next), etag: ANY_ETAG }",
    why: 'The version is decided from a fresh read and the audit insert fails on a duplicate version anyway, so the ETag on the replace looks like belt and braces; but a fence rewrites a slot at the same version, and only the ETag refuses a commit decided before it.',
    tests: ['test/http/concurrency.http.test.ts', 'test/integration/findings.test.ts'],
  },
  {
    name: 'delete-keeps-guard',
    rule: { protocol: 3 },
    file: 'shared/protocol/commit.ts',
    find: 'release: previous !== undefined && holdsGuard && claimsGuard(previous),',
    replace: 'release: previous !== undefined && holdsGuard && claimsGuard(previous) && !next.tombstone,',
    why: "Leaving the guard to the repair job's purge with the tombstone ('the pair is still there until purged'); the pair cannot be created again until then, though the delete answered 204.",
    tests: ['test/integration/findings.test.ts', 'test/integration/uniqueness.test.ts'],
  },
  {
    name: 'if-match-checked-once',
    rule: { section: 'protocol.md#what-a-client-sees: a stale If-Match is 412, even after a lost race' },
    file: 'shared/protocol/change.ts',
    find: '    checkIfMatch(request.ifMatch, authoritative.half);',
    replace: '    if (round === 0) checkIfMatch(request.ifMatch, authoritative.half);',
    why: "Checking the client's If-Match once, on the first read, since 'the client's ETag does not change between rounds'; after a lost race the connection did change, so the retry round commits over a version the client never saw.",
    tests: ['test/simulation/decisionRounds.test.ts', 'test/http/concurrency.http.test.ts'],
  },

  // ---- Propagation before answering (I2), and helping before deciding (rule 4).
  {
    name: 'change-answers-before-propagating',
    rule: { invariant: 2 },
    file: 'shared/protocol/change.ts',
    find: '    await this.propagateChanged(next, derived);\n',
    replace: '    void this.propagateChanged(next, derived).catch(() => undefined);\n',
    why: 'Propagation is idempotent and the repair job finishes it anyway, so answering once the commit landed halves the latency; but then a 2xx goes out before the derived half and the index show it.',
  },
  {
    name: 'keep-answers-without-helping',
    rule: { protocol: 4 },
    file: 'shared/protocol/change.ts',
    find: lines("    if (decision.kind === 'keep') {", '      await this.propagateChanged(authoritative, derived);'),
    replace: "    if (decision.kind === 'keep') {",
    why: 'A change that changes nothing writes nothing, so it seems to need no propagation either; but it answers 2xx with a state an earlier request may have left unpropagated.',
  },
  {
    name: 'conflict-names-unpropagated-holder',
    rule: { protocol: 4 },
    file: 'shared/protocol/conflicts.ts',
    find: '      await this.propagation.propagate(held);\n',
    replace: '',
    why: "The 409 only names the holder, so helping it looks like someone else's job; its creator may have stopped before propagating, and the 409 then names a connection the caller cannot find through its record.",
    tests: ['test/integration/findings.test.ts', 'test/integration/uniqueness.test.ts'],
  },
  {
    name: 'former-role-entry-stays-live',
    rule: { invariant: 7 },
    file: 'shared/protocol/propagation.ts',
    find: "copy: { half, tombstone: !current.has(key), lastop: '', indexed: [] }",
    replace: "copy: { half, tombstone: authoritative.tombstone, lastop: '', indexed: [] }",
    why: 'Mirroring the tombstone flag of the authoritative copy onto every entry, as for the derived half; an entry under a role the connection no longer plays then stays live and shows up in role queries.',
  },

  // ---- Tombstones (rule 3) and writes that meet them.
  {
    name: 'write-resurrects-tombstone',
    rule: { invariant: 4 },
    file: 'shared/protocol/change.ts',
    find: '    if (authoritative.tombstone) {\n',
    replace: '    if (authoritative.tombstone && authoritative.half.versionnumber === 0) {\n',
    why: "Confusing a tombstone with a fence's tombstone (version 0, 'no connection'): a PATCH on a deleted connection then commits version + 1, live again.",
  },
  {
    name: 'tombstone-404-without-finishing',
    rule: {
      section: 'protocol.md#where-each-operation-can-stop: a write meeting a delete answers 404 after finishing it',
    },
    file: 'shared/protocol/change.ts',
    find: lines(
      '    if (authoritative.tombstone) {',
      '      await this.propagateChanged(authoritative, derived);',
      '      throw connectionNotFound();',
    ),
    replace: lines('    if (authoritative.tombstone) {', '      throw connectionNotFound();'),
    why: "'It is deleted: answer 404 at once, the repair job cleans up'; but the derived half and the index still show the connection the caller was just told is gone.",
    tests: ['test/integration/findings.test.ts', 'test/integration/faults.test.ts'],
  },
  {
    name: 'read-shows-tombstones',
    rule: { invariant: 4 },
    file: 'shared/useCases/connectionQueries.ts',
    find: 'if (!stored || !isLive(stored)) throw notFoundError();',
    replace: 'if (!stored) throw notFoundError();',
    why: 'Forgetting that the row a point read finds may be a tombstone: deletes leave rows behind.',
  },

  // ---- Recognised retries (rule 5, I6) and request fingerprints.
  {
    name: 'retry-not-recognised',
    rule: { invariant: 6 },
    file: 'shared/protocol/change.ts',
    find: 'if (latestRequest(authoritative.lastop) === request.fingerprint) {',
    replace: 'if (authoritative.lastop === request.fingerprint) {',
    why: 'Comparing the stored `lastop` with the fingerprint directly, as it was once a single fingerprint; it now holds several stamps with nonces, so no retry is recognised and an applied one is refused (404, 409, 412).',
  },
  {
    name: 'recognised-retry-skips-propagation',
    rule: { invariant: 2 },
    file: 'shared/protocol/change.ts',
    find: lines(
      '    if (latestRequest(authoritative.lastop) === request.fingerprint) {',
      '      await this.propagateChanged(authoritative, derived);',
    ),
    replace: '    if (latestRequest(authoritative.lastop) === request.fingerprint) {',
    why: "'It was applied already, just answer it': the first attempt answered 503 because it stopped before propagating, so its retry answers 2xx with the derived half behind.",
  },
  {
    name: 'lost-commit-recognised-only-if-newest',
    rule: { protocol: 5 },
    file: 'shared/protocol/change.ts',
    find: 'if (now && landed(now.lastop, stamp)) {',
    replace: 'if (now && now.lastop.endsWith(stamp)) {',
    why: "Recognising the SDK's resent commit only when its stamp is the newest; another change may land between the lost answer and the resend, and the call then commits its change a second time.",
    tests: ['test/simulation/decisionRounds.test.ts', 'test/integration/findings.test.ts'],
  },
  {
    name: 'update-print-omits-caller',
    rule: { section: `${ACCESS}: a recognised retry is the same caller's (protocol.md#known-limits, Retries)` },
    file: 'shared/useCases/connectionCommands.ts',
    find: "fingerprintOf(['update', caller.id, recordId, connectionId, patch, ifMatch ?? null])",
    replace: "fingerprintOf(['update', recordId, connectionId, patch, ifMatch ?? null])",
    why: "'A retry is the same request to the same URL': the caller is left out, so anyone resending another principal's PATCH is recognised as its retry and gets the connection back without any rights.",
    tests: RETRY_TESTS,
  },
  {
    name: 'delete-print-omits-caller',
    rule: { section: `${ACCESS}: a recognised retry is the same caller's (protocol.md#known-limits, Retries)` },
    file: 'shared/useCases/connectionCommands.ts',
    find: "fingerprintOf(['delete', caller.id, recordId, connectionId, ifMatch ?? null])",
    replace: "fingerprintOf(['delete', recordId, connectionId, ifMatch ?? null])",
    why: "As for the update: a DELETE resent by anyone after someone else's delete is recognised and answered 204 with the deleted connection, to a caller with no rights.",
    tests: RETRY_TESTS,
  },
  {
    name: 'share-print-omits-caller',
    rule: { section: `${ACCESS}: a recognised retry is the same caller's (protocol.md#known-limits, Retries)` },
    file: 'shared/useCases/connectionCommands.ts',
    find: 'fingerprintOf([...request, caller.id, recordId, connectionId])',
    replace: 'fingerprintOf([...request, recordId, connectionId])',
    why: "As for the update: a grant or revoke resent by a principal without ShareAccess is recognised as the owner's and answered 2xx.",
    tests: RETRY_TESTS,
  },
  {
    name: 'update-print-omits-if-match',
    rule: { section: 'protocol.md#what-a-client-sees: a stale If-Match is 412 and nothing is written' },
    file: 'shared/useCases/connectionCommands.ts',
    find: "fingerprintOf(['update', caller.id, recordId, connectionId, patch, ifMatch ?? null])",
    replace: "fingerprintOf(['update', caller.id, recordId, connectionId, patch])",
    why: 'Treating If-Match as a header, not part of the request: the same PATCH sent again with an ETag that is stale now is taken for a retry and answered 200 instead of 412.',
    tests: ['test/simulation/decisionRounds.test.ts', 'test/http/concurrency.http.test.ts'],
  },

  // ---- Claimed ids and takeovers (rule 6, I9).
  {
    name: 'create-without-id-claim',
    rule: { invariant: 9 },
    file: 'shared/protocol/create.ts',
    find: '      this.claims.claimId(authoritative, authoritative.connectionid, mode, master.connectionid),\n',
    replace: '',
    why: "'The insert of the half fails on a duplicate id anyway': only within one partition; the same id between other records lands in another partition.",
  },
  {
    name: 'takeover-without-fence',
    rule: { protocol: 6 },
    file: 'shared/protocol/claims.ts',
    find: '        await fenceSlot(this.store, claim, held, now);\n',
    replace: '',
    why: 'The claim is conditional on its ETag, so taking it over looks safe by itself; but the create that made the claim may still commit into its slot, and two connections then hold the id.',
    tests: ['test/integration/uniqueness.test.ts'],
  },
  {
    name: 'claim-forgets-deleted-owner',
    rule: { protocol: 6 },
    file: 'shared/protocol/claims.ts',
    find: 'ownsIdOf({ ...held, tombstone: false }, id)',
    replace: 'ownsIdOf(held, id)',
    why: 'Tidying the spread away (ownsIdOf takes the copy as it is); ownsIdOf says no for a tombstone, so a deleted connection gives its id away before its tombstone is purged, and a retried delete or late write of it reaches the new owner.',
    tests: ['test/integration/uniqueness.test.ts'],
  },
  {
    name: 'create-over-tombstone-skips-confirm',
    rule: { protocol: 6 },
    file: 'shared/protocol/create.ts',
    find: "      if (previous) await this.claimAndReserve(authoritative, master, 'confirm');\n",
    replace: '',
    why: 'The claim was made at the start of the create, so confirming it again before committing over a tombstone looks like a wasted request; a takeover that read the claim meanwhile is then not stopped.',
    tests: ['test/integration/uniqueness.test.ts'],
  },

  // ---- Reserved roles and the role re-read (rule 7, I10).
  {
    name: 'no-role-reservation',
    rule: { invariant: 10 },
    file: 'shared/protocol/reservations.ts',
    find: '    await Promise.all(added.map((roleId) => this.index.reserve(roleId, slot, next.modifiedon)));\n',
    replace: '',
    why: "'The index shows which roles are in use': only after propagation; a commit in flight with the role is not in it, and the role's deletion succeeds under it.",
  },
  {
    name: 'role-read-beside-reservation',
    rule: { protocol: 7 },
    file: 'shared/protocol/reservations.ts',
    find: lines(
      '    await Promise.all(added.map((roleId) => this.index.reserve(roleId, slot, next.modifiedon)));',
      '    const stored = await Promise.all(added.map((roleId) => this.roles.read(roleId)));',
    ),
    replace: lines(
      '    const [, stored] = await Promise.all([',
      '      Promise.all(added.map((roleId) => this.index.reserve(roleId, slot, next.modifiedon))),',
      '      Promise.all(added.map((roleId) => this.roles.read(roleId))),',
      '    ]);',
    ),
    why: 'Two independent requests, sent side by side to save a round trip; but the read must come after the reservation, or a deletion can mark the role and find no reservation in between.',
  },
  {
    name: 'role-read-ignores-mark',
    rule: { invariant: 10 },
    file: 'shared/protocol/reservations.ts',
    find: 'if (!role || role.deleting !== undefined) {',
    replace: 'if (!role) {',
    why: "'The role exists, so it may be used': a role marked for deletion still exists until the deletion's transaction, which then deletes it under the new connection.",
  },
  {
    name: 'role-move-not-reserved',
    rule: { protocol: 7 },
    file: 'shared/protocol/reservations.ts',
    find: '.filter((key) => !had.has(key))',
    replace: '.filter((key) => ![...had].some((old) => roleOfIndexKey(old) === roleOfIndexKey(key)))',
    why: "Reserving by role rather than by index entry ('the connection already had that role'): a role moving to the other record's side gets a new entry, written after the commit, that no reservation announces.",
    tests: ['test/integration/roles.test.ts'],
  },
  {
    name: 'settle-without-fence',
    rule: { protocol: 7 },
    file: 'shared/protocol/reservations.ts',
    find: '        await fenceSlot(this.connections, slot, held, now);\n',
    replace: '',
    why: "'The connection does not have the role, so the reservation is stale': it may belong to a write still in flight, whose commit lands with the role after the deletion removed the reservation.",
  },
  {
    name: 'role-in-use-ignores-entries',
    rule: { invariant: 10 },
    file: 'shared/protocol/reservations.ts',
    find: 'return used || this.index.hasLiveEntry(roleId);',
    replace: 'return used;',
    why: "'Every write of a role reserves it, so the reservations say what is in use'; but the repair job removes reservations once their entries are written, so older uses show only in the index.",
  },

  // ---- The repair job: the grace period, and acting on what it reads now, not on what it listed.
  {
    name: 'purge-before-grace',
    rule: { protocol: 3 },
    file: 'shared/protocol/repair/purge.ts',
    find: 'pass.clock() - Date.parse(copy.half.modifiedon) >= pass.options.graceMs;',
    replace: 'pass.clock() - Date.parse(copy.half.createdon) >= pass.options.graceMs;',
    why: "Dating a tombstone by `createdon`, the field every copy has and that names the connection's age: a connection made long ago and deleted just now loses its tombstone at once, while writes of it may still be running.",
    tests: ['test/simulation/repair.test.ts'],
  },
  {
    name: 'repair-rewrites-from-listing',
    rule: { section: 'protocol.md#the-checker-and-the-repair-job: the repair job never writes from what it listed' },
    file: 'shared/protocol/repair/rowChecks.ts',
    find: lines(
      '    if (!fresh || fresh.etag !== authoritative.etag) return;',
      '  }',
      '  for (const violation of found) pass.report(violation);',
    ),
    replace: lines('    if (!fresh) return;', '  }', '  for (const violation of found) pass.report(violation);'),
    why: "Checking only that the connection still exists before repairing: a change committed since the listing makes its copies look ahead of the listed authority, and the 'garbage' rewrite takes them back.",
    tests: ['test/simulation/repair.test.ts', 'test/integration/findings.test.ts'],
  },

  // ---- Cascades.
  {
    name: 'cascade-swallows-failures',
    rule: { invariant: 2 },
    file: 'shared/useCases/cascade.ts',
    find: "if (!(error instanceof DomainError && error.kind === 'not-found')) throw error;",
    replace: "if (error instanceof DomainError && error.kind === 'forbidden') throw error;",
    why: "'A cascade is best effort: refuse what the caller may not do, skip what fails now and go on': it then answers 2xx while connections whose delete failed before its commit are still live.",
    tests: ['test/integration/connections.test.ts', 'test/integration/faults.test.ts'],
  },
  {
    name: 'cascade-skips-tombstones',
    rule: { invariant: 2 },
    file: 'shared/useCases/cascade.ts',
    find: 'await forEachLimited(page.items, REMOTE_DELETE_CONCURRENCY, async (stored) => {',
    replace: 'await forEachLimited(page.items.filter(isLive), REMOTE_DELETE_CONCURRENCY, async (stored) => {',
    why: "'Deleted connections need no deleting': a delete that stopped before its derived half and index followed is then not finished, and the cascade answers 2xx with the connection still showing through its other record.",
    tests: ['test/integration/connections.test.ts', 'test/integration/faults.test.ts'],
  },

  // ---- Access on every path (access-and-audit.md#access).
  {
    name: 'update-needs-no-write-access',
    rule: { section: `${ACCESS}: changing fields needs WriteAccess` },
    file: 'shared/useCases/connectionCommands.ts',
    find: "        ...(writes ? (['WriteAccess'] as const) : []),\n",
    replace: '',
    why: 'Adding the AssignAccess rule and losing the WriteAccess one in the rewrite: anyone who can read a connection can change it.',
    tests: ACCESS_TESTS,
  },
  {
    name: 'delete-needs-no-rights',
    rule: { section: `${ACCESS}: deleting needs DeleteAccess` },
    file: 'shared/useCases/connectionCommands.ts',
    find: "      requireRights(caller, current, 'DeleteAccess');\n",
    replace: '',
    why: "'The HTTP layer authenticates the caller': authentication is not authorisation; any principal can delete any connection it can name.",
    tests: ACCESS_TESTS,
  },
  {
    name: 'share-needs-only-read',
    rule: { section: `${ACCESS}: grant, modify and revoke need ShareAccess` },
    file: 'shared/useCases/connectionCommands.ts',
    find: "const shares = nextShares(current, requireRights(caller, current, 'ShareAccess'));",
    replace: 'const shares = nextShares(current, requireRights(caller, current));',
    why: "'requireGrantable already stops passing on rights one does not hold': a reader then shares ReadAccess with anyone, and revokes everyone's shares.",
    tests: ACCESS_TESTS,
  },
  {
    name: 'revoke-needs-only-read',
    rule: { section: `${ACCESS}: revoke needs ShareAccess` },
    file: 'shared/useCases/connectionCommands.ts',
    find: "const shares = nextShares(current, requireRights(caller, current, 'ShareAccess'));",
    replace:
      "const shares = nextShares(current, requireRights(caller, current, ...(request[0] === 'revoke' ? [] : (['ShareAccess'] as const))));",
    why: "'Revoking only takes rights away, so it needs none': any reader can then cut every other principal off the connection.",
    tests: ACCESS_TESTS,
  },
  {
    name: 'modify-grants-rights-not-held',
    rule: { section: `${ACCESS}: a sharer passes on only rights it holds itself` },
    file: 'shared/useCases/connectionCommands.ts',
    find: lines('        requireGrantable(access, input.accessmask);', '        return modify('),
    replace: '        return modify(',
    why: "'ModifyAccess only changes a share that exists, so it needs no grantable check': a holder of ReadAccess and ShareAccess can then give a share DeleteAccess.",
    tests: ACCESS_TESTS,
  },
  {
    name: 'read-through-record2-unchecked',
    rule: { section: `${ACCESS}: a share applies to both halves, whichever URL is used` },
    file: 'shared/useCases/connectionQueries.ts',
    find: lines('    requireRights(caller, stored.half);', '    return stored.half;'),
    replace: lines('    if (stored.half.ismaster) requireRights(caller, stored.half);', '    return stored.half;'),
    why: "'Access is decided on the master half': the other half carries the same owner and shares, and skipping it lets anyone read a connection through its other record.",
    tests: ACCESS_TESTS,
  },
  {
    name: 'read-with-any-right',
    rule: { section: `${ACCESS}: reading needs ReadAccess (404 without it)` },
    file: 'shared/domain/access.ts',
    find: 'if ((access.mask & AccessRights.ReadAccess) === 0)',
    replace: 'if (access.mask === 0)',
    why: "'A principal with any right on it can see it': Dataverse's rights are independent, and a holder of WriteAccess alone must get 404.",
    tests: ACCESS_TESTS,
  },
  {
    name: 'team-share-ignored',
    rule: { section: `${ACCESS}: anyone else holds the union of their direct share and their teams' shares` },
    file: 'shared/domain/access.ts',
    find: "if (share.principaltype === 'team' && principal.teams.includes(share.principalid)) {",
    replace: "if (share.principaltype === 'systemuser' && principal.teams.includes(share.principalid)) {",
    why: 'Copy and paste from the line above: team shares never match, and team members are refused what their team was given.',
    tests: ACCESS_TESTS,
  },
  {
    name: 'revoke-keeps-team-shares',
    rule: { invariant: 5 },
    file: 'shared/domain/access.ts',
    find: 'shares.filter((share) => share.principalid !== principalId);',
    replace: "shares.filter((share) => share.principalid !== principalId || share.principaltype === 'team');",
    why: "'Team access is managed through team membership': a revoke of a team's share then leaves it, and the team's members still read the connection.",
    tests: ACCESS_TESTS,
  },
  {
    name: 'repeat-create-for-non-reader',
    rule: { section: `${ACCESS}: existence does not leak (a repeated create answers only a reader)` },
    file: 'shared/useCases/connectionCommands.ts',
    find: 'if (!(sameCreateRequest(outcome.existing, master) && canRead(caller, outcome.existing))) throw outcome.refusal;',
    replace: 'if (!sameCreateRequest(outcome.existing, master)) throw outcome.refusal;',
    why: "'Same body, so it is a retry of the same create': another caller sending the same body then gets someone else's connection back.",
    tests: ['test/simulation/decisionRounds.test.ts', ...ACCESS_TESTS],
  },
  {
    name: 'taken-pair-named-to-anyone',
    rule: { section: `${ACCESS}: a 409 ConnectionExists names the connection only to a caller who may read it` },
    file: 'shared/useCases/connectionCommands.ts',
    find: 'visible: canRead(caller, taken.holder)',
    replace: 'visible: true',
    why: "'A 409 naming the existing connection is friendlier': it tells a caller who may not read it the connection's id.",
    tests: ['test/simulation/decisionRounds.test.ts', ...ACCESS_TESTS],
  },
];
