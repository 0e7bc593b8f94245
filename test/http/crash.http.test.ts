import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type AppProcess, type CrashStats, startAppProcess, startCrashLoop } from '../../dev/local/appProcess';
import {
  checkInvariants,
  coverage,
  formatViolations,
  type CheckName,
  CHECKS,
  checkTitle,
  type Observer,
  type RepairOutcome,
  repairAndCheck,
  type Snapshot,
  takeSnapshot,
  type Violation,
} from '../../dev/load/invariants';
import { History, finalStatus, identity, is2xx, perform, POWER_AUTOMATE } from '../../dev/load/traffic';
import { formatStats, runWorkload, seededRandom, type WorkloadStats } from '../../dev/load/workload';
import { createServices } from '../../shared/useCases/services';
import { readSettings } from '../../shared/config/settings';
import { uniqueTableName } from '../support/storage';

/**
 * Crash test over HTTP: the app runs as an OS process of its own and is killed with SIGKILL every 1-3 s
 * (and started again on the same port) while 8 clients send mixed load and retry as Power Automate does.
 * Then, with the app up and before any repair, what clients were told must be true: a revoked
 * reader reads nothing (I5), a 409 ConnectionExists names a connection the requesting record has (I1), a
 * created connection is readable from both records alike (I3), a deleted one stays gone (I4), and the other
 * checks of dev/load/invariants.ts; then the repair job runs, the checker must find nothing and the
 * invariants must still hold. CRASH_LOAD_SECONDS (default 20) changes the load's length; CRASH_SEED fixes
 * the clients' choices and the kill times (not how requests interleave, which the machine decides).
 */
const LOAD_MS = Number(process.env.CRASH_LOAD_SECONDS ?? 20) * 1000;
const SEED = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const prefix = uniqueTableName('crash');
const admin = identity('ad000000-0000-4000-8000-00000000c0c0', { admin: true });
const readers = [
  '0ead0000-0000-4000-8000-000000000001',
  '0ead0000-0000-4000-8000-000000000002',
  '0ead0000-0000-4000-8000-000000000003',
];
const team = '7ea00000-0000-4000-8000-00000000c7ea';
const records = [
  { id: randomUUID(), type: 'account' },
  { id: randomUUID(), type: 'account' },
  { id: randomUUID(), type: 'contact' },
  { id: randomUUID(), type: 'contact' },
];

let app: AppProcess;
const history = new History();
let stats: WorkloadStats;
let crashes: CrashStats;
let before: Snapshot;
let after: Snapshot;
let repair: RepairOutcome;
let violationsBefore: Violation[];
let violationsAfter: Violation[];
const timings: Record<string, number> = {};

async function makeRole(name: string): Promise<string> {
  const created = await perform(
    app.baseUrl,
    {
      request: { method: 'POST', path: '/connectionroles', headers: admin, body: { name, category: 3 } },
      attempts: [],
    },
    POWER_AUTOMATE,
  );
  const role = (created.attempts.at(-1)?.body as { connectionroleid: string }).connectionroleid;
  await perform(
    app.baseUrl,
    {
      request: { method: 'PUT', path: `/connectionroles/${role}/matchingroles/${role}`, headers: admin },
      attempts: [],
    },
    POWER_AUTOMATE,
  );
  return role;
}

beforeAll(async () => {
  let mark = performance.now();
  const lap = (name: string) => {
    timings[name] = Math.round(performance.now() - mark);
    mark = performance.now();
  };
  app = await startAppProcess({
    env: { DataTables__connectionString: inject('azuriteConnectionString'), TABLE_NAME_PREFIX: prefix },
  });
  const roles = [await makeRole('Friend'), await makeRole('Partner')];
  const observer: Observer = { baseUrl: app.baseUrl, admin, headersOf: (principal) => identity(principal), roles };
  lap('start');

  const random = seededRandom(SEED);
  const loop = startCrashLoop(app, { minMs: 1000, maxMs: 3000, random });
  stats = await runWorkload({
    baseUrl: app.baseUrl,
    records,
    roles,
    readers,
    team,
    clients: 8,
    giveUpAtOnce: 2,
    durationMs: LOAD_MS,
    cascadeEveryMs: 4000,
    random,
    history,
    observer,
  });
  crashes = await loop.stop();
  lap('load');

  before = await takeSnapshot(history, observer);
  violationsBefore = checkInvariants({ history, snapshot: before, phase: 'before-repair' });
  lap('checks before repair');
  const services = createServices(
    readSettings({ DataTables__connectionString: inject('azuriteConnectionString'), TABLE_NAME_PREFIX: prefix }),
  );
  repair = await repairAndCheck(services.consistency);
  lap('repair');
  after = await takeSnapshot(history, observer);
  violationsAfter = [
    ...checkInvariants({ history, snapshot: after, earlier: [before], phase: 'after-repair' }),
    ...repair.left,
  ];
  lap('checks after repair');

  console.log(
    [
      `crash test, seed ${SEED}: ${(LOAD_MS / 1000).toFixed(0)} s of load, ${crashes.kills} kill -9, back up after ${crashes.downtimes.map((ms) => ms.toFixed(0)).join('/')} ms`,
      formatStats(stats),
      `checked: ${JSON.stringify(coverage(history))}`,
      `the app logged: ${
        [
          ...new Set(
            app
              .stderr()
              .filter((line) => /error|failed/i.test(line))
              .map((line) => line.slice(0, 160)),
          ),
        ]
          .slice(0, 5)
          .join(' | ') || 'no error'
      }`,
      `repair found ${repair.repaired.length}: ${repair.repaired.slice(0, 10).join('; ')}`,
      `timings (ms): ${JSON.stringify(timings)}`,
      violationsBefore.length ? `before repair:\n${formatViolations(violationsBefore)}` : 'before repair: no violation',
      violationsAfter.length ? `after repair:\n${formatViolations(violationsAfter)}` : 'after repair: no violation',
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await app?.stop();
});

const violationsOf = (violations: Violation[], name: CheckName) =>
  violations.filter((violation) => violation.check === name).map((violation) => violation.detail);
const expectNone = (violations: Violation[], name: CheckName) =>
  expect(
    violationsOf(violations, name),
    `${checkTitle(name)}: ${CHECKS[name].statement} (seed ${SEED}):\n${formatViolations(
      violations.filter((violation) => violation.check === name),
      15,
    )}`,
  ).toEqual([]);

describe('kill -9 of the app every 1-3 s under mixed load from 8 clients retrying as Power Automate does', () => {
  it('ran the load it claims: kills, and 2xx answers of every kind of operation', () => {
    expect(crashes.kills).toBeGreaterThanOrEqual(Math.floor(LOAD_MS / 3000) - 1);
    const answered = new Set(history.ops.filter((op) => is2xx(finalStatus(op.exchange))).map((op) => op.kind));
    expect([...answered].sort()).toEqual([
      'assign',
      'cascade',
      'create',
      'delete',
      'grant',
      'revoke',
      'role',
      'state',
      'update',
    ]);
    expect(history.ops.some((op) => op.exchange.attempts.some((attempt) => attempt.status === undefined))).toBe(true);
    expect(before.halves.size).toBe(history.connections().length);
    const checked = coverage(history);
    for (const [what, count] of Object.entries(checked)) expect(count, what).toBeGreaterThan(0);
  });

  describe('before any repair, with the app up', () => {
    it('I5: a principal whose revoke answered 2xx reads the connection through neither record, list nor role query', () =>
      expectNone(violationsBefore, 'revoked-reader-reads-nothing'));
    it('I1: every 409 ConnectionExists names a connection the requesting record has, active with those roles', () =>
      expectNone(violationsBefore, 'conflict-names-live-connection'));
    it('I3: every create answered 200/201 and never deleted is readable from both records with the same fields', () =>
      expectNone(violationsBefore, 'created-readable-from-both'));
    it('I4: a delete answered 204 is gone from both records and both lists, and stays gone', () =>
      expectNone(violationsBefore, 'deleted-stays-deleted'));
    it('I2: every 2xx answer is visible through both halves when it returns', () =>
      expectNone(violationsBefore, 'visible-when-answered'));
    it('I3: reads of one version of a connection agree', () => expectNone(violationsBefore, 'one-state-per-version'));
    it('I8: no 500: every failure is a 503 a client may retry', () =>
      expectNone(violationsBefore, 'no-internal-error'));
  });

  describe('after the repair job', () => {
    it('I7: the checker finds no violation', () => expectNone(violationsAfter, 'checker-clean'));
    it('I7: every connection has both halves, mirrored, or neither', () =>
      expectNone(violationsAfter, 'halves-mirror'));
    it('I1: no two active connections join the same records with the same roles', () =>
      expectNone(violationsAfter, 'one-active-per-pair'));
    it('I5, I3 and I4 still hold', () => {
      for (const name of [
        'revoked-reader-reads-nothing',
        'created-readable-from-both',
        'deleted-stays-deleted',
      ] as const)
        expectNone(violationsAfter, name);
    });
  });
});
