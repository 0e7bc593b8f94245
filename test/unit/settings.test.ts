import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appSettingNames, readSettings } from '../../shared/settings';

describe('settings', () => {
  it('local.settings.sample.json lists every setting the app reads', () => {
    const sample = JSON.parse(readFileSync(join(__dirname, '..', '..', 'local.settings.sample.json'), 'utf8')) as { Values: Record<string, string> };
    for (const name of appSettingNames) expect(Object.keys(sample.Values)).toContain(name);
    expect(readSettings(sample.Values)).toMatchObject({ LOCAL_DEVELOPMENT_MODE: true, OBJECT_TYPE_PROFILE: 'base', TABLE_NAME_PREFIX: '' });
  });

  it('refuses a table name or profile storage would not accept', () => {
    expect(() => readSettings({ TABLE_NAME_PREFIX: 'no-dashes' })).toThrow(/TABLE_NAME_PREFIX/);
    expect(() => readSettings({ OBJECT_TYPE_PROFILE: 'marketing' })).toThrow(/OBJECT_TYPE_PROFILE/);
  });

  it('treats empty values as unset and only "true" as on', () => {
    const settings = readSettings({ DataTables__tableServiceUri: ' ', LOCAL_DEVELOPMENT_MODE: 'yes', WEBSITE_AUTH_ENABLED: 'True' });
    expect(settings.DataTables__tableServiceUri).toBeUndefined();
    expect(settings.LOCAL_DEVELOPMENT_MODE).toBe(false);
    expect(settings.WEBSITE_AUTH_ENABLED).toBe(true);
  });
});
