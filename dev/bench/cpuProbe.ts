import { createServer } from 'node:http';

/**
 * Loaded into a process with `node --require dist/dev/bench/cpuProbe.js` (NODE_OPTIONS): when
 * CPU_PROBE_PORT is set, answers GET http://127.0.0.1:<port>/ with the CPU time the whole process has
 * used so far (process.cpuUsage: user and system microseconds, every thread, exited ones included).
 * The bench reads it before and after a fixed number of operations, so the app, the floor and Azurite
 * are measured the same way without a line of their own code changing. Its own answer costs some tens
 * of microseconds, twice per measurement of hundreds of operations.
 */
const port = Number(process.env.CPU_PROBE_PORT ?? '');
if (Number.isInteger(port) && port > 0) {
  const server = createServer((_request, response) => {
    const { user, system } = process.cpuUsage();
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ pid: process.pid, user, system }));
  });
  // A child of the process inherits NODE_OPTIONS and finds the port taken: it goes without a probe.
  server.on('error', () => undefined);
  server.listen(port, '127.0.0.1');
  server.unref(); // never what keeps a process alive
}
