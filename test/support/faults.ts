import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, inject } from 'vitest';
import { createConnectionSchema } from '../../shared/domain/connection';
import type { DomainError } from '../../shared/domain/errors';
import { createServices, type Services } from '../../shared/useCases/services';
import { readSettings } from '../../shared/config/settings';
import { asDomainError } from '../../shared/storage/storageErrors';
import { type FaultProxy, type SeenRequest, startFaultProxy, touchesPartition } from '../../dev/load/faultProxy';
import { uniqueTableName } from './storage';

// The SDK retries a failed request three times: four failures in a row make a failure stick.
export const STICKY = 4;

/**
 * The app's services talking to Azurite through a fault proxy, with tables of their own, for one test
 * file: after each case the proxy is cleared, the repair job runs, and the checker must find nothing
 * (whatever a case broke, the repair job restores it).
 */
export function behindFaultProxy(): { readonly proxy: FaultProxy; readonly services: Services } {
  let proxy: FaultProxy | undefined;
  let services: Services | undefined;
  beforeAll(async () => ({ proxy, services } = await servicesBehindProxy()));
  afterEach(async () => {
    proxy?.clear();
    if (!services) return;
    await services.consistency.walk({ repair: true, graceMs: 0 });
    expect((await services.consistency.walk({ repair: false, graceMs: 0 })).violations).toEqual([]);
  });
  afterAll(async () => proxy?.close());
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the fault proxy is not started yet');
    return value;
  };
  return {
    get proxy() {
      return need(proxy);
    },
    get services() {
      return need(services);
    },
  };
}

/** The app's services talking to Azurite through a fault proxy, with tables of their own. */
export async function servicesBehindProxy(): Promise<{ proxy: FaultProxy; services: Services }> {
  const proxy = await startFaultProxy(inject('azuriteConnectionString'));
  const services = createServices(
    readSettings({
      DataTables__connectionString: proxy.connectionString,
      TABLE_NAME_PREFIX: uniqueTableName('faults'),
    }),
  );
  await services.ready();
  return { proxy, services };
}

/** Two record ids, the first lower: the first record's partition holds the authoritative half. */
export function recordPair(): [string, string] {
  const [low, high] = [randomUUID(), randomUUID()].sort();
  return [low as string, high as string];
}

export const createInput = (body: Record<string, unknown> = {}) =>
  createConnectionSchema.parse({
    record1id: randomUUID(),
    record1objecttypecode: 'account',
    record2id: randomUUID(),
    record2objecttypecode: 'contact',
    ...body,
  });

/** Any write (single or batch) that touches a partition. */
export const writesTo =
  (partitionKey: string) =>
  (request: SeenRequest): boolean =>
    request.method !== 'GET' && touchesPartition(partitionKey)(request);

/** Any write to a table. */
export const writesToTable =
  (table: string) =>
  (request: SeenRequest): boolean =>
    request.method !== 'GET' && request.path.includes(`/${table}`);

/** The 503 problem an action ends in (every storage failure is one); fails the test otherwise. */
export async function unavailable(action: Promise<unknown>): Promise<DomainError> {
  try {
    await action;
  } catch (error) {
    const mapped = asDomainError(error);
    if (mapped?.kind === 'unavailable') return mapped;
    throw error;
  }
  throw new Error('expected a 503');
}
