import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appSettingNames, readSettings, skipTokenKeys } from '../../shared/config/settings';

describe('settings', () => {
  it('local.settings.sample.json lists every setting the app reads', () => {
    const sample = JSON.parse(readFileSync(join(__dirname, '..', '..', 'local.settings.sample.json'), 'utf8')) as {
      Values: Record<string, string>;
    };
    for (const name of appSettingNames) expect(Object.keys(sample.Values)).toContain(name);
    expect(readSettings(sample.Values)).toMatchObject({
      LOCAL_DEVELOPMENT_MODE: true,
      OBJECT_TYPE_PROFILE: 'base',
      TABLE_NAME_PREFIX: '',
    });
  });

  it('refuses a table name or profile storage would not accept', () => {
    expect(() => readSettings({ TABLE_NAME_PREFIX: 'no-dashes' })).toThrow(/TABLE_NAME_PREFIX/);
    expect(() => readSettings({ OBJECT_TYPE_PROFILE: 'marketing' })).toThrow(/OBJECT_TYPE_PROFILE/);
  });

  it('treats empty values as unset and only "true" as on', () => {
    const settings = readSettings({
      DataTables__tableServiceUri: ' ',
      LOCAL_DEVELOPMENT_MODE: 'yes',
      WEBSITE_AUTH_ENABLED: 'True',
    });
    expect(settings.DataTables__tableServiceUri).toBeUndefined();
    expect(settings.LOCAL_DEVELOPMENT_MODE).toBe(false);
    expect(settings.WEBSITE_AUTH_ENABLED).toBe(true);
  });

  it('takes skiptoken keys as base64 of at least 32 bytes, the first one signing, and needs one outside local development mode', () => {
    const [first, second] = [Buffer.alloc(32, 1).toString('base64'), Buffer.alloc(48, 2).toString('base64url')];
    const settings = readSettings({ SKIPTOKEN_KEYS: ` ${first}, ${second} ` });
    expect(skipTokenKeys(settings)).toEqual([Buffer.alloc(32, 1), Buffer.alloc(48, 2)]);
    expect(() => readSettings({ SKIPTOKEN_KEYS: Buffer.alloc(16).toString('base64') })).toThrow(/SKIPTOKEN_KEYS/);
    expect(() => readSettings({ SKIPTOKEN_KEYS: 'not base64 at all, not even close!!!!!!!!!!!!!!!' })).toThrow(
      /SKIPTOKEN_KEYS/,
    );
    expect(() => skipTokenKeys(readSettings({}))).toThrow(/SKIPTOKEN_KEYS is not set/);
    expect(skipTokenKeys(readSettings({ LOCAL_DEVELOPMENT_MODE: 'true' }))).toHaveLength(1);
  });
});
