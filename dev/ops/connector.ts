import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { routes } from '../../shared/api/route';
import { buildApiProperties, buildSwagger } from '../../shared/api/openApi';
import { loadFunctions } from '../../shared/hosts/nodeHttp/loadFunctions';

/**
 * `npm run connector [-- --host <app>.azurewebsites.net --client-id <id> --resource-uri api://<id>]`
 * writes the Power Automate custom connector (apiDefinition.swagger.json and apiProperties.json) into
 * infra/connector/, ready for `paconn create`/`update` or the maker portal's import.
 */
function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

async function main(): Promise<void> {
  await loadFunctions(join(__dirname, '..', '..', 'functions'));
  const host = option('host', process.env.CONNECTOR_HOST ?? 'record-connections.azurewebsites.net');
  const clientId = option('client-id', process.env.CONNECTOR_CLIENT_ID ?? '00000000-0000-0000-0000-000000000000');
  const resourceUri = option(
    'resource-uri',
    process.env.CONNECTOR_RESOURCE_URI ?? 'api://00000000-0000-0000-0000-000000000000',
  );
  const folder = join(__dirname, '..', '..', '..', 'infra', 'connector');
  mkdirSync(folder, { recursive: true });
  writeFileSync(
    join(folder, 'apiDefinition.swagger.json'),
    `${JSON.stringify(buildSwagger(routes, { host }), null, 2)}\n`,
  );
  writeFileSync(
    join(folder, 'apiProperties.json'),
    `${JSON.stringify(buildApiProperties(routes, { clientId, resourceUri }), null, 2)}\n`,
  );
  console.log(`Wrote ${folder}/apiDefinition.swagger.json and apiProperties.json for https://${host}/api`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
