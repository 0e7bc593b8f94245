import { TableClient } from '@azure/data-tables';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { Caller } from '../../shared/domain/caller';
import { readSettings, type Settings } from '../../shared/config/settings';

export const uniqueTableName = (prefix = 't'): string => `${prefix}${randomBytes(6).toString('hex')}`;

export function testSettings(overrides: Record<string, string> = {}): Settings {
  return readSettings({
    DataTables__connectionString: inject('azuriteConnectionString'),
    TABLE_NAME_PREFIX: uniqueTableName(),
    LOCAL_DEVELOPMENT_MODE: 'true',
    ...overrides,
  });
}

/** Counts the requests a client sends to storage: what the wire sees, retries included. */
export interface RequestCounter {
  count: number;
  requests: string[];
  reset: () => void;
}

export function countRequests(client: TableClient): RequestCounter {
  const counter: RequestCounter = {
    count: 0,
    requests: [],
    reset: () => {
      counter.count = 0;
      counter.requests = [];
    },
  };
  const policy: Parameters<TableClient['pipeline']['addPolicy']>[0] = {
    name: 'countRequests',
    sendRequest: (request, next) => {
      counter.count++;
      counter.requests.push(`${request.method} ${decodeURIComponent(new URL(request.url).pathname)}`);
      return next(request);
    },
  };
  client.pipeline.addPolicy(policy, { afterPhase: 'Retry' });
  return counter;
}

export const alice: Caller = { id: 'a11ce000-0000-4000-8000-000000000001', teams: [], isAdmin: false };
export const bob: Caller = { id: 'b0b00000-0000-4000-8000-000000000002', teams: [], isAdmin: false };
