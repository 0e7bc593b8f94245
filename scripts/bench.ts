import { TableClient, type TransactionAction } from '@azure/data-tables';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { encodePrincipal } from '../shared/caller';
import { createConnectionSchema } from '../shared/connection';
import { createServices, type Services } from '../shared/services';
import { readSettings } from '../shared/settings';
import { toEntity } from '../shared/storage/connectionStore';
import { indexRowKey } from '../shared/storage/roleIndexStore';
import { freePort } from './azurite';
import { bundle } from './bundle';
import { startFaultProxy } from './faultProxy';

/**
 * `npm run bench`: how close each API operation gets to what the storage itself allows.
 *  - raw baseline: @azure/data-tables straight at the same Azurite (two creates in two partitions, a
 *    point read, a 20-entity partition query);
 *  - the API over HTTP (started as `npm start` starts it) at concurrency 1 and 16;
 *  - storage requests per API operation, counted by a proxy in front of Azurite;
 *  - scale: a record with 10,000 connections (list, cascade delete), a role query among 100,000 entries;
 *  - cold start: importing the deployable bundle against a hello-world function's bundle.
 * Prints one table and writes bench/results/latest.{json,md}.
 */
const root = join(__dirname, '..', '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const quick = process.argv.includes('--quick');
// Azurite slows down as a table grows (it is an emulator, not Table Storage): 100,000 index entries and a
// record with 10,000 connections take longer to set up than the ten minutes the whole bench may take here,
// so the defaults are smaller; BENCH_INDEX_ENTRIES=100000 BENCH_RECORD_CONNECTIONS=10000 runs the full sizes.
const INDEX_ENTRIES = Number(process.env.BENCH_INDEX_ENTRIES ?? (quick ? 20_000 : 30_000));
const RECORD_CONNECTIONS = Number(process.env.BENCH_RECORD_CONNECTIONS ?? (quick ? 2000 : 5000));
const progress = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);

interface Measurement {
  ops: number;
  opsPerSecond: number;
  p50: number;
  p99: number;
}

async function measure(concurrency: number, seconds: number, operation: (worker: number) => Promise<void>): Promise<Measurement> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    while (performance.now() < deadline) {
      const begin = performance.now();
      await operation(worker);
      latencies.push(performance.now() - begin);
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
  return { ops: latencies.length, opsPerSecond: latencies.length / elapsed, p50: at(50), p99: at(99) };
}

async function startApp(): Promise<{ baseUrl: string; connectionString: string; stop: () => void }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(root, 'dist', 'scripts', 'start.js')], {
    env: { ...process.env, PORT: String(port), PATH: process.env.PATH?.split(':').filter((part) => !part.includes('node_modules')).join(':') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  const connectionString = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the app did not start:\n${output}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const found = /DataTables__connectionString='([^']+)'/.exec(output)?.[1];
      if (found && output.includes('API ready')) {
        clearTimeout(timer);
        resolve(found);
      }
    });
  });
  return { baseUrl: `http://127.0.0.1:${port}/api`, connectionString, stop: () => child.kill('SIGTERM') };
}

const json = { 'content-type': 'application/json' };

/** What the API answers, as far as the bench reads it. */
interface Answer {
  connectionid: string;
  connectionroleid: string;
  record1id: string;
  value: unknown[];
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: Answer; etag: string | null }> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (response.status >= 400) throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${text}`);
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Answer, etag: response.headers.get('etag') };
}

function importMs(file: string, runs = 9): number {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const result = spawnSync(process.execPath, ['-e', `const t=process.hrtime.bigint();require(${JSON.stringify(file)});console.log(Number(process.hrtime.bigint()-t)/1e6)`], { encoding: 'utf8' });
    times.push(Number(result.stdout.trim()));
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

async function coldStart(): Promise<{ bundleMs: number; helloMs: number; helloTablesMs: number; bundleBytes: number }> {
  const { build } = await import('esbuild');
  const appBundle = await bundle();
  const hello = join(root, 'bench', 'hello', 'main.js');
  await build({
    stdin: {
      contents: "import { app } from '@azure/functions';\napp.http('hello', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ body: 'hello' }) });",
      resolveDir: root, loader: 'ts',
    },
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['@azure/functions-core'], outfile: hello, minify: true, logLevel: 'warning',
  });
  const helloTables = join(root, 'bench', 'hello', 'tables.js');
  await build({
    stdin: {
      contents: "import { app } from '@azure/functions';\nimport { TableClient } from '@azure/data-tables';\n" +
        "app.http('hello', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ jsonBody: await TableClient.fromConnectionString(process.env.C ?? '', 't').getEntity('p', 'r') }) });",
      resolveDir: root, loader: 'ts',
    },
    bundle: true, platform: 'node', target: 'node20', format: 'cjs', external: ['@azure/functions-core'], outfile: helloTables, minify: true, logLevel: 'warning',
  });
  const { statSync } = await import('node:fs');
  return { bundleMs: importMs(appBundle), helloMs: importMs(hello), helloTablesMs: importMs(helloTables), bundleBytes: statSync(appBundle).size };
}

async function main(): Promise<void> {
  console.log(`bench: ${SECONDS} s per measurement${quick ? ' (quick)' : ''}`);
  const app = await startApp();
  process.on('exit', () => app.stop());
  const raw = (table: string) => TableClient.fromConnectionString(app.connectionString, table, { allowInsecureConnection: true });
  const rows: { operation: string; c: number; api?: Measurement | undefined; raw?: Measurement | undefined; rawName?: string; requests?: number; least?: string; target?: number }[] = [];

  // Raw baseline tables.
  const rawTable = raw(`raw${Date.now().toString(36)}`);
  await rawTable.createTable();
  const readPartition = randomUUID();
  for (let index = 0; index < 20; index++) await rawTable.createEntity({ partitionKey: readPartition, rowKey: `c_${index.toString().padStart(4, '0')}`, value: index });
  const rawRead = async () => {
    await rawTable.getEntity(readPartition, 'c_0007');
  };
  const rawQuery = async () => {
    const page = await rawTable.listEntities({ queryOptions: { filter: `PartitionKey eq '${readPartition}'` } }).byPage({ maxPageSize: 100 }).next();
    if (!page.done && page.value.length !== 20) throw new Error('raw query returned the wrong rows');
  };

  // API fixtures: an admin creates a role; each worker has its own records and connections.
  const admin = { ...json, 'x-ms-client-principal': encodePrincipal({ id: randomUUID(), roles: ['Connections.Admin'] }) };
  const user = { ...json, 'x-ms-client-principal': encodePrincipal({ id: randomUUID() }) };
  const role = (await call(`${app.baseUrl}/connectionroles`, { method: 'POST', headers: admin, body: JSON.stringify({ name: 'Bench' }) })).body.connectionroleid;
  await call(`${app.baseUrl}/connectionroles/${role}/matchingroles/${role}`, { method: 'PUT', headers: admin });
  const hub = randomUUID();
  const newConnection = (extra: object = {}) => JSON.stringify({ record1id: randomUUID(), record1objecttypecode: 'account', record2id: randomUUID(), record2objecttypecode: 'contact', ...extra });
  for (let index = 0; index < 20; index++) {
    await call(`${app.baseUrl}/connections`, { method: 'POST', headers: user, body: newConnection({ record1id: hub, record1roleid: role }) });
  }
  const makeOwn = () => Promise.all(Array.from({ length: 16 }, async () => {
    const created = await call(`${app.baseUrl}/connections`, { method: 'POST', headers: user, body: newConnection() });
    return { url: `${app.baseUrl}/records/${created.body.record1id}/connections/${created.body.connectionid}`, etag: created.etag ?? '' };
  }));
  // Separate connections for updates and grants, so a grant never makes an update's ETag stale.
  const own = await makeOwn();
  const shared = await makeOwn();

  const api = {
    create: async () => { await call(`${app.baseUrl}/connections`, { method: 'POST', headers: user, body: newConnection() }); },
    get: async (worker: number) => { await call((own[worker] as { url: string }).url, { headers: user }); },
    list: async () => {
      const page = await call(`${app.baseUrl}/records/${hub}/connections?top=100`, { headers: user });
      if (page.body.value.length !== 20) throw new Error('list returned the wrong rows');
    },
    roleQuery: async () => { await call(`${app.baseUrl}/connections?roleid=${role}&top=100`, { headers: user }); },
    update: async (worker: number) => {
      const mine = own[worker] as { url: string; etag: string };
      const updated = await call(mine.url, { method: 'PATCH', headers: { ...user, 'if-match': mine.etag }, body: JSON.stringify({ description: `at ${performance.now()}` }) });
      mine.etag = updated.etag ?? '';
    },
    grant: async (worker: number) => {
      await call(`${(shared[worker] as { url: string }).url}/access`, { method: 'POST', headers: user, body: JSON.stringify({ principalid: '0b000000-0000-4000-8000-000000000001', principaltype: 'systemuser', accessmask: 'ReadAccess' }) });
    },
  };

  // The floor any HTTP API pays on this machine: a node:http server answering a fixed JSON body.
  const floorPort = await freePort();
  const floor = spawn(process.execPath, ['-e', `require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'application/json' }); r.end('{"status":"ok"}'); }).listen(${floorPort}, '127.0.0.1')`], { stdio: 'ignore' });
  process.on('exit', () => floor.kill());
  await new Promise((resolve) => setTimeout(resolve, 500));
  const floorCall = async () => { await call(`http://127.0.0.1:${floorPort}/`); };

  // Reads first, at both concurrencies, on small tables: Azurite scans a whole table for every query,
  // so the writes measured afterwards must not grow the tables the reads run against.
  const rawWrites = raw(`rawwrites${Date.now().toString(36)}`);
  await rawWrites.createTable();
  const rawCreate = async () => {
    await rawWrites.createEntity({ partitionKey: randomUUID(), rowKey: `c_${randomUUID()}`, description: 'x' });
    await rawWrites.createEntity({ partitionKey: randomUUID(), rowKey: `c_${randomUUID()}`, description: 'x' });
  };
  const measured = new Map<string, Measurement>();
  const run = async (name: string, concurrency: number, operation: (worker: number) => Promise<void>) => {
    measured.set(`${name}@${concurrency}`, await measure(concurrency, SECONDS, operation));
  };
  for (const concurrency of [1, 16]) {
    progress(`measuring reads at concurrency ${concurrency}`);
    await run('floor', concurrency, floorCall);
    await run('raw read', concurrency, rawRead);
    await run('raw query', concurrency, rawQuery);
    await run('get', concurrency, api.get);
    await run('list', concurrency, api.list);
    await run('role query', concurrency, api.roleQuery);
  }
  for (const concurrency of [1, 16]) {
    progress(`measuring writes at concurrency ${concurrency}`);
    await run('raw create', concurrency, rawCreate);
    await run('create', concurrency, api.create);
    await run('update', concurrency, api.update);
    await run('grant', concurrency, api.grant);
  }
  for (const concurrency of [1, 16]) {
    const at = (name: string) => measured.get(`${name}@${concurrency}`);
    rows.push({ operation: 'plain HTTP server (no storage)', c: concurrency, api: at('floor') });
    rows.push({ operation: 'create', c: concurrency, api: at('create'), raw: at('raw create'), rawName: '2 creates, 2 partitions', target: 0.7 });
    rows.push({ operation: 'get', c: concurrency, api: at('get'), raw: at('raw read'), rawName: 'point read', target: 0.7 });
    rows.push({ operation: 'list by record (20)', c: concurrency, api: at('list'), raw: at('raw query'), rawName: 'partition query (20)', target: 0.7 });
    rows.push({ operation: 'role query (20)', c: concurrency, api: at('role query'), raw: at('raw query'), rawName: 'partition query (20)' });
    rows.push({ operation: 'update (If-Match)', c: concurrency, api: at('update') });
    rows.push({ operation: 'grant', c: concurrency, api: at('grant') });
  }

  progress('counting storage requests per operation');
  // Storage requests per operation, as the wire sees them: the domain through a counting proxy.
  const proxy = await startFaultProxy(app.connectionString);
  // Local Azurite, as npm start: skiptokens are sealed with the development key (read from the environment).
  process.env.LOCAL_DEVELOPMENT_MODE = 'true';
  const counted: Services = createServices(readSettings({ DataTables__connectionString: proxy.connectionString, TABLE_NAME_PREFIX: `count${Date.now().toString(36)}` }));
  await counted.ready();
  const me = { id: randomUUID(), teams: [], isAdmin: false };
  const boss = { ...me, isAdmin: true };
  const countedRole = (await counted.roles.create({ name: 'Counted', category: 5, objecttypecodes: [] }, boss)).role.connectionroleid;
  await counted.roles.addMatch(countedRole, countedRole, boss);
  await counted.roles.catalog();
  const countedHub = randomUUID();
  for (let index = 0; index < 20; index++) {
    await counted.connections.create(createConnectionSchema.parse({ record1id: countedHub, record1objecttypecode: 'account', record1roleid: countedRole, record2id: randomUUID(), record2objecttypecode: 'contact' }), me);
  }
  const count = async (action: () => Promise<unknown>) => {
    proxy.resetSeen();
    await action();
    return proxy.seen.length;
  };
  const fresh = () => createConnectionSchema.parse({ record1id: randomUUID(), record1objecttypecode: 'account', record2id: randomUUID(), record2objecttypecode: 'contact' });
  const sample = (await counted.connections.create(fresh(), me)).half;
  const requests: Record<string, { requests: number; least: string }> = {
    create: { requests: await count(() => counted.connections.create(fresh(), me)), least: '2' },
    'create with roles': { requests: await count(() => counted.connections.create(createConnectionSchema.parse({ ...fresh(), record1roleid: countedRole }), me)), least: '4 (2 + 2 index entries)' },
    get: { requests: await count(() => counted.connections.get(sample.record1id, sample.connectionid, me)), least: '1' },
    'list by record (20)': { requests: await count(() => counted.connections.list({ recordId: countedHub }, me, { top: 100 })), least: '1 per page' },
    'role query (20)': { requests: await count(() => counted.connections.listByRole({ roleid: countedRole }, me, { top: 100 })), least: '1 per page' },
    // A change: read the URL's half (and the authoritative one, when the URL names the other), commit,
    // bring the other half along (read, then fenced write, unless the URL's read already gave it).
    update: { requests: await count(() => counted.connections.update(sample.record1id, sample.connectionid, { description: 'x' }, me)), least: '4' },
    'update via the other half': { requests: await count(() => counted.connections.update(sample.record2id, sample.relatedconnectionid, { description: 'y' }, me)), least: '4' },
    grant: { requests: await count(() => counted.connections.grantAccess(sample.record1id, sample.connectionid, me, { principalid: randomUUID(), principaltype: 'systemuser', accessmask: 1 })), least: '4' },
    delete: { requests: await count(() => counted.connections.delete(sample.record1id, sample.connectionid, me)), least: '4' },
  };
  for (const row of rows) {
    const counts = requests[row.operation];
    if (counts) Object.assign(row, counts);
  }

  // Scale.
  progress('scale: one record with many connections');
  const scale: Record<string, string> = {};
  const bigHub = randomUUID();
  const bigCount = RECORD_CONNECTIONS;
  let made = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (made < bigCount) {
      made++;
      await counted.connections.create(createConnectionSchema.parse({ record1id: bigHub, record1objecttypecode: 'account', record2id: randomUUID(), record2objecttypecode: 'contact' }), me);
    }
  }));
  scale[`create ${bigCount} connections of one record (16 parallel)`] = `${((performance.now() - started) / 1000).toFixed(1)} s`;
  proxy.resetSeen();
  let listed = 0;
  let skiptoken: string | undefined;
  const listStart = performance.now();
  do {
    const page = await counted.connections.list({ recordId: bigHub }, me, { top: 1000, ...(skiptoken && { skiptoken }) });
    listed += page.items.length;
    skiptoken = page.skiptoken;
  } while (skiptoken);
  scale[`list ${listed} connections, pages of 1000`] = `${((performance.now() - listStart) / 1000).toFixed(2)} s, ${proxy.seen.length} storage requests`;
  proxy.resetSeen();
  const cascadeStart = performance.now();
  const deleted = await counted.connections.deleteAllOf(bigHub, boss);
  scale[`cascade delete ${deleted} connections`] = `${((performance.now() - cascadeStart) / 1000).toFixed(1)} s, ${proxy.seen.length} storage requests`;

  progress(`scale: writing ${INDEX_ENTRIES} role index entries`);
  // Role query among many index entries of which 20 match: entries written straight into the index
  // table in the app's layout, since making 100,000 connections through the API would take long.
  const indexTable = counted.tables.roleIndex;
  const crowd = randomUUID();
  const target = randomUUID();
  const entries = INDEX_ENTRIES;
  const fillStart = performance.now();
  const batches: TransactionAction[][] = [];
  for (let offset = 0; offset < entries - 20; offset += 100) {
    batches.push(Array.from({ length: Math.min(100, entries - 20 - offset) }, (): TransactionAction => {
      const half = { ...sample, record1id: randomUUID(), connectionid: randomUUID(), record1roleid: crowd };
      return ['create', toEntity({ half, tombstone: false, lastop: '', indexed: [] }, crowd, indexRowKey(half))];
    }));
  }
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < batches.length) await indexTable.submitTransaction(batches[next++] as TransactionAction[]);
  }));
  for (let index = 0; index < 20; index++) {
    const half = { ...sample, record1id: randomUUID(), connectionid: randomUUID(), record1roleid: target, ownerid: me.id };
    await indexTable.createEntity(toEntity({ half, tombstone: false, lastop: '', indexed: [] }, target, indexRowKey(half)));
  }
  scale[`write ${entries} index entries`] = `${((performance.now() - fillStart) / 1000).toFixed(1)} s`;
  proxy.resetSeen();
  const roleStart = performance.now();
  const found = await counted.connections.listByRole({ roleid: target }, me, { top: 100 });
  scale[`role query among ${entries} entries, ${found.items.length} match`] = `${(performance.now() - roleStart).toFixed(0)} ms, ${proxy.seen.length} storage request(s)`;
  const scaleRequestsOk = proxy.seen.length === 1 && found.items.length === 20;

  await proxy.close();
  app.stop();
  floor.kill();

  progress('cold start');
  const cold = await coldStart();

  // Report.
  const fmt = (value: number, digits = 0) => value.toFixed(digits);
  const lines = [
    `| operation | c | API ops/s | API p50 / p99 ms | raw baseline | raw ops/s | raw p50 / p99 ms | API/raw | target | storage requests (least) |`,
    `|---|---|---|---|---|---|---|---|---|---|`,
  ];
  const checks: string[] = [];
  for (const row of rows) {
    const ratio = row.api && row.raw ? row.api.opsPerSecond / row.raw.opsPerSecond : undefined;
    const meets = row.target !== undefined && row.c === 16 && ratio !== undefined ? (ratio >= row.target ? 'met' : 'MISSED') : '';
    if (meets) checks.push(`${row.operation} at c=16 >= ${row.target}x raw: ${meets} (${fmt(ratio ?? 0, 2)}x)`);
    lines.push(`| ${row.operation} | ${row.c} | ${row.api ? fmt(row.api.opsPerSecond) : ''} | ${row.api ? `${fmt(row.api.p50, 1)} / ${fmt(row.api.p99, 1)}` : ''} | ${row.rawName ?? ''} | ${row.raw ? fmt(row.raw.opsPerSecond) : ''} | ${row.raw ? `${fmt(row.raw.p50, 1)} / ${fmt(row.raw.p99, 1)}` : ''} | ${ratio !== undefined ? `${fmt(ratio, 2)}x` : ''} | ${row.target !== undefined && row.c === 16 ? `>= ${row.target}x: ${meets}` : ''} | ${row.requests ?? ''} (${row.least ?? ''}) |`);
  }
  for (const [operation, counts] of Object.entries(requests)) {
    const least = Number.parseInt(counts.least, 10);
    if (/^\d+$/.test(counts.least) || operation === 'create with roles') checks.push(`${operation}: ${counts.requests} storage requests, least ${counts.least}: ${counts.requests <= least ? 'met' : 'MISSED'}`);
    else if (counts.least === '1 per page') checks.push(`${operation}: ${counts.requests} storage request(s) for one page: ${counts.requests === 1 ? 'met' : 'MISSED'}`);
  }
  checks.push(`role query among ${entries} entries reads only the answer (1 request): ${scaleRequestsOk ? 'met' : 'MISSED'}`);
  const coldRatio = cold.bundleMs / cold.helloMs;
  checks.push(`cold start: bundle import ${fmt(cold.bundleMs, 1)} ms vs hello world ${fmt(cold.helloMs, 1)} ms = ${fmt(coldRatio, 2)}x (target <= 2x): ${coldRatio <= 2 ? 'met' : 'MISSED'}`);
  checks.push(`cold start against a hello world that reads a table (${fmt(cold.helloTablesMs, 1)} ms): ${fmt(cold.bundleMs / cold.helloTablesMs, 2)}x`);
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, Azurite in memory`;
  const markdown = [
    `Machine: ${machine}; ${SECONDS} s per measurement; run ${new Date().toISOString()}.`,
    '',
    ...lines,
    '',
    '| scale | result |',
    '|---|---|',
    ...Object.entries(scale).map(([name, result]) => `| ${name} | ${result} |`),
    `| deployable bundle | ${(cold.bundleBytes / 1024).toFixed(0)} KiB, import ${fmt(cold.bundleMs, 1)} ms (hello world ${fmt(cold.helloMs, 1)} ms; hello world reading a table ${fmt(cold.helloTablesMs, 1)} ms) |`,
    '',
    'Targets:',
    ...checks.map((check) => `- ${check}`),
  ].join('\n');
  console.log(`\n${markdown}\n`);
  const folder = join(root, 'bench', 'results');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'latest.md'), `${markdown}\n`);
  writeFileSync(join(folder, 'latest.json'), `${JSON.stringify({ machine, seconds: SECONDS, rows, requests, scale, cold, checks }, null, 2)}\n`);
  console.log(`Wrote ${readdirSync(folder).map((file) => join('bench/results', file)).join(', ')}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
