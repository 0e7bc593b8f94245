import { createRequire } from 'node:module';

/**
 * Whether this process runs inside the Azure Functions worker, which provides `@azure/functions-core`.
 * Outside it (the local host, tests, commands) `app.http`/`app.timer` would only warn that they register
 * nothing, so registration is skipped there.
 */
export const insideFunctionsHost = ((): boolean => {
  try {
    createRequire(__filename)('@azure/functions-core');
    return true;
  } catch {
    return false;
  }
})();
