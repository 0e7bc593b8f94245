import { join } from 'node:path';
import { failStartup, portFromArguments, serveOnPort } from './appServer';
import { loadFunctions } from '../../shared/hosts/nodeHttp/loadFunctions';

/**
 * `node dist/dev/local/serve.js --port N`: the compiled app as a process of its own, for the soak and for
 * anyone who wants to kill it. Settings come from the environment (DataTables__connectionString,
 * TABLE_NAME_PREFIX, LOCAL_DEVELOPMENT_MODE, ...); prints one line when it listens.
 */
loadFunctions(join(__dirname, '..', '..', 'functions'))
  .then(() => serveOnPort(portFromArguments()))
  .catch(failStartup);
