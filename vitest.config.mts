import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/globalSetup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Skiptokens are sealed with a key from the settings (the environment); tests use this fixed one,
    // and tests of rotation set their own.
    env: { SKIPTOKEN_KEYS: 'cmVjb3JkLWNvbm5lY3Rpb25zIHRlc3RzIG9ubHk6IGEgZml4ZWQga2V5LCBub3QgYSBzZWNyZXQ=' },
  },
});
