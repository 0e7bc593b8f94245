import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Loads every function module of a folder, as the Functions host does with package.json's
 * "main": "dist/functions/*.js"; each module registers its routes when loaded.
 */
export async function loadFunctions(directory: string): Promise<void> {
  const files = readdirSync(directory)
    .filter((file) => /\.(js|ts)$/.test(file) && !file.endsWith('.d.ts'))
    .sort();
  for (const file of files) await import(pathToFileURL(join(directory, file)).href);
}
