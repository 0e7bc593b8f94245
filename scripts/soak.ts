import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { encodePrincipal } from '../shared/caller';
import { createServices } from '../shared/services';
import { readSettings } from '../shared/settings';
import { startAzurite } from './azurite';
import { startFaultProxy } from './faultProxy';
import { createLocalServer } from './localHost';
import { loadFunctions } from './loadFunctions';

/**
 * `npm run soak [-- seconds]`: minutes of mixed load on the API over HTTP while the fault proxy fails
 * (503), cuts, or loses the responses of a share of storage requests. Clients retry 503s as the README
 * asks. At the end the repair job runs and the checker must find no violation. Not part of `npm test`.
 */
const seconds = Number(process.argv[2] ?? 180);
const WORKERS = 8;
const RECORDS = 40;
const FAULTS = { fail: 0.02, cut: 0.01, cutAfter: 0.005 };
// Besides scattered faults, storage is down for OUTAGE_MS of every OUTAGE_EVERY_MS, long enough that the
// SDK's retries give up and operations fail halfway.
const OUTAGE_MS = 700;
const OUTAGE_EVERY_MS = 5000;

interface Stats {
  operations: number;
  byStatus: Map<number, number>;
  retries: number;
  latencies: number[];
}

async function main(): Promise<number> {
  const azurite = await startAzurite({ services: 'table' });
  const proxy = await startFaultProxy(azurite.connectionString);
  const prefix = `soak${Date.now().toString(36)}`;
  Object.assign(process.env, { DataTables__connectionString: proxy.connectionString, TABLE_NAME_PREFIX: prefix, LOCAL_DEVELOPMENT_MODE: 'true' });
  await loadFunctions(join(__dirname, '..', 'functions'));
  const server = createLocalServer(undefined, { log: 'error' });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;

  const admin = { 'x-ms-client-principal': encodePrincipal({ id: randomUUID(), roles: ['Connections.Admin'] }), 'content-type': 'application/json' };
  const role = await (await fetch(`${base}/connectionroles`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'Partner' }) })).json() as { connectionroleid: string };
  await fetch(`${base}/connectionroles/${role.connectionroleid}/matchingroles/${role.connectionroleid}`, { method: 'PUT', headers: admin });

  proxy.add({ match: () => Date.now() % OUTAGE_EVERY_MS < OUTAGE_MS, action: 'fail', status: 500 });
  proxy.add({ match: () => Math.random() < FAULTS.fail, action: 'fail', status: 503 });
  proxy.add({ match: () => Math.random() < FAULTS.cut, action: 'cut' });
  proxy.add({ match: () => Math.random() < FAULTS.cutAfter, action: 'cut-after' });

  const records = Array.from({ length: RECORDS }, () => randomUUID());
  const stats: Stats = { operations: 0, byStatus: new Map(), retries: 0, latencies: [] };
  const deadline = Date.now() + seconds * 1000;

  interface Answer {
    connectionid: string;
    relatedconnectionid: string;
    record1id: string;
    record2id: string;
    value?: { principalid: string }[];
  }

  async function send(method: string, path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; json: Answer | undefined }> {
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      const response = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
      const text = await response.text();
      stats.latencies.push(performance.now() - started);
      if (response.status === 503 && attempt < 10) {
        stats.retries++;
        await new Promise((resolve) => setTimeout(resolve, 50 * (attempt + 1)));
        continue;
      }
      stats.operations++;
      stats.byStatus.set(response.status, (stats.byStatus.get(response.status) ?? 0) + 1);
      if (response.status >= 500) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return { status: response.status, json: text ? (JSON.parse(text) as Answer) : undefined };
    }
  }

  async function worker(): Promise<void> {
    const user = { 'x-ms-client-principal': encodePrincipal({ id: randomUUID() }), 'content-type': 'application/json' };
    const mine: { url: string; twinUrl: string }[] = [];
    while (Date.now() < deadline) {
      const dice = Math.random();
      const target = mine[Math.floor(Math.random() * mine.length)];
      if (dice < 0.3 || !target) {
        const [a, b] = [Math.floor(Math.random() * RECORDS), Math.floor(Math.random() * RECORDS)];
        if (a === b) continue;
        const created = await send('POST', '/connections', user, {
          connectionid: randomUUID(), record1id: records[a], record1objecttypecode: 'account', record2id: records[b], record2objecttypecode: 'contact',
          ...(Math.random() < 0.5 && { record1roleid: role.connectionroleid }),
        });
        if ((created.status === 201 || created.status === 200) && created.json) {
          mine.push({
            url: `/records/${created.json.record1id}/connections/${created.json.connectionid}`,
            twinUrl: `/records/${created.json.record2id}/connections/${created.json.relatedconnectionid}`,
          });
        }
      } else if (dice < 0.55) {
        await send('PATCH', Math.random() < 0.5 ? target.url : target.twinUrl, user, { description: `at ${Date.now()}` });
      } else if (dice < 0.65) {
        await send('PATCH', target.url, user, { statecode: Math.random() < 0.5 ? 1 : 0 });
      } else if (dice < 0.75) {
        await send('POST', `${target.twinUrl}/access`, user, { principalid: randomUUID(), principaltype: 'systemuser', accessmask: 'ReadAccess' });
      } else if (dice < 0.8) {
        const shares = await send('GET', `${target.url}/access`, user);
        const first = shares.json?.value?.[0];
        if (first) await send('DELETE', `${target.url}/access/${first.principalid}`, user);
      } else if (dice < 0.9) {
        await send('GET', `/records/${records[Math.floor(Math.random() * RECORDS)]}/connections?top=50`, user);
      } else {
        await send('DELETE', Math.random() < 0.5 ? target.url : target.twinUrl, user);
        mine.splice(mine.indexOf(target), 1);
      }
    }
  }

  const started = Date.now();
  await Promise.all(Array.from({ length: WORKERS }, worker));
  const elapsed = (Date.now() - started) / 1000;
  proxy.clear();

  const services = createServices(readSettings({ DataTables__connectionString: azurite.connectionString, TABLE_NAME_PREFIX: prefix }));
  const repaired = await services.consistency.walk({ repair: true, graceMs: 0 });
  const checked = await services.consistency.walk({ repair: false, graceMs: 0 });
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  const percentile = (p: number) => (sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0).toFixed(1);

  console.log(`soak: ${elapsed.toFixed(0)} s, ${WORKERS} clients, faults on storage requests: ${FAULTS.fail * 100}% 503, ${FAULTS.cut * 100}% cut, ${FAULTS.cutAfter * 100}% response lost, and a ${OUTAGE_MS} ms outage every ${OUTAGE_EVERY_MS / 1000} s`);
  console.log(`operations: ${stats.operations} (${(stats.operations / elapsed).toFixed(0)}/s), client retries after 503: ${stats.retries}`);
  console.log(`statuses: ${[...stats.byStatus].sort(([a], [b]) => a - b).map(([status, count]) => `${status}×${count}`).join(', ')}`);
  console.log(`latency per request: p50 ${percentile(50)} ms, p99 ${percentile(99)} ms`);
  console.log(`repair: ${repaired.violations.length} violation(s) found and repaired (${summarize(repaired.violations.map((v) => v.kind))}); after repair: ${checked.violations.length} violation(s) in ${checked.scanned} rows`);

  for (const violation of checked.violations) console.log(`left: ${violation.kind} ${violation.table} ${violation.partitionKey}/${violation.rowKey}: ${violation.detail}`);
  for (const violation of repaired.violations) console.log(`repaired: ${violation.kind} ${violation.table} ${violation.partitionKey}/${violation.rowKey}: ${violation.detail}`);
  server.close();
  await proxy.close();
  await azurite.stop();
  return checked.violations.length === 0 ? 0 : 1;
}

function summarize(kinds: string[]): string {
  const counts = new Map<string, number>();
  for (const kind of kinds) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return [...counts].map(([kind, count]) => `${kind} ${count}`).join(', ') || 'none';
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
