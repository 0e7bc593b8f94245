// Lint: typescript-eslint's recommended rules, with type information, over the app, its dev tooling and
// its tests, and the recommended JavaScript rules over the explorer's browser scripts and the configs.
// Layout is prettier's job (.prettierrc.json), so no style rules here; the layers are dependency-cruiser's
// (.dependency-cruiser.cjs). `npm run lint` runs all three.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // Built, generated, recorded and vendored files (as in .prettierignore and .gitignore).
    ignores: ['dist/', 'deploy/', 'coverage/', 'bench/results/', 'bench/hello/', 'infra/', 'test/output/', '.tools/'],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    // One program for everything tsc checks (tsconfig.test.json covers functions, shared, dev and test).
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    files: ['**/*.ts', '**/*.mts'],
    languageOptions: { globals: globals.node },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // A leading underscore names what is dropped on purpose (a destructured field left out of a view, a
      // parameter an interface imposes); the rest of an object destructured without a field is a copy.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Off: here `async` without `await` implements an async interface (the route handlers, the in-memory
      // TablePort of the simulation, test fakes), and it is what turns a synchronous throw into a rejection
      // that the callers catch. Removing it would change where errors surface.
      '@typescript-eslint/require-await': 'off',
      // A closure made before the value exists (the local host's observer, set up before its checker) reads
      // it later; `let` says so.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },
  {
    // Tests read JSON answers and documents freely (`body.value[0].connectionid`) through one declared
    // loose type (test/support/json.ts), and check them with expect(); every answer of an HTTP test is also
    // checked against the served API definition (test/support/contract.ts). The no-unsafe-* rules would
    // demand a cast at each of those reads, which adds noise and no safety.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    // The browser scripts and the configs are plain JavaScript, outside the TypeScript program.
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['explorer/**/*.js'],
    // cytoscape, loaded by index.html, is declared where it is used (explorer.js: /* global cytoscape */).
    languageOptions: { sourceType: 'module', globals: globals.browser },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
