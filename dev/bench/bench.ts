import { TableClient, type TableEntityResult, type TransactionAction } from '@azure/data-tables';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { encodePrincipal } from '../../shared/api/principal';
import { createConnectionSchema } from '../../shared/domain/connection';
import { createServices, type Services } from '../../shared/useCases/services';
import { readSettings, tableNames } from '../../shared/config/settings';
import { claimPartitionOf, halfRowKey, toEntity } from '../../shared/storage/connectionStore';
import { indexRowKey } from '../../shared/storage/roleIndexStore';
import { type AppProcess, startAppProcess } from '../local/appProcess';
import { freePort, startAzurite } from '../local/azurite';
import { FLOOR_READY_LINE, type FloorConfig, type Properties } from './benchFloor';
import { bundle } from '../local/bundle';
import { type FaultProxy, isBatch, type SeenRequest, startFaultProxy } from '../load/faultProxy';

/**
 * `npm run bench`: what the app itself costs, as CPU time per operation against its floor.
 *  - the app: Azurite in memory and the app as its own process (dev/local/azurite.ts, dev/local/appProcess.ts:
 *    dist/dev/local/serve.js, every registered function on the local node:http host), called over HTTP;
 *  - the floor: an empty node:http handler in its own process making exactly the storage requests of
 *    the same operation through the raw SDK (dev/bench/benchFloor.ts);
 *  - CPU: each process (app, floor, Azurite) loads dev/bench/cpuProbe.ts, which reports
 *    process.cpuUsage(); read before and after a fixed number of operations at concurrency 1 and 16,
 *    it gives microseconds of CPU per operation of the app and of the floor, and Azurite's for each
 *    (equal when both make the same storage requests). Throughput and latency come from the same runs;
 *  - storage requests per operation of both, counted by a proxy in front of Azurite (a second app and
 *    floor on other tables, so the measured ones never pass through the proxy);
 *  - scale: a record with many connections (list, cascade delete), a role query among many index entries;
 *  - cold start: importing the deployable bundle against a hello-world function's bundle.
 * Prints the tables and writes bench/results/latest.{json,md}.
 */
const root = join(__dirname, '..', '..', '..');
const quick = process.argv.includes('--quick');
// Operations per measurement at concurrency 1; at 16, three times as many. Each measurement is preceded
// by WARM_OPS operations that are not counted (JIT, connection pools, the role catalog cache).
const OPS = Number(process.env.BENCH_OPS ?? (quick ? 120 : 400));
const opsAt = (concurrency: number) => (concurrency === 1 ? OPS : 3 * OPS);
const WARM_OPS = 100;
const CONCURRENCIES = [1, 16];
// Azurite slows down as a table grows (it is an emulator, not Table Storage): 100,000 index entries and a
// record with 10,000 connections take longer to set up than the ten minutes the whole bench may take here,
// so the defaults are smaller; BENCH_INDEX_ENTRIES=100000 BENCH_RECORD_CONNECTIONS=10000 runs the full sizes.
const INDEX_ENTRIES = Number(process.env.BENCH_INDEX_ENTRIES ?? (quick ? 20_000 : 30_000));
const RECORD_CONNECTIONS = Number(process.env.BENCH_RECORD_CONNECTIONS ?? (quick ? 2000 : 5000));
const progress = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const probeFile = join(__dirname, 'cpuProbe.js');
const probeEnv = (port: number): Record<string, string> => ({
  NODE_OPTIONS: `--require ${probeFile}`,
  CPU_PROBE_PORT: String(port),
});

/** CPU time (user + system, µs) a process has used so far, from its probe. */
async function cpuOf(probePort: number): Promise<number> {
  const answer = (await (await fetch(`http://127.0.0.1:${probePort}/`)).json()) as { user: number; system: number };
  return answer.user + answer.system;
}

// ---------------------------------------------------------------------------------------------------
// Calling the app and the floor.

const json = { 'content-type': 'application/json' };
const admin = { ...json, 'x-ms-client-principal': encodePrincipal({ id: randomUUID(), roles: ['Connections.Admin'] }) };
const user = { ...json, 'x-ms-client-principal': encodePrincipal({ id: randomUUID() }) };

/** What the API answers, as far as the bench reads it. */
interface Answer {
  connectionid: string;
  relatedconnectionid: string;
  connectionroleid: string;
  record1id: string;
  record2id: string;
  value: unknown[];
}

async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: Answer; etag: string | null }> {
  const response = await fetch(url, init);
  const text = await response.text();
  if (response.status >= 400) throw new Error(`${init.method ?? 'GET'} ${url}: ${response.status} ${text}`);
  return {
    status: response.status,
    body: (text ? JSON.parse(text) : {}) as Answer,
    etag: response.headers.get('etag'),
  };
}

const newConnection = (extra: object = {}) =>
  JSON.stringify({
    record1id: randomUUID(),
    record1objecttypecode: 'account',
    record2id: randomUUID(),
    record2objecttypecode: 'contact',
    ...extra,
  });

/** A connection the app made, with the URL of each half. */
interface Made {
  record1id: string;
  record2id: string;
  connectionid: string;
  relatedconnectionid: string;
  url: string;
  otherUrl: string;
  etag: string;
}

async function connect(baseUrl: string, extra: object = {}): Promise<Made> {
  const { body, etag } = await call(`${baseUrl}/connections`, {
    method: 'POST',
    headers: user,
    body: newConnection(extra),
  });
  return {
    record1id: body.record1id,
    record2id: body.record2id,
    connectionid: body.connectionid,
    relatedconnectionid: body.relatedconnectionid,
    url: `${baseUrl}/records/${body.record1id}/connections/${body.connectionid}`,
    otherUrl: `${baseUrl}/records/${body.record2id}/connections/${body.relatedconnectionid}`,
    etag: etag ?? '',
  };
}

async function parallel<T>(count: number, concurrency: number, make: (index: number) => Promise<T>): Promise<T[]> {
  const made: T[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const index = next++;
        made[index] = await make(index);
      }
    }),
  );
  return made;
}

/** The app's fixtures, made through its API. */
interface AppFixtures {
  /** A record with 20 connections whose halves on it play `lead` (the other side `follower`). */
  hub: string;
  lead: string;
  /** The roles of a create with a role: `doctor` given for record 1, record 2 filled with its only match. */
  doctor: string;
  patient: string;
  /** One connection per worker, for gets and updates. */
  own: Made[];
  /** Per concurrency, one connection per grant (then per delete) of its measurement, warm-up included. */
  supply: Map<number, Made[]>;
}

async function prepareApp(baseUrl: string, supplyOf: (concurrency: number) => number): Promise<AppFixtures> {
  const role = async (name: string) =>
    (await call(`${baseUrl}/connectionroles`, { method: 'POST', headers: admin, body: JSON.stringify({ name }) })).body
      .connectionroleid;
  const match = (a: string, b: string) =>
    call(`${baseUrl}/connectionroles/${a}/matchingroles/${b}`, { method: 'PUT', headers: admin });
  const [lead, follower, doctor, patient] = [
    await role('Lead'),
    await role('Follower'),
    await role('Doctor'),
    await role('Patient'),
  ];
  await match(lead, follower);
  await match(doctor, patient);
  const hub = randomUUID();
  await parallel(20, 4, () => connect(baseUrl, { record1id: hub, record1roleid: lead }));
  const own = await parallel(16, 16, () => connect(baseUrl));
  const supply = new Map<number, Made[]>();
  for (const concurrency of CONCURRENCIES)
    supply.set(concurrency, await parallel(supplyOf(concurrency), 16, () => connect(baseUrl)));
  return { hub, lead, doctor, patient, own, supply };
}

/** Two halves of a connection in the floor's table: the URL of /change and /delete. */
type FloorPair = { pk1: string; rk1: string; pk2: string; rk2: string; guard: string };
const pairPath = (pair: FloorPair) => [pair.pk1, pair.rk1, pair.pk2, pair.rk2].map(encodeURIComponent).join('/');

/** Property bags of an entity as stored: no keys, no service properties. */
function propertiesOf(entity: TableEntityResult<Record<string, unknown>>): Properties {
  const properties: Properties = {};
  for (const [key, value] of Object.entries(entity)) {
    if (['partitionKey', 'rowKey', 'etag', 'timestamp'].includes(key) || key.includes('odata')) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') properties[key] = value;
  }
  return properties;
}

const LIST_FILTER = "PartitionKey eq '{pk}' and RowKey ge 'c_' and RowKey lt 'c`'";
const ROLE_FILTER = "PartitionKey eq '{pk}' and RowKey ge '0' and RowKey lt ':'";
const PAGE_SIZE = 100; // the app reads max(top, 100) rows; the bench asks for top=100

/**
 * The floor's configuration: the app's tables, and templates taken from entities the app stored for a
 * connection without roles and one with a role (so every write of the floor has the app's shape).
 */
async function floorConfig(
  connectionString: string,
  prefix: string,
  app: AppFixtures,
  baseUrl: string,
): Promise<FloorConfig> {
  const names = tableNames({ TABLE_NAME_PREFIX: prefix });
  const client = (table: string) =>
    TableClient.fromConnectionString(connectionString, table, { allowInsecureConnection: true });
  const connections = client(names.connections);
  const roleIndex = client(names.roleIndex);
  const first = async (table: TableClient, partition: string, from: string, to: string) => {
    const page = await table
      .listEntities<Record<string, unknown>>({
        queryOptions: { filter: `PartitionKey eq '${partition}' and RowKey ge '${from}' and RowKey lt '${to}'` },
      })
      .byPage({ maxPageSize: 1 })
      .next();
    const found = page.done ? undefined : page.value[0];
    if (!found) throw new Error(`no entity in ${partition} between ${from} and ${to}`);
    return propertiesOf(found);
  };
  const halves = async (made: Made) => {
    const authoritativeFirst = made.record1id < made.record2id;
    const [authoritative, derived] = authoritativeFirst
      ? ([
          [made.record1id, made.connectionid],
          [made.record2id, made.relatedconnectionid],
        ] as const)
      : ([
          [made.record2id, made.relatedconnectionid],
          [made.record1id, made.connectionid],
        ] as const);
    return {
      half: propertiesOf(await connections.getEntity(authoritative[0], halfRowKey(authoritative[1]))),
      otherHalf: propertiesOf(await connections.getEntity(derived[0], halfRowKey(derived[1]))),
      guard: await first(connections, authoritative[0], 'u_', 'u`'),
    };
  };
  const plain = await connect(baseUrl);
  const withRole = await connect(baseUrl, { record1roleid: app.doctor });
  const { half, guard } = await halves(plain);
  const { half: roleHalf } = await halves(withRole);
  const floorPrefix = `${prefix}Floor`;
  return {
    connectionString,
    tables: {
      ...names,
      floorConnections: `${floorPrefix}Connections`,
      floorRoleIndex: `${floorPrefix}ConnectionRoleIndex`,
    },
    templates: {
      half,
      roleHalf,
      guard,
      claim: propertiesOf(await connections.getEntity(claimPartitionOf(plain.connectionid), 'claim')),
      reservation: await first(roleIndex, app.doctor, 'r_', 'r`'),
      entry: await first(roleIndex, app.doctor, '0', ':'),
      // An audit record the app wrote beside a commit (the floor writes one in each of its commits too).
      audit: await first(
        connections,
        plain.record1id < plain.record2id ? plain.record1id : plain.record2id,
        'h_',
        'h`',
      ),
    },
    roles: { partitionKey: 'roles', rowKeys: [`r_${app.doctor}`, `r_${app.patient}`], ids: [app.doctor, app.patient] },
    filters: { list: LIST_FILTER, role: ROLE_FILTER },
    pageSize: PAGE_SIZE,
  };
}

interface FloorFixtures {
  own: FloorPair[];
  supply: Map<number, FloorPair[]>;
}

/** The floor's own connections (for changes, grants and deletes), written straight into its table. */
async function prepareFloor(config: FloorConfig, supplyOf: (concurrency: number) => number): Promise<FloorFixtures> {
  const client = (table: string) =>
    TableClient.fromConnectionString(config.connectionString, table, { allowInsecureConnection: true });
  const table = client(config.tables.floorConnections);
  await table.createTable();
  await client(config.tables.floorRoleIndex).createTable();
  const pair = async (): Promise<FloorPair> => {
    const made = {
      pk1: randomUUID(),
      rk1: `c_${randomUUID()}`,
      pk2: randomUUID(),
      rk2: `c_${randomUUID()}`,
      guard: `u_${randomUUID()}_-_-`,
    };
    const batch: TransactionAction[] = [
      ['create', { partitionKey: made.pk1, rowKey: made.rk1, ...config.templates.half }],
      ['create', { partitionKey: made.pk1, rowKey: made.guard, ...config.templates.guard }],
    ];
    await table.submitTransaction(batch);
    await table.createEntity({ partitionKey: made.pk2, rowKey: made.rk2, ...config.templates.half });
    return made;
  };
  const own = await parallel(16, 16, pair);
  const supply = new Map<number, FloorPair[]>();
  for (const concurrency of CONCURRENCIES) supply.set(concurrency, await parallel(supplyOf(concurrency), 16, pair));
  return { own, supply };
}

interface Floor {
  baseUrl: string;
  pid: number | undefined;
  stop: () => void;
}

async function startFloor(config: FloorConfig, env: Record<string, string> = {}): Promise<Floor> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(__dirname, 'benchFloor.js'), '--port', String(port)], {
    env: { ...process.env, ...env, BENCH_FLOOR: JSON.stringify(config), APP_PARENT_PID: String(process.pid) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error('the floor did not start')), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(FLOOR_READY_LINE)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the floor exited (${code}) before it listened`)));
  });
  return { baseUrl: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

// ---------------------------------------------------------------------------------------------------
// The operations, each as the app serves it and as the floor does.

/** One call; `index` counts the measurement's calls (warm-up included), `worker` its client. */
type Op = (worker: number, index: number) => Promise<void>;

interface Operation {
  name: string;
  /** The fewest storage requests the operation can make, and why. */
  least: number;
  why: string;
  app: (concurrency: number) => Op;
  floor: (concurrency: number) => Op;
}

function operations(
  appUrl: string,
  app: AppFixtures,
  floorUrl: string,
  floor: FloorFixtures,
): { reads: Operation[]; writes: Operation[] } {
  const supplied = <T>(supply: Map<number, T[]>, concurrency: number, index: number): T => {
    const item = supply.get(concurrency)?.[index];
    if (!item) throw new Error(`no connection left for call ${index} at concurrency ${concurrency}`);
    return item;
  };
  const mine = (worker: number) => app.own[worker] as Made;
  const floorMine = (worker: number) => floor.own[worker] as FloorPair;
  const grantBody = JSON.stringify({
    principalid: '0b000000-0000-4000-8000-000000000001',
    principaltype: 'systemuser',
    accessmask: 'ReadAccess',
  });
  const reads: Operation[] = [
    {
      name: 'get',
      least: 1,
      why: 'one point read of the half the URL names',
      app: () => async (worker) => {
        await call(mine(worker).url, { headers: user });
      },
      floor: () => async (worker) => {
        await call(`${floorUrl}/get/${mine(worker).record1id}/${halfRowKey(mine(worker).connectionid)}`, {
          headers: user,
        });
      },
    },
    {
      name: 'list by record (20)',
      least: 1,
      why: "one range query of the record's partition per page (20 rows, one page)",
      app: () => async () => {
        const page = await call(`${appUrl}/records/${app.hub}/connections?top=100`, { headers: user });
        if (page.body.value.length !== 20) throw new Error('list returned the wrong rows');
      },
      floor: () => async () => {
        const page = await call(`${floorUrl}/list/${app.hub}`, { headers: user });
        if (page.body.value.length !== 20) throw new Error('the floor listed the wrong rows');
      },
    },
    {
      name: 'role query (20)',
      least: 1,
      why: "one range query of the role's index partition per page (20 entries)",
      app: () => async () => {
        const page = await call(`${appUrl}/connections?roleid=${app.lead}&top=100`, { headers: user });
        if (page.body.value.length !== 20) throw new Error('role query returned the wrong rows');
      },
      floor: () => async () => {
        const page = await call(`${floorUrl}/role/${app.lead}`, { headers: user });
        if (page.body.value.length !== 20) throw new Error('the floor queried the wrong rows');
      },
    },
  ];
  const writes: Operation[] = [
    {
      name: 'create',
      least: 3,
      why: 'id claim (insert), commit (half + guard, one batch), other half (insert)',
      app: () => async () => {
        await call(`${appUrl}/connections`, { method: 'POST', headers: user, body: newConnection() });
      },
      floor: () => async () => {
        await call(`${floorUrl}/create`, { method: 'POST', headers: user, body: newConnection() });
      },
    },
    {
      name: 'create with a role',
      least: 9,
      why: 'claim, 2 role reservations and 2 fresh role reads (record 2 takes the matching role), commit, other half, 2 index entries',
      app: () => async () => {
        await call(`${appUrl}/connections`, {
          method: 'POST',
          headers: user,
          body: newConnection({ record1roleid: app.doctor }),
        });
      },
      floor: () => async () => {
        await call(`${floorUrl}/create-role`, {
          method: 'POST',
          headers: user,
          body: newConnection({ record1roleid: app.doctor }),
        });
      },
    },
    {
      name: 'update (If-Match)',
      least: 4,
      why: "read the URL's half and the authoritative one (or the other), commit (batch), fenced write of the other half",
      app: () => async (worker) => {
        const own = mine(worker);
        const updated = await call(own.url, {
          method: 'PATCH',
          headers: { ...user, 'if-match': own.etag },
          body: JSON.stringify({ description: `at ${performance.now()}` }),
        });
        own.etag = updated.etag ?? '';
      },
      floor: () => async (worker) => {
        await call(`${floorUrl}/change/${pairPath(floorMine(worker))}`, {
          method: 'PATCH',
          headers: user,
          body: JSON.stringify({ description: `at ${performance.now()}` }),
        });
      },
    },
    {
      name: 'grant',
      least: 4,
      why: 'as an update: two reads, commit, the other half',
      app: (concurrency) => async (_worker, index) => {
        await call(`${supplied(app.supply, concurrency, index).url}/access`, {
          method: 'POST',
          headers: user,
          body: grantBody,
        });
      },
      floor: (concurrency) => async (_worker, index) => {
        await call(`${floorUrl}/change/${pairPath(supplied(floor.supply, concurrency, index))}`, {
          method: 'PATCH',
          headers: user,
          body: grantBody,
        });
      },
    },
    {
      name: 'delete',
      least: 4,
      why: "two reads, commit of the tombstone (batch, with the guard's delete), tombstone of the other half",
      app: (concurrency) => async (_worker, index) => {
        await call(supplied(app.supply, concurrency, index).url, { method: 'DELETE', headers: user });
      },
      floor: (concurrency) => async (_worker, index) => {
        const pair = supplied(floor.supply, concurrency, index);
        await call(`${floorUrl}/delete/${pairPath(pair)}/${encodeURIComponent(pair.guard)}`, {
          method: 'DELETE',
          headers: user,
        });
      },
    },
  ];
  return { reads, writes };
}

// ---------------------------------------------------------------------------------------------------
// Measuring.

interface Timing {
  ops: number;
  seconds: number;
  opsPerSecond: number;
  p50: number;
  p99: number;
}

/** `count` calls by `concurrency` clients; their latencies (ms) and how long they all took (s). */
async function timed(
  count: number,
  concurrency: number,
  op: Op,
  offset = 0,
): Promise<{ latencies: number[]; seconds: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < count) {
        const index = offset + next++;
        const begin = performance.now();
        await op(worker, index);
        latencies.push(performance.now() - begin);
      }
    }),
  );
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

/** One side of a row: CPU per operation of the server measured and of Azurite meanwhile, and timing. */
interface Side extends Timing {
  cpuUsPerOp: number;
  azuriteUsPerOp: number;
}

/** A server measured: its probe, and how to call the operation on it. */
interface Measured {
  probe: number;
  op: Op;
}

// The app and the floor take turns, a quarter of the operations at a time, so that what else runs on the
// machine (the load generator, another tenant of the cores) weighs on both alike.
const ROUNDS = 4;

async function measure(azuriteProbe: number, concurrency: number, sides: [Measured, Measured]): Promise<[Side, Side]> {
  for (const side of sides) await timed(WARM_OPS, concurrency, side.op);
  const totals = sides.map(() => ({ cpu: 0, azurite: 0, seconds: 0, latencies: [] as number[] }));
  const chunk = Math.ceil(opsAt(concurrency) / ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [at, side] of sides.entries()) {
      const total = totals[at] as (typeof totals)[number];
      await pause(100); // the previous calls' last answers leave nothing running
      const [server, azurite] = [await cpuOf(side.probe), await cpuOf(azuriteProbe)];
      const { latencies, seconds } = await timed(chunk, concurrency, side.op, WARM_OPS + round * chunk);
      await pause(100);
      total.cpu += (await cpuOf(side.probe)) - server;
      total.azurite += (await cpuOf(azuriteProbe)) - azurite;
      total.seconds += seconds;
      total.latencies.push(...latencies);
    }
  }
  const [app, floor] = totals.map((total): Side => {
    const latencies = total.latencies.sort((a, b) => a - b);
    const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
    const ops = latencies.length;
    return {
      ops,
      seconds: total.seconds,
      opsPerSecond: ops / total.seconds,
      p50: at(50),
      p99: at(99),
      cpuUsPerOp: total.cpu / ops,
      azuriteUsPerOp: total.azurite / ops,
    };
  }) as [Side, Side];
  return [app, floor];
}

interface Row {
  operation: string;
  c: number;
  app: Side;
  floor: Side;
  /** app CPU / floor CPU per operation. */
  ratio: number;
}

/** Storage requests of one call, as the proxy saw them: how many, and their kinds. */
async function requestsOf(proxy: FaultProxy, action: () => Promise<void>): Promise<{ count: number; kinds: string[] }> {
  proxy.resetSeen();
  await action();
  const kind = (request: SeenRequest) =>
    isBatch(request)
      ? 'batch'
      : request.path.endsWith('()')
        ? 'query'
        : `${request.method} ${request.path.includes('(') ? 'entity' : 'table'}`;
  return { count: proxy.seen.length, kinds: proxy.seen.map(kind).sort() };
}

// ---------------------------------------------------------------------------------------------------
// Cold start.

function importMs(file: string, runs = 9): number {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const result = spawnSync(
      process.execPath,
      [
        '-e',
        `const t=process.hrtime.bigint();require(${JSON.stringify(file)});console.log(Number(process.hrtime.bigint()-t)/1e6)`,
      ],
      { encoding: 'utf8' },
    );
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
      contents:
        "import { app } from '@azure/functions';\napp.http('hello', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ body: 'hello' }) });",
      resolveDir: root,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@azure/functions-core'],
    outfile: hello,
    minify: true,
    logLevel: 'warning',
  });
  const helloTables = join(root, 'bench', 'hello', 'tables.js');
  await build({
    stdin: {
      contents:
        "import { app } from '@azure/functions';\nimport { TableClient } from '@azure/data-tables';\n" +
        "app.http('hello', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ jsonBody: await TableClient.fromConnectionString(process.env.C ?? '', 't').getEntity('p', 'r') }) });",
      resolveDir: root,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@azure/functions-core'],
    outfile: helloTables,
    minify: true,
    logLevel: 'warning',
  });
  const { statSync } = await import('node:fs');
  return {
    bundleMs: importMs(appBundle),
    helloMs: importMs(hello),
    helloTablesMs: importMs(helloTables),
    bundleBytes: statSync(appBundle).size,
  };
}

// ---------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const loadAtStart = loadavg();
  console.log(
    `bench: ${opsAt(1)} operations at concurrency 1, ${opsAt(16)} at 16, after ${WARM_OPS} not counted${quick ? ' (quick)' : ''}; load ${loadAtStart.map((load) => load.toFixed(2)).join(' ')}`,
  );
  const probes = { azurite: await freePort(), app: await freePort(), floor: await freePort() };
  const azurite = await startAzurite({ services: 'table', env: probeEnv(probes.azurite) });
  const stops: (() => unknown)[] = [() => azurite.stop()];
  process.on('exit', () => stops.forEach((stop) => stop()));
  const prefix = `bench${Date.now().toString(36)}`;
  const app: AppProcess = await startAppProcess({
    env: { DataTables__connectionString: azurite.connectionString, TABLE_NAME_PREFIX: prefix, ...probeEnv(probes.app) },
  });
  stops.push(() => app.stop());

  progress('preparing the app and the floor');
  const supplyOf = (concurrency: number) => WARM_OPS + ROUNDS * Math.ceil(opsAt(concurrency) / ROUNDS);
  const appFixtures = await prepareApp(app.baseUrl, supplyOf);
  const config = await floorConfig(azurite.connectionString, prefix, appFixtures, app.baseUrl);
  const floorFixtures = await prepareFloor(config, supplyOf);
  const floor = await startFloor(config, probeEnv(probes.floor));
  stops.push(() => floor.stop());
  const { reads, writes } = operations(app.baseUrl, appFixtures, floor.baseUrl, floorFixtures);

  // What each process uses doing nothing, over two seconds (timers, the probe's own answer).
  const idleBefore = {
    app: await cpuOf(probes.app),
    floor: await cpuOf(probes.floor),
    azurite: await cpuOf(probes.azurite),
  };
  await pause(2000);
  const idle = {
    app: (await cpuOf(probes.app)) - idleBefore.app,
    floor: (await cpuOf(probes.floor)) - idleBefore.floor,
    azurite: (await cpuOf(probes.azurite)) - idleBefore.azurite,
  };

  // Reads first, at both concurrencies, on small tables: Azurite scans a whole table for every query,
  // so the writes measured afterwards must not grow the tables the reads run against.
  const rows: Row[] = [];
  const measureRow = async (operation: string, concurrency: number, appOp: Op, floorOp: Op) => {
    progress(`${operation} at concurrency ${concurrency}`);
    const [app, floor] = await measure(probes.azurite, concurrency, [
      { probe: probes.app, op: appOp },
      { probe: probes.floor, op: floorOp },
    ]);
    rows.push({ operation, c: concurrency, app, floor, ratio: app.cpuUsPerOp / floor.cpuUsPerOp });
  };
  // No storage: the app's liveness route (anonymous, no storage) against the floor's bare answer.
  const health: Op = async () => {
    await call(`${app.baseUrl}/health`);
  };
  const ping: Op = async () => {
    await call(`${floor.baseUrl}/ping`);
  };
  for (const concurrency of CONCURRENCIES) await measureRow('no storage (app: GET /health)', concurrency, health, ping);
  const run = async (operations: Operation[]) => {
    for (const concurrency of CONCURRENCIES) {
      for (const operation of operations)
        await measureRow(operation.name, concurrency, operation.app(concurrency), operation.floor(concurrency));
    }
  };
  await run(reads);
  await run(writes);
  floor.stop();
  await app.stop();

  progress('counting storage requests per operation');
  // A second app and floor, on tables of their own, reach Azurite through a counting proxy.
  const proxy = await startFaultProxy(azurite.connectionString);
  const countPrefix = `count${Date.now().toString(36)}`;
  const countedApp = await startAppProcess({
    env: { DataTables__connectionString: proxy.connectionString, TABLE_NAME_PREFIX: countPrefix },
  });
  stops.push(() => countedApp.stop());
  const countedFixtures = await prepareApp(countedApp.baseUrl, () => 4);
  const countedConfig = await floorConfig(proxy.connectionString, countPrefix, countedFixtures, countedApp.baseUrl);
  const countedFloorFixtures = await prepareFloor(countedConfig, () => 4);
  const countedFloor = await startFloor(countedConfig);
  stops.push(() => countedFloor.stop());
  const counted = operations(countedApp.baseUrl, countedFixtures, countedFloor.baseUrl, countedFloorFixtures);
  const requests: Record<
    string,
    { app: number; floor?: number; sameKinds?: boolean; least: number; why: string; appKinds: string[] }
  > = {};
  for (const operation of [...counted.reads, ...counted.writes]) {
    // The first call warms what the app caches (the role catalog); the second is the one counted.
    // Grants and deletes take connections 0 and 1 of the supply of concurrency 1, both sides alike.
    await operation.app(1)(0, 0);
    await operation.floor(1)(0, 0);
    const appSeen = await requestsOf(proxy, () => operation.app(1)(0, 1));
    const floorSeen = await requestsOf(proxy, () => operation.floor(1)(0, 1));
    requests[operation.name] = {
      app: appSeen.count,
      floor: floorSeen.count,
      sameKinds: JSON.stringify(appSeen.kinds) === JSON.stringify(floorSeen.kinds),
      least: operation.least,
      why: operation.why,
      appKinds: appSeen.kinds,
    };
  }
  const viaOther = countedFixtures.own[1] as Made;
  const otherSeen = await requestsOf(proxy, async () => {
    await call(viaOther.otherUrl, {
      method: 'PATCH',
      headers: user,
      body: JSON.stringify({ description: 'through the other half' }),
    });
  });
  requests['update via the other half'] = {
    app: otherSeen.count,
    least: 4,
    why: 'as an update: the URL names the other half',
    appKinds: otherSeen.kinds,
  };
  countedFloor.stop();
  await countedApp.stop();

  // Scale, in process through the same proxy.
  progress('scale: one record with many connections');
  // Local Azurite, as npm start: skiptokens are sealed with the development key (read from the environment).
  process.env.LOCAL_DEVELOPMENT_MODE = 'true';
  const services: Services = createServices(
    readSettings({
      DataTables__connectionString: proxy.connectionString,
      TABLE_NAME_PREFIX: `scale${Date.now().toString(36)}`,
    }),
  );
  await services.ready();
  const me = { id: randomUUID(), teams: [], isAdmin: false };
  const boss = { ...me, isAdmin: true };
  const fresh = () =>
    createConnectionSchema.parse({
      record1id: randomUUID(),
      record1objecttypecode: 'account',
      record2id: randomUUID(),
      record2objecttypecode: 'contact',
    });
  const sample = (await services.connections.create(fresh(), me)).half;
  const scale: Record<string, string> = {};
  const bigHub = randomUUID();
  const bigCount = RECORD_CONNECTIONS;
  let made = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (made < bigCount) {
        made++;
        await services.connections.create(
          createConnectionSchema.parse({
            record1id: bigHub,
            record1objecttypecode: 'account',
            record2id: randomUUID(),
            record2objecttypecode: 'contact',
          }),
          me,
        );
      }
    }),
  );
  scale[`create ${bigCount} connections of one record (16 parallel)`] =
    `${((performance.now() - started) / 1000).toFixed(1)} s`;
  proxy.resetSeen();
  let listed = 0;
  let skiptoken: string | undefined;
  const listStart = performance.now();
  do {
    const page = await services.connections.list({ recordId: bigHub }, me, {
      top: 1000,
      ...(skiptoken && { skiptoken }),
    });
    listed += page.items.length;
    skiptoken = page.skiptoken;
  } while (skiptoken);
  scale[`list ${listed} connections, pages of 1000`] =
    `${((performance.now() - listStart) / 1000).toFixed(2)} s, ${proxy.seen.length} storage requests`;
  proxy.resetSeen();
  const cascadeStart = performance.now();
  const deleted = await services.connections.deleteAllOf(bigHub, boss);
  scale[`cascade delete ${deleted} connections`] =
    `${((performance.now() - cascadeStart) / 1000).toFixed(1)} s, ${proxy.seen.length} storage requests`;

  progress(`scale: writing ${INDEX_ENTRIES} role index entries`);
  // Role query among many index entries of which 20 match: entries written straight into the index
  // table in the app's layout, since making 100,000 connections through the API would take long.
  const indexTable = services.tables.roleIndex;
  const crowd = randomUUID();
  const target = randomUUID();
  const entries = INDEX_ENTRIES;
  const fillStart = performance.now();
  const batches: TransactionAction[][] = [];
  for (let offset = 0; offset < entries - 20; offset += 100) {
    batches.push(
      Array.from({ length: Math.min(100, entries - 20 - offset) }, (): TransactionAction => {
        const half = { ...sample, record1id: randomUUID(), connectionid: randomUUID(), record1roleid: crowd };
        return ['create', toEntity({ half, tombstone: false, lastop: '', indexed: [] }, crowd, indexRowKey(half))];
      }),
    );
  }
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < batches.length) await indexTable.submitTransaction(batches[next++] as TransactionAction[]);
    }),
  );
  for (let index = 0; index < 20; index++) {
    const half = {
      ...sample,
      record1id: randomUUID(),
      connectionid: randomUUID(),
      record1roleid: target,
      ownerid: me.id,
    };
    await indexTable.createEntity(
      toEntity({ half, tombstone: false, lastop: '', indexed: [] }, target, indexRowKey(half)),
    );
  }
  scale[`write ${entries} index entries`] = `${((performance.now() - fillStart) / 1000).toFixed(1)} s`;
  proxy.resetSeen();
  const roleStart = performance.now();
  const found = await services.connections.listByRole({ roleid: target }, me, { top: 100 });
  scale[`role query among ${entries} entries, ${found.items.length} match`] =
    `${(performance.now() - roleStart).toFixed(0)} ms, ${proxy.seen.length} storage request(s)`;
  const scaleRequestsOk = proxy.seen.length === 1 && found.items.length === 20;

  await proxy.close();
  await azurite.stop();

  progress('cold start');
  const cold = await coldStart();
  const loadAtEnd = loadavg();

  // Report.
  const fmt = (value: number, digits = 0) => value.toFixed(digits);
  const pair = (side: Side) => `${fmt(side.p50, 1)} / ${fmt(side.p99, 1)}`;
  const lines = [
    '| operation | c | app CPU µs/op | floor CPU µs/op | app / floor | app − floor µs/op | Azurite CPU µs/op (app / floor) | app ops/s | app p50 / p99 ms | floor ops/s | floor p50 / p99 ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| ${row.operation} | ${row.c} | ${fmt(row.app.cpuUsPerOp)} | ${fmt(row.floor.cpuUsPerOp)} | ${fmt(row.ratio, 2)}x | ${fmt(row.app.cpuUsPerOp - row.floor.cpuUsPerOp)} | ${fmt(row.app.azuriteUsPerOp)} / ${fmt(row.floor.azuriteUsPerOp)} | ${fmt(row.app.opsPerSecond)} | ${pair(row.app)} | ${fmt(row.floor.opsPerSecond)} | ${pair(row.floor)} |`,
    ),
  ];
  const requestLines = [
    '| operation | app | floor | least | why the least |',
    '|---|---|---|---|---|',
    ...Object.entries(requests).map(
      ([name, counts]) =>
        `| ${name} | ${counts.app} | ${counts.floor ?? ''}${counts.sameKinds === false ? ' (other kinds)' : ''} | ${counts.least} | ${counts.why} |`,
    ),
  ];
  const checks: string[] = [];
  for (const [name, counts] of Object.entries(requests)) {
    checks.push(
      `${name}: ${counts.app} storage requests, least ${counts.least}: ${counts.app === counts.least ? 'met' : 'MISSED'}`,
    );
    if (counts.floor !== undefined) {
      checks.push(
        `${name}: the floor makes the same requests (${counts.floor}, same kinds): ${counts.floor === counts.app && counts.sameKinds ? 'yes' : 'NO'}`,
      );
    }
  }
  checks.push(
    `role query among ${entries} entries reads only the answer (1 request): ${scaleRequestsOk ? 'met' : 'MISSED'}`,
  );
  const coldRatio = cold.bundleMs / cold.helloMs;
  checks.push(
    `cold start: bundle import ${fmt(cold.bundleMs, 1)} ms vs hello world ${fmt(cold.helloMs, 1)} ms = ${fmt(coldRatio, 2)}x (target <= 2x): ${coldRatio <= 2 ? 'met' : 'MISSED'}`,
  );
  checks.push(
    `cold start against a hello world that reads a table (${fmt(cold.helloTablesMs, 1)} ms): ${fmt(cold.bundleMs / cold.helloTablesMs, 2)}x`,
  );
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, Azurite in memory`;
  const loads = (load: number[]) => load.map((value) => value.toFixed(2)).join(' ');
  const markdown = [
    `Machine: ${machine}; load average ${loads(loadAtStart)} at the start, ${loads(loadAtEnd)} at the end; run ${new Date().toISOString()}.`,
    `CPU per operation: user + system time of the whole process (process.cpuUsage, read by a probe before and after), over ${opsAt(1)} operations at c=1 and ${opsAt(16)} at c=16, each after ${WARM_OPS} not counted. ` +
      `Idle over 2 s: app ${fmt(idle.app / 1000, 1)} ms, floor ${fmt(idle.floor / 1000, 1)} ms, Azurite ${fmt(idle.azurite / 1000, 1)} ms.`,
    '',
    ...lines,
    '',
    'Storage requests per operation (counted by a proxy in front of Azurite, one call after a first):',
    '',
    ...requestLines,
    '',
    '| scale | result |',
    '|---|---|',
    ...Object.entries(scale).map(([name, result]) => `| ${name} | ${result} |`),
    `| deployable bundle | ${(cold.bundleBytes / 1024).toFixed(0)} KiB, import ${fmt(cold.bundleMs, 1)} ms (hello world ${fmt(cold.helloMs, 1)} ms; hello world reading a table ${fmt(cold.helloTablesMs, 1)} ms) |`,
    '',
    'Checks:',
    ...checks.map((check) => `- ${check}`),
  ].join('\n');
  console.log(`\n${markdown}\n`);
  const folder = join(root, 'bench', 'results');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'latest.md'), `${markdown}\n`);
  writeFileSync(
    join(folder, 'latest.json'),
    `${JSON.stringify(
      {
        machine,
        loadAtStart,
        loadAtEnd,
        opsPerMeasurement: { 1: opsAt(1), 16: opsAt(16) },
        warmOps: WARM_OPS,
        idleCpuUsOver2s: idle,
        rows,
        requests,
        scale,
        cold,
        checks,
      },
      null,
      2,
    )}\n`,
  );
  console.log(
    `Wrote ${readdirSync(folder)
      .map((file) => join('bench/results', file))
      .join(', ')}`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
