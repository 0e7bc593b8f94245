import type { TestProject } from 'vitest/node';
import { startAzurite } from '../../dev/local/azurite';

declare module 'vitest' {
  export interface ProvidedContext {
    azuriteConnectionString: string;
  }
}

/** One real Azurite for the whole run (in memory, loopback, free port); each test file uses its own tables. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const azurite = await startAzurite({ services: 'table' });
  project.provide('azuriteConnectionString', azurite.connectionString);
  return azurite.stop;
}
