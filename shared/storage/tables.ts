import { TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import type {
  AccessToken,
  DefaultAzureCredentialClientIdOptions,
  GetTokenOptions,
  TokenCredential,
} from '@azure/identity';
import type { Settings } from '../config/settings';
import { asStorageError } from './azureTable';

// Storage throttling (503) and transient faults are retried by the SDK's policy with exponential
// back-off; bounded, so a request never waits on storage for more than a few seconds in total.
const clientOptions: TableServiceClientOptions = {
  retryOptions: { maxRetries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000 },
};

// Each try is bounded too (30 s), so no request outlives the function timeout and, with it, the grace
// period the repair job keeps tombstones for (see docs/protocol.md, "Known limits").
const TRY_TIMEOUT_MS = 30_000;
const tryTimeout: Parameters<TableClient['pipeline']['addPolicy']>[0] = {
  name: 'tryTimeout',
  sendRequest: (request, next) => {
    request.timeout = TRY_TIMEOUT_MS;
    return next(request);
  },
};

function bounded(client: TableClient): TableClient {
  client.pipeline.addPolicy(tryTimeout);
  return client;
}

/**
 * DefaultAzureCredential, loaded on the first token request: @azure/identity (with MSAL) is the
 * largest part of the app and is not needed to start it, so loading it late shortens cold starts.
 */
class LazyDefaultAzureCredential implements TokenCredential {
  private inner: TokenCredential | undefined;

  constructor(private readonly options: DefaultAzureCredentialClientIdOptions) {}

  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null> {
    if (!this.inner) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, synchronously, to keep it off the cold start (above)
      const identity = require('@azure/identity') as typeof import('@azure/identity');
      this.inner = new identity.DefaultAzureCredential(this.options);
    }
    return this.inner.getToken(scopes, options);
  }
}

let credential: TokenCredential | undefined;

/**
 * In Azure the app reaches the tables with its managed identity (no keys); a connection string is only
 * accepted for Azurite, where there is no Entra ID to ask.
 */
export function createTableClient(settings: Settings, tableName: string): TableClient {
  if (settings.DataTables__tableServiceUri) {
    credential ??= new LazyDefaultAzureCredential(
      settings.DataTables__clientId ? { managedIdentityClientId: settings.DataTables__clientId } : {},
    );
    return bounded(new TableClient(settings.DataTables__tableServiceUri, tableName, credential, clientOptions));
  }
  if (settings.DataTables__connectionString) {
    return bounded(
      TableClient.fromConnectionString(settings.DataTables__connectionString, tableName, {
        ...clientOptions,
        allowInsecureConnection: settings.DataTables__connectionString.includes('http://'),
      }),
    );
  }
  throw new Error(
    'No table storage configured: set DataTables__tableServiceUri (Azure) or DataTables__connectionString (Azurite).',
  );
}

/** Creates the table if it does not exist (the SDK treats "already exists" as success). */
export async function ensureTable(client: TableClient): Promise<void> {
  try {
    await client.createTable();
  } catch (error) {
    throw asStorageError(error);
  }
}
