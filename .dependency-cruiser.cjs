// The direction of the layers (docs/architecture.md): each folder of shared/ may import only the layers
// below it, and no product code imports dev tooling. `npm test` runs this (npm run lint:layers).
const layer = (name) => `^shared/${name}/`;
const notIn = (...names) => `^shared/(${names.join('|')})/`;

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'A cycle means two modules share a concept that has no home of its own: give it one.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'domain-is-pure',
      comment: 'Dataverse rules and types import no other layer (no storage, no protocol, no HTTP).',
      severity: 'error',
      from: { path: layer('domain') },
      to: { path: notIn('api', 'hosts', 'useCases', 'protocol', 'storage', 'config') },
    },
    {
      name: 'config-is-a-leaf',
      comment: 'Settings are read from the environment and import no layer.',
      severity: 'error',
      from: { path: layer('config') },
      to: { path: notIn('api', 'hosts', 'useCases', 'protocol', 'storage', 'domain') },
    },
    {
      name: 'storage-knows-only-the-domain',
      comment:
        'Storage is the port, the Azure adapter, key layouts and entity mapping: it may use the domain types and nothing above it.',
      severity: 'error',
      from: { path: layer('storage') },
      to: { path: notIn('api', 'hosts', 'useCases', 'protocol') },
    },
    {
      name: 'protocol-below-use-cases',
      comment: 'The write protocol knows storage and the domain, never the use cases, the API or a host.',
      severity: 'error',
      from: { path: layer('protocol') },
      to: { path: notIn('api', 'hosts', 'useCases') },
    },
    {
      name: 'use-cases-below-the-api',
      comment: 'Use cases know nothing of HTTP or of the runtime that hosts them.',
      severity: 'error',
      from: { path: layer('useCases') },
      to: { path: notIn('api', 'hosts') },
    },
    {
      name: 'api-knows-no-runtime',
      comment: 'The route table knows no runtime: the hosts adapt it, not the other way round.',
      severity: 'error',
      from: { path: layer('api') },
      to: { path: notIn('hosts') },
    },
    {
      name: 'product-never-imports-dev-tooling',
      comment: 'shared/ and functions/ are what is deployed: the simulator, load, bench and ops tools are not.',
      severity: 'error',
      from: { path: '^(shared|functions)/' },
      to: { path: '^(dev|test)/' },
    },
    {
      name: 'functions-are-entry-points',
      comment: 'Nothing imports a function module; hosts load them (package.json main, loadFunctions).',
      severity: 'error',
      from: { pathNot: '^functions/' },
      to: { path: '^functions/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^(shared|functions|dev|test)/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
