import { createServices } from '../../shared/useCases/services';
import { readSettings } from '../../shared/config/settings';

/**
 * `npm run check` walks the tables and reports every violation of the pair invariant;
 * `npm run check -- --repair` also repairs them. Point it at Azurite or a real account with the same
 * settings the app uses (DataTables__connectionString, or DataTables__tableServiceUri and a credential
 * DefaultAzureCredential can find, such as `az login`).
 */
const args = process.argv.slice(2);
const repair = args.includes('--repair');
const graceIndex = args.indexOf('--grace');
const graceSeconds = graceIndex >= 0 ? Number(args[graceIndex + 1]) : 3600;

async function main(): Promise<number> {
  const settings = readSettings();
  if (!settings.DataTables__tableServiceUri && !settings.DataTables__connectionString) {
    console.error(
      'Set DataTables__connectionString (Azurite: npm start prints it) or DataTables__tableServiceUri (Azure).',
    );
    return 2;
  }
  if (!Number.isFinite(graceSeconds) || graceSeconds < 0) {
    console.error('--grace takes a number of seconds (tombstones younger than that are kept; default 3600).');
    return 2;
  }
  const services = createServices(settings);
  await services.ready();
  const result = await services.consistency.walk({ repair, graceMs: graceSeconds * 1000 });
  for (const violation of result.violations) {
    console.log(
      `${violation.kind}\t${violation.table}\t${violation.partitionKey}\t${violation.rowKey}\t${violation.detail}`,
    );
  }
  console.log(
    `${result.scanned} rows checked, ${result.violations.length} violation(s)` +
      (repair ? `, ${result.repaired} repaired, ${result.purged} purged` : '') +
      (result.failed ? `, ${result.failed} row(s) not checked (storage failed)` : '') +
      (result.skippedRecent ? `, ${result.skippedRecent} tombstone(s) younger than ${graceSeconds}s kept` : ''),
  );
  return result.violations.length > 0 && !repair ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
