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

const MIN_KEY_BYTES = 32;
const isKey = (value: string): boolean =>
  /^[A-Za-z0-9+/_-]+={0,2}$/.test(value) && Buffer.from(value, 'base64').length >= MIN_KEY_BYTES;

/** A comma-separated list of base64 keys, each of at least 32 bytes; empty means none. */
const keyList = z
  .string()
  .optional()
  .transform((value) =>
    (value ?? '')
      .split(',')
      .map((key) => key.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().refine(isKey, `each key is base64 of at least ${MIN_KEY_BYTES} random bytes`)));

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
    .pipe(
      z
        .string()
        .regex(
          /^([A-Za-z][A-Za-z0-9]{0,29})?$/,
          'a table name prefix is up to 30 letters and digits, starting with a letter',
        ),
    ),
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
  /**
   * Keys that protect skiptokens (base64, at least 32 random bytes each, separated by commas): the first
   * signs new tokens, every one is accepted, so a new key goes first and the old one stays listed until
   * the nextLinks it signed are no longer in use. Empty in local development mode only, where a fixed
   * development key is used instead.
   */
  SKIPTOKEN_KEYS: keyList,
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

/**
 * The skiptoken keys to use, first one signing: SKIPTOKEN_KEYS, or in local development mode without it
 * a fixed key that is public (it is in this file), which is only acceptable because local development
 * mode already trusts whatever principal a client claims. Anywhere else a missing key is a deployment
 * error: no token could be trusted.
 */
export function skipTokenKeys(settings: Pick<Settings, 'SKIPTOKEN_KEYS' | 'LOCAL_DEVELOPMENT_MODE'>): Buffer[] {
  if (settings.SKIPTOKEN_KEYS.length > 0) return settings.SKIPTOKEN_KEYS.map((key) => Buffer.from(key, 'base64'));
  if (settings.LOCAL_DEVELOPMENT_MODE) return [DEVELOPMENT_SKIPTOKEN_KEY];
  throw new Error(
    'SKIPTOKEN_KEYS is not set: skiptokens cannot be signed. Set it to a base64 key of at least 32 random bytes.',
  );
}

const DEVELOPMENT_SKIPTOKEN_KEY = Buffer.from('record-connections local development mode only: not a secret', 'utf8');
