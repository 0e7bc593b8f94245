// Dev, load: the soak CLI: minutes of mixed load with storage faults and app kills, then the HTTP checks before and after repair.
import { randomUUID } from 'node:crypto';
import { createServices } from '../../shared/useCases/services';
import { readSettings } from '../../shared/config/settings';
import { type CrashStats, startAppProcess, startCrashLoop } from '../local/appProcess';
import { startAzurite } from '../local/azurite';
import { startFaultProxy } from './faultProxy';
import { checkInvariants, coverage, formatViolations, type Observer, repairAndCheck, takeSnapshot } from './invariants';
import { History, identity, perform, POWER_AUTOMATE } from './traffic';
import { formatStats, runWorkload, seededRandom } from './workload';

/**
 * `npm run soak [-- seconds] [--no-crash] [--records N] [--seed N] [--strict]`: minutes of mixed load on
 * the API over HTTP (dev/load/workload.ts: 8 clients retrying as Power Automate does, two of them giving
 * up at once) while the fault proxy fails (503), cuts, or loses the responses of a share of storage
 * requests, storage is down for a moment every few seconds, and (unless --no-crash) the app process
 * itself is killed with SIGKILL every 1-3 s and started again on the same port. Then, with the app up,
 * the invariants (dev/load/invariants.ts) are checked before repair, the repair job runs, and they are
 * checked again with the checker. Exits non-zero when any violation remains after repair (with
 * --strict, also when any was found before it). Not part of `npm test`.
 */
const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const position = args.indexOf(name);
  return position >= 0 ? args[position + 1] : undefined;
};
const seconds = Number(args.find((arg, position) => /^\d+$/.test(arg) && !args[position - 1]?.startsWith('--')) ?? 180);
const CRASH = !args.includes('--no-crash');
const STRICT = args.includes('--strict');
const RECORDS = Number(option('--records') ?? 12);
const SEED = Number(option('--seed') ?? Math.floor(Math.random() * 2 ** 31));
const WORKERS = 8;
const GIVE_UP_AT_ONCE = 2;
const FAULTS = { fail: 0.02, cut: 0.01, cutAfter: 0.005 };
// Besides scattered faults, storage is down for OUTAGE_MS of every OUTAGE_EVERY_MS, long enough that the
// SDK's retries give up and operations fail halfway.
const OUTAGE_MS = 700;
const OUTAGE_EVERY_MS = 5000;
const CRASH_EVERY_MS = [1000, 3000] as const;

async function main(): Promise<number> {
  if (!Number.isFinite(seconds) || seconds <= 0 || !Number.isInteger(RECORDS) || RECORDS < 2) {
    console.error('usage: npm run soak [-- seconds] [--no-crash] [--records N (>= 2)] [--seed N] [--strict]');
    return 2;
  }
  const azurite = await startAzurite({ services: 'table' });
  const proxy = await startFaultProxy(azurite.connectionString);
  const prefix = `soak${Date.now().toString(36)}`;
  const app = await startAppProcess({
    env: { DataTables__connectionString: proxy.connectionString, TABLE_NAME_PREFIX: prefix },
  });
  try {
    const admin = identity(randomUUID(), { admin: true });
    const makeRole = async (name: string): Promise<string> => {
      const created = await perform(
        app.baseUrl,
        { request: { method: 'POST', path: '/connectionroles', headers: admin, body: { name } }, attempts: [] },
        POWER_AUTOMATE,
      );
      const role = (created.attempts.at(-1)?.body as { connectionroleid?: string } | undefined)?.connectionroleid;
      if (!role) throw new Error(`could not create the role ${name}: ${JSON.stringify(created.attempts.at(-1))}`);
      await perform(
        app.baseUrl,
        {
          request: { method: 'PUT', path: `/connectionroles/${role}/matchingroles/${role}`, headers: admin },
          attempts: [],
        },
        POWER_AUTOMATE,
      );
      return role;
    };
    const roles = [await makeRole('Partner'), await makeRole('Friend')];
    const records = Array.from({ length: RECORDS }, (_, index) => ({
      id: randomUUID(),
      type: index % 2 === 0 ? 'account' : 'contact',
    }));
    const readers = Array.from({ length: 4 }, () => randomUUID());
    const observer: Observer = { baseUrl: app.baseUrl, admin, headersOf: (principal) => identity(principal), roles };
    const history = new History();
    const random = seededRandom(SEED);

    proxy.add({ match: () => Date.now() % OUTAGE_EVERY_MS < OUTAGE_MS, action: 'fail', status: 500 });
    proxy.add({ match: () => Math.random() < FAULTS.fail, action: 'fail', status: 503 });
    proxy.add({ match: () => Math.random() < FAULTS.cut, action: 'cut' });
    proxy.add({ match: () => Math.random() < FAULTS.cutAfter, action: 'cut-after' });

    const started = Date.now();
    const crashes = CRASH
      ? startCrashLoop(app, { minMs: CRASH_EVERY_MS[0], maxMs: CRASH_EVERY_MS[1], random })
      : undefined;
    const stats = await runWorkload({
      baseUrl: app.baseUrl,
      records,
      roles,
      readers,
      team: randomUUID(),
      clients: WORKERS,
      giveUpAtOnce: GIVE_UP_AT_ONCE,
      durationMs: seconds * 1000,
      cascadeEveryMs: 20_000,
      random,
      history,
      observer,
    });
    const crashed: CrashStats = (await crashes?.stop()) ?? { kills: 0, downtimes: [] };
    const elapsed = (Date.now() - started) / 1000;
    proxy.clear();

    const latencies = history.ops
      .flatMap((op) =>
        op.exchange.attempts
          .filter((attempt) => attempt.status !== undefined)
          .map((attempt) => attempt.end - attempt.start),
      )
      .sort((a, b) => a - b);
    const percentile = (p: number) =>
      (latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0).toFixed(1);
    const downtimes = [...crashed.downtimes].sort((a, b) => a - b);
    console.log(
      `soak: ${elapsed.toFixed(0)} s, seed ${SEED}, ${WORKERS} clients (${GIVE_UP_AT_ONCE} give up at once), ${RECORDS} records; faults on storage requests: ${FAULTS.fail * 100}% 503, ${FAULTS.cut * 100}% cut, ${FAULTS.cutAfter * 100}% response lost, and a ${OUTAGE_MS} ms outage every ${OUTAGE_EVERY_MS / 1000} s`,
    );
    console.log(
      CRASH
        ? `app process: kill -9 every ${CRASH_EVERY_MS[0] / 1000}-${CRASH_EVERY_MS[1] / 1000} s, ${crashed.kills} kills, back up after ${downtimes[Math.floor(downtimes.length / 2)]?.toFixed(0) ?? '-'} ms (median), ${downtimes.at(-1)?.toFixed(0) ?? '-'} ms (longest)`
        : 'app process: not killed (--no-crash)',
    );
    console.log(`${formatStats(stats)} (${(stats.operations / elapsed).toFixed(0)}/s)`);
    console.log(`latency per answered request: p50 ${percentile(50)} ms, p99 ${percentile(99)} ms`);
    console.log(`checked: ${JSON.stringify(coverage(history))}`);

    const before = await takeSnapshot(history, observer);
    const violationsBefore = checkInvariants({ history, snapshot: before, phase: 'before-repair' });
    const services = createServices(
      readSettings({ DataTables__connectionString: azurite.connectionString, TABLE_NAME_PREFIX: prefix }),
    );
    const repair = await repairAndCheck(services.consistency);
    const after = await takeSnapshot(history, observer);
    const violationsAfter = [
      ...checkInvariants({ history, snapshot: after, earlier: [before], phase: 'after-repair' }),
      ...repair.left,
    ];

    console.log(
      `before repair: ${violationsBefore.length} violation(s)${violationsBefore.length ? `\n${formatViolations(violationsBefore)}` : ''}`,
    );
    console.log(
      `repair: ${repair.repaired.length} violation(s) found and repaired${
        repair.repaired.length
          ? `\n${repair.repaired
              .slice(0, 20)
              .map((line) => `  - ${line}`)
              .join('\n')}`
          : ''
      }`,
    );
    console.log(
      `after repair: ${violationsAfter.length} violation(s) in ${repair.scanned} rows${violationsAfter.length ? `\n${formatViolations(violationsAfter)}` : ''}`,
    );
    const appErrors = [
      ...new Set(
        app
          .stderr()
          .filter((line) => /error|failed/i.test(line))
          .map((line) => line.slice(0, 200)),
      ),
    ];
    if (appErrors.length > 0) console.log(`the app logged (last lines): ${appErrors.slice(-5).join(' | ')}`);
    return violationsAfter.length > 0 || (STRICT && violationsBefore.length > 0) ? 1 : 0;
  } finally {
    await app.stop();
    await proxy.close();
    await azurite.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
