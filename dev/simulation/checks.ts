// Dev, simulation: the auditor: what must hold at the step each answer is given, and after quiescence and repair, read from the raw tables.
import {
  authoritativeOf,
  claimsGuard,
  isAuthoritative,
  isLater,
  pairsWith,
  type StoredCopy,
} from '../../shared/protocol/copies';
import { derivedOf } from '../../shared/protocol/propagation';
import { type ConnectionHalf, reciprocalOf, sameContent } from '../../shared/domain/connection';
import type { DomainError } from '../../shared/domain/errors';
import { reciprocalIdOf } from '../../shared/domain/ids';

import { currentIndexKeys } from '../../shared/protocol/indexKeys';
import { invariantLabel, type InvariantNumber } from '../../shared/protocol/invariants';
import { FINDING_INVARIANT, type Violation } from '../../shared/protocol/repair/findings';
import { latestRequest } from '../../shared/protocol/stamps';
import {
  claimPartitionOf,
  fromStored,
  guardRowKey,
  halfRowKey,
  isGuardRowKey,
} from '../../shared/storage/connectionStore';
import { indexRowKey, isReservationRowKey } from '../../shared/storage/roleIndexStore';
import type { Outcome } from './scheduler';
import type { SimTableService } from './simTable';
import {
  type Answer,
  type Auditor,
  CAROL,
  type PoolEntry,
  POOL,
  type PreparedRequest,
  type RoleId,
  ROLES,
  TABLES,
  urlOf,
} from './workload';

/**
 * Every invariant of the protocol (numbered in shared/protocol/invariants.ts), checked against the raw
 * tables (not through the code under test), against what each client was answered, and by the checker
 * itself. The clients report each answer at the step it is given (the Auditor interface of workload.ts);
 * the runner calls the rest once the tables are left alone and the repair job has run. Every violation
 * opens with the label of the invariant it breaks ("I2 visible-when-answered: ..."); a check that guards
 * something the invariants do not state says, where it is made, which one it serves and why.
 */
export class SimulationAuditor implements Auditor {
  readonly violations: string[] = [];
  readonly answers: Answer[] = [];
  /** What made each request's connection's current state before it: an identical request sent earlier (by the setup, or another client) is not its first attempt. */
  private readonly stampBefore = new Map<Answer, string | undefined>();

  constructor(private readonly service: SimTableService) {}

  sending(answer: Answer): void {
    this.answers.push(answer);
    const { operation } = answer;
    this.stampBefore.set(answer, 'target' in operation ? lastStampOn(this.service, operation.target) : undefined);
  }

  answered(answer: Answer): void {
    // A 2xx means every copy shows the change, now: checked at the very step it is answered.
    if (answer.operation.kind !== 'read') this.violations.push(...checkAnswered(this.service, answer));
    if (answer.operation.kind === 'deleteRole')
      this.violations.push(...checkRoleUnused(this.service, answer.operation.role, 'deleteRole answered'));
  }

  refusedRetry(answer: Answer, request: PreparedRequest, error: unknown): void {
    // A retry whose first attempt was applied is answered as that attempt would have been, never with a
    // refusal: the authoritative copy's last request is this one only if it was applied.
    const { operation } = answer;
    if (
      request.print &&
      'target' in operation &&
      lastStampOn(this.service, operation.target) !== this.stampBefore.get(answer) &&
      latestRequest(lastStampOn(this.service, operation.target) ?? '') === request.print
    ) {
      this.violations.push(
        broken(
          6,
          `client ${answer.client}: ${operation.kind} retried after a 503 was applied, yet answered ${(error as DomainError).code}`,
        ),
      );
    }
  }

  internalError(answer: Answer, when: string, error: unknown): void {
    this.violations.push(broken(8, `client ${answer.client}: ${when} failed with a 500: ${describe(error)}`));
  }

  /**
   * A phase's tasks ran without faults: none may fail or crash. The setup throws only what the HTTP
   * layer would answer 500 for (I8); the repair job failing leaves copies that never converge (I7).
   */
  phaseDone(outcomes: Outcome[], phase: 'setup' | 'repair'): void {
    for (const outcome of outcomes) {
      if (outcome.kind === 'error')
        this.violations.push(broken(phase === 'setup' ? 8 : 7, `${phase} failed: ${describe(outcome.error)}`));
      if (outcome.kind === 'crashed') this.violations.push(simulatorBroken(`${phase} crashed without faults`));
    }
  }

  /** The clients' tasks: a client stops on a 500 (reported already) and throws nothing. */
  clientsDone(outcomes: Outcome[]): void {
    for (const [index, outcome] of outcomes.entries()) {
      if (outcome.kind === 'error')
        this.violations.push(simulatorBroken(`client ${index} threw: ${String(outcome.error)}`));
    }
  }

  /**
   * One pass of the repair job after quiescence; whether another pass is due (what one pass writes,
   * tombstones, a later one purges). A row it cannot repair without faults, or repairs that never end,
   * leave copies that do not converge (I7).
   */
  repairPass(result: { failed: number; repaired: number; purged: number }, pass: number): boolean {
    if (result.failed > 0) this.violations.push(broken(7, `repair: ${result.failed} row(s) failed`));
    if (result.repaired + result.purged === 0) return false;
    if (pass === 3) {
      this.violations.push(broken(7, `repair: still repairing after ${pass + 1} passes`));
      return false;
    }
    return true;
  }

  /** The checker's walk once the repair job is done: anything it still finds breaks the invariant its kind names. */
  checkerAfterRepair(found: Violation[]): void {
    for (const violation of found) {
      this.violations.push(
        broken(
          FINDING_INVARIANT[violation.kind],
          `checker after repair: ${violation.kind} ${violation.partitionKey}/${violation.rowKey} ${violation.detail}`,
        ),
      );
    }
  }

  /** After repair: the tables' structure, then the history of answers against what is left. */
  afterRepair(): void {
    this.violations.push(...checkTables(this.service), ...checkHistory(this.service, this.answers));
  }
}

/** A violation of invariant `n`, as the auditor reports it. */
const broken = (n: InvariantNumber, text: string): string => `${invariantLabel(n)}: ${text}`;

/**
 * A failure of the simulator itself (a task crashed with no crash faults, a client's loop threw): it
 * guards no invariant, but no schedule it happens in proves anything, so it fails the schedule too.
 */
const simulatorBroken = (text: string): string => `simulator: ${text}`;

const describe = (error: unknown): string => (error instanceof Error ? (error.stack ?? error.message) : String(error));

// ---------------------------------------------------------------------------------------------------
// The raw tables.

interface RawState {
  audit: Map<string, { partitionKey: string; rowKey: string; versionnumber: number }>; // "<partition>/<rowKey>"
  claims: Map<string, { record1id: string; connectionid: string }>; // claim partition
  halves: Map<string, StoredCopy>; // "<partition>/<rowKey>"
  guards: Map<string, { partitionKey: string; rowKey: string; connectionid: string }>;
  entries: Map<string, StoredCopy>; // "<role>/<rowKey>"
}

function readState(service: SimTableService): RawState {
  const halves = new Map<string, StoredCopy>();
  const guards = new Map<string, { partitionKey: string; rowKey: string; connectionid: string }>();
  const claims = new Map<string, { record1id: string; connectionid: string }>();
  const audit = new Map<string, { partitionKey: string; rowKey: string; versionnumber: number }>();
  for (const stored of service.dump(TABLES.connections)) {
    const { partitionKey, rowKey } = stored.entity;
    if (rowKey.startsWith('h_'))
      audit.set(`${partitionKey}/${rowKey}`, {
        partitionKey,
        rowKey,
        versionnumber: Number(stored.entity.versionnumber),
      });
    else if (rowKey === 'claim')
      claims.set(partitionKey, {
        record1id: String(stored.entity.record1id),
        connectionid: String(stored.entity.connectionid),
      });
    else if (isGuardRowKey(rowKey))
      guards.set(`${partitionKey}/${rowKey}`, {
        partitionKey,
        rowKey,
        connectionid: String(stored.entity.connectionid),
      });
    else if (rowKey.startsWith('c_')) halves.set(`${partitionKey}/${rowKey}`, fromStored(stored));
  }
  const entries = new Map<string, StoredCopy>();
  for (const stored of service.dump(TABLES.roleIndex))
    if (!isReservationRowKey(stored.entity.rowKey))
      entries.set(`${stored.entity.partitionKey}/${stored.entity.rowKey}`, fromStored(stored));
  return { audit, claims, halves, guards, entries };
}

const halfAt = (state: RawState, recordId: string, connectionId: string) =>
  state.halves.get(`${recordId}/${halfRowKey(connectionId)}`);

const dummyHalf: ConnectionHalf = {
  connectionid: '',
  relatedconnectionid: '',
  ismaster: true,
  record1id: '',
  record1objecttypecode: 1,
  record1roleid: null,
  record1name: null,
  record2id: '',
  record2objecttypecode: 2,
  record2roleid: null,
  record2name: null,
  name: null,
  description: null,
  effectivestart: null,
  effectiveend: null,
  statecode: 0,
  statuscode: 1,
  ownerid: '',
  createdon: '',
  createdby: '',
  modifiedon: '',
  modifiedby: '',
  versionnumber: 0,
  shares: [],
};

/** The authoritative half a pool entry's connection would have: its records and ids, nothing else. */
const authoritativeOfTarget = (target: PoolEntry): ConnectionHalf =>
  authoritativeOf({
    ...dummyHalf,
    record1id: target.from,
    record2id: target.to,
    connectionid: target.id,
    relatedconnectionid: reciprocalIdOf(target.id),
  });

/** The commit stamps kept on a connection's authoritative copy (raw state). */
function lastStampOn(service: SimTableService, target: PoolEntry): string | undefined {
  const authoritative = authoritativeOfTarget(target);
  return halfAt(readState(service), authoritative.record1id, authoritative.connectionid)?.lastop;
}

// ---------------------------------------------------------------------------------------------------
// At the step an answer is given.

/** I2: a 2xx answer is visible through both halves and the index the moment it is given. */
function checkAnswered(service: SimTableService, answer: Answer): string[] {
  if (!answer.result) return [];
  const state = readState(service);
  const expected = authoritativeOf(answer.result);
  const version = expected.versionnumber;
  const problems: string[] = [];
  const where = `${invariantLabel(2)}: ${answer.operation.kind} answered v${version} of ${expected.connectionid}`;
  const authoritative = halfAt(state, expected.record1id, expected.connectionid);
  const derived = halfAt(state, expected.record2id, expected.relatedconnectionid);
  for (const [name, copy, wanted] of [
    ['authoritative', authoritative, expected],
    ['derived', derived, reciprocalOf(expected)],
  ] as const) {
    // A deleted connection whose derived half's slot holds another connection (an id used twice): its
    // tombstone is not needed there.
    if (answer.deleted && name === 'derived' && copy && !pairsWith(copy.half, expected)) continue;
    // A deleted connection's tombstones may be purged already (the grace period passed during the request).
    if (answer.deleted && !copy) continue;
    if (!copy) problems.push(`${where}: the ${name} half is missing`);
    else if (copy.half.versionnumber < version)
      problems.push(`${where}: the ${name} half is at v${copy.half.versionnumber}`);
    else if (
      copy.half.versionnumber === version &&
      (!sameContent(copy.half, wanted) || copy.tombstone !== Boolean(answer.deleted))
    ) {
      problems.push(`${where}: the ${name} half differs at the same version`);
    }
  }
  if (!answer.deleted) {
    for (const key of currentIndexKeys(expected)) {
      const half = key.startsWith('a:') ? expected : reciprocalOf(expected);
      const entry = state.entries.get(`${key.slice(2)}/${indexRowKey(half)}`);
      if (!entry || entry.half.versionnumber < version)
        problems.push(`${where}: index entry ${key} is ${entry ? `at v${entry.half.versionnumber}` : 'missing'}`);
    }
  }
  return problems;
}

/** I10: no live connection has the deleted role, and none of its index entries is live. */
function checkRoleUnused(service: SimTableService, role: RoleId, when: string): string[] {
  const state = readState(service);
  const users = [...state.halves.values()].filter(
    (copy) =>
      !copy.tombstone &&
      isAuthoritative(copy.half) &&
      (copy.half.record1roleid === role || copy.half.record2roleid === role),
  );
  const entries = [...state.entries.entries()].filter(([key, entry]) => key.startsWith(`${role}/`) && !entry.tombstone);
  return [
    ...users.map((copy) =>
      broken(
        10,
        `${when}: ${copy.half.record1id}/${copy.half.connectionid} v${copy.half.versionnumber} still has the deleted role`,
      ),
    ),
    ...entries.map(([key]) => broken(10, `${when}: index entry ${key} of the deleted role is live`)),
  ];
}

// ---------------------------------------------------------------------------------------------------
// After quiescence and repair.

/** After repair: the structural invariants (I1, I7, I9, I10, I11), from the raw tables. */
function checkTables(service: SimTableService): string[] {
  const state = readState(service);
  const problems: string[] = [];
  // A role that is gone is used by nothing.
  for (const role of ROLES) {
    if (!service.dump(TABLES.roles).some((stored) => stored.entity.rowKey === `r_${role}`))
      problems.push(...checkRoleUnused(service, role, `after repair, role ${role} gone`));
  }
  const liveAuthoritative = [...state.halves.values()].filter((copy) => isAuthoritative(copy.half) && !copy.tombstone);
  // I1: one active connection per unordered pair of records and roles; I7: exactly those hold guards, each naming its connection.
  const byGuard = new Map<string, StoredCopy[]>();
  for (const copy of liveAuthoritative.filter(claimsGuard)) {
    const key = `${copy.half.record1id}/${guardRowKey(copy.half)}`;
    byGuard.set(key, [...(byGuard.get(key) ?? []), copy]);
  }
  for (const [key, holders] of byGuard) {
    if (holders.length > 1)
      problems.push(
        broken(1, `duplicate active pair at ${key}: ${holders.map((copy) => copy.half.connectionid).join(', ')}`),
      );
    const guard = state.guards.get(key);
    if (!guard || !holders.some((copy) => copy.half.connectionid === guard.connectionid))
      problems.push(broken(7, `guard ${key} does not name its connection`));
  }
  for (const key of state.guards.keys()) if (!byGuard.has(key)) problems.push(broken(7, `guard ${key} guards nothing`));
  // I11: every version a live connection's incarnation reached has its audit record (the latest at
  // least), none twice, and every audit record left belongs to a live connection's slot.
  for (const copy of liveAuthoritative) {
    const prefix = `${copy.half.record1id}/h_${copy.half.connectionid}_${String(1e15 - 1 - Date.parse(copy.half.createdon)).padStart(15, '0')}_`;
    const versions = [...state.audit.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .map(([, row]) => row.versionnumber);
    if (!versions.includes(copy.half.versionnumber))
      problems.push(
        broken(
          11,
          `${copy.half.record1id}/${copy.half.connectionid} v${copy.half.versionnumber}: no audit record of that version`,
        ),
      );
    if (new Set(versions).size !== versions.length)
      problems.push(broken(11, `${copy.half.record1id}/${copy.half.connectionid}: a version audited twice`));
  }
  for (const row of state.audit.values()) {
    const id = row.rowKey.slice(2, 38);
    const holder = halfAt(state, row.partitionKey, id);
    if (!holder || holder.tombstone)
      problems.push(broken(11, `audit record ${row.partitionKey}/${row.rowKey} of no live connection`));
  }
  // I9: a connection id is unique across all records: no two live halves have one, and each live
  // connection's claim names its authoritative slot (the claim is what keeps I9 across partitions).
  const holders = new Map<string, string[]>();
  for (const copy of state.halves.values()) {
    if (!copy.tombstone)
      holders.set(copy.half.connectionid, [...(holders.get(copy.half.connectionid) ?? []), copy.half.record1id]);
  }
  for (const [id, records] of holders)
    if (records.length > 1) problems.push(broken(9, `connection id ${id} is live in ${records.join(', ')}`));
  for (const copy of liveAuthoritative) {
    const claim = state.claims.get(claimPartitionOf(copy.half.connectionid));
    if (claim?.record1id !== copy.half.record1id || claim.connectionid !== copy.half.connectionid) {
      problems.push(
        broken(
          9,
          `${copy.half.record1id}/${copy.half.connectionid}: its id's claim names ${claim ? `${claim.record1id}/${claim.connectionid}` : 'nothing'}`,
        ),
      );
    }
  }
  // I7: every live authoritative half has its derived half, mirroring it at the same version, and its
  // index entries; nothing else is left (no tombstone, no derived half or entry without its authority).
  const expectedEntries = new Set<string>();
  for (const copy of liveAuthoritative) {
    const derived = halfAt(state, copy.half.record2id, copy.half.relatedconnectionid);
    const wanted = derivedOf(copy);
    if (
      !derived ||
      derived.tombstone ||
      derived.half.versionnumber !== copy.half.versionnumber ||
      !sameContent(derived.half, wanted.half)
    ) {
      problems.push(
        broken(
          7,
          `${copy.half.connectionid} v${copy.half.versionnumber}: derived half ${derived ? `v${derived.half.versionnumber}${derived.tombstone ? ' tombstone' : ''} differs` : 'missing'}`,
        ),
      );
    }
    for (const key of currentIndexKeys(copy.half)) {
      const half = key.startsWith('a:') ? copy.half : reciprocalOf(copy.half);
      const entryKey = `${key.slice(2)}/${indexRowKey(half)}`;
      expectedEntries.add(entryKey);
      const entry = state.entries.get(entryKey);
      if (
        !entry ||
        entry.tombstone ||
        entry.half.versionnumber !== copy.half.versionnumber ||
        !sameContent(entry.half, half)
      ) {
        problems.push(broken(7, `${copy.half.connectionid}: index entry ${entryKey} ${entry ? 'differs' : 'missing'}`));
      }
    }
  }
  for (const copy of state.halves.values()) {
    if (copy.tombstone)
      problems.push(
        broken(
          7,
          `tombstone ${copy.half.record1id}/${copy.half.connectionid} left after repair with the grace period over`,
        ),
      );
    else if (!isAuthoritative(copy.half) && !halfAt(state, copy.half.record2id, copy.half.relatedconnectionid))
      problems.push(broken(7, `derived half ${copy.half.connectionid} without its authority`));
  }
  for (const [key, entry] of state.entries) {
    if (!expectedEntries.has(key))
      problems.push(
        broken(7, `index entry ${key} (${entry.tombstone ? 'tombstone' : 'live'}) belongs to no live connection`),
      );
  }
  return problems;
}

/** After repair: nothing answered 2xx is lost (I3), nothing deleted comes back (I4), a revoke holds (I5). */
function checkHistory(service: SimTableService, answers: Answer[]): string[] {
  const state = readState(service);
  const problems: string[] = [];
  for (const target of POOL) {
    const authoritative = authoritativeOfTarget(target);
    const stored = halfAt(state, authoritative.record1id, authoritative.connectionid);
    const final = stored && stored.half.record2id === authoritative.record2id ? stored : undefined;
    // Two pool entries share a URL (c1's id between A-B and Z-B: the derived half's slot in B), so a
    // request may reach another connection than the one it was planned for: an answer belongs to the
    // connection it came back with, and a request may have touched any connection its URL can reach.
    const slots = [`${target.from}/${target.id}`, `${target.to}/${reciprocalIdOf(target.id)}`];
    // One id between other records can hold the same authoritative slot (Z-B and Z-C): the records say which.
    const isThis = (half: ConnectionHalf) => {
      const other = authoritativeOf(half);
      return (
        other.record1id === authoritative.record1id &&
        other.connectionid === authoritative.connectionid &&
        other.record2id === authoritative.record2id
      );
    };
    const touches = (answer: Answer) => {
      const { operation } = answer;
      if (operation.kind === 'cascade') return operation.record === target.from || operation.record === target.to;
      if (!('target' in operation)) return false;
      if (answer.result) return isThis(answer.result);
      if (operation.target === target) return true;
      const url = urlOf(operation.target, 'viaRecord2' in operation && operation.viaRecord2);
      return slots.includes(url.join('/'));
    };
    const mine = answers.filter(touches);
    const acknowledged = mine.filter((answer) => answer.ok && answer.result);
    // Acknowledged versions are never rolled back (a purged connection was deleted by someone; a new
    // incarnation of the id is later than every version of the old one).
    const stateOf = (half: ConnectionHalf) => ({ createdon: half.createdon, version: half.versionnumber });
    for (const answer of acknowledged) {
      if (final && answer.result && isLater(stateOf(answer.result), stateOf(final.half))) {
        problems.push(
          broken(
            3,
            `${target.id}: at v${final.half.versionnumber}, below acknowledged v${answer.result.versionnumber}`,
          ),
        );
      }
    }
    for (const answer of acknowledged) {
      const startedLater = (kinds: string[]) =>
        mine.some(
          (other) => other !== answer && other.started > answer.answered && kinds.includes(other.operation.kind),
        );
      const unfinishedOrLater = (kinds: string[]) =>
        answers.some(
          (other) =>
            other !== answer &&
            touches(other) &&
            kinds.includes(other.operation.kind) &&
            other.answered >= answer.started,
        ) || startedLater(kinds);
      if (answer.deleted) {
        if (final && !startedLater(['create']) && !unfinishedOrLater(['create']))
          problems.push(broken(4, `${target.id}: deleted (answered) but back at v${final.half.versionnumber}`));
      } else if (
        !final &&
        !unfinishedOrLater(['delete', 'cascade']) &&
        // A read may show a copy a delete answered 5xx (or never) left behind before the read began: that
        // copy lags until the retry, the next write or the repair job (see "What a client sees").
        !(
          answer.operation.kind === 'read' &&
          mine.some(
            (other) =>
              ['delete', 'cascade'].includes(other.operation.kind) && !other.ok && other.started <= answer.answered,
          )
        )
      ) {
        problems.push(
          broken(
            3,
            `${target.id}: ${answer.operation.kind} answered v${answer.result?.versionnumber} but the connection is gone and no delete was sent`,
          ),
        );
      }
      if (answer.operation.kind === 'read') {
        // A read after a delete was answered shows the connection only if a create may have made it again.
        const recreatable = (deleted: Answer) =>
          mine.some(
            (other) =>
              other.operation.kind === 'create' && other.started < answer.answered && other.answered > deleted.started,
          );
        const deletedBefore = mine.find(
          (other) => other.ok && other.deleted && other.answered < answer.started && !recreatable(other),
        );
        if (deletedBefore)
          problems.push(
            broken(
              4,
              `${target.id}: read (client ${answer.client}) answered v${answer.result?.versionnumber} after a delete (client ${deletedBefore.client}) was answered`,
            ),
          );
      }
      // I5 read from the tables: the revoked principal's share is gone from the authoritative half (the
      // halves and the index mirror it after repair, I7), so nothing grants it a read.
      if (answer.operation.kind === 'revoke' && final && !unfinishedOrLater(['grant'])) {
        if (final.half.shares.some((share) => share.principalid === CAROL))
          problems.push(broken(5, `${target.id}: revoke answered, yet carol still holds a share`));
      }
    }
  }
  return problems;
}
