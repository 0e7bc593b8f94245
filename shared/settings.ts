import { z } from 'zod';

/**
 * Every setting the app reads, in one place. local.settings.sample.json lists the same names with
 * local (Azurite) values; a test keeps the two in step.
 */
const flag = z
  .string()
  .optional()
  .transform((value) => value?.trim().toLowerCase() === 'true');

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value && value.trim() !== '' ? value.trim() : undefined));

export const settingsSchema = z.object({
  /** Table service endpoint, e.g. https://<account>.table.core.windows.net; used with DefaultAzureCredential. */
  DataTables__tableServiceUri: optionalText,
  /** Client id of the user-assigned managed identity that reaches the tables (Azure only). */
  DataTables__clientId: optionalText,
  /** Connection string; only for Azurite. Ignored when DataTables__tableServiceUri is set. */
  DataTables__connectionString: optionalText,
  /**
   * Prefix of the app's table names: <prefix>Connections, <prefix>ConnectionRoles and
   * <prefix>ConnectionRoleIndex. Empty in production; tests use a fresh one per file.
   */
  TABLE_NAME_PREFIX: z
    .string()
    .optional()
    .transform((value) => value?.trim() ?? '')
    .pipe(z.string().regex(/^([A-Za-z][A-Za-z0-9]{0,29})?$/, 'a table name prefix is up to 30 letters and digits, starting with a letter')),
  /** Which solution's object type codes to use on top of the base codes: base, customerservice or sales. */
  OBJECT_TYPE_PROFILE: z
    .string()
    .optional()
    .transform((value) => (value && value.trim() !== '' ? value.trim().toLowerCase() : 'base'))
    .pipe(z.enum(['base', 'customerservice', 'sales'])),
  /** The organisation's own types, as "code:logicalname" pairs separated by commas. */
  CUSTOM_OBJECT_TYPES: optionalText,
  /**
   * Trust a hand-made x-ms-client-principal header. Only for local development and tests: in Azure,
   * App Service Authentication (WEBSITE_AUTH_ENABLED, set by the platform) is what makes it trustworthy.
   */
  LOCAL_DEVELOPMENT_MODE: flag,
  /** Set by App Service when App Service Authentication is on; never set by hand. */
  WEBSITE_AUTH_ENABLED: flag,
});

export type Settings = z.infer<typeof settingsSchema>;

export const tableNames = (settings: Pick<Settings, 'TABLE_NAME_PREFIX'>) => ({
  connections: `${settings.TABLE_NAME_PREFIX}Connections`,
  roles: `${settings.TABLE_NAME_PREFIX}ConnectionRoles`,
  roleIndex: `${settings.TABLE_NAME_PREFIX}ConnectionRoleIndex`,
});

/** Names read from the environment by the app itself (platform-provided ones excluded). */
export const appSettingNames = Object.keys(settingsSchema.shape).filter((name) => name !== 'WEBSITE_AUTH_ENABLED');

/** Settings for local development only: a deployment in Azure never sets them. */
export const localOnlySettings = ['DataTables__connectionString', 'LOCAL_DEVELOPMENT_MODE'];

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const parsed = settingsSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new Error(`Invalid app settings: ${problems}`);
  }
  return parsed.data;
}
