// The import rules the layout depends on (npm run lint runs them): the store never imports the
// handler side (delivery), the HubEx client imports nothing of the app, and nothing imports in a
// circle. Routes and the command line use the app, never the reverse.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'No module reaches itself again through its imports.',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'store-not-delivery',
      severity: 'error',
      comment: 'The store is told the handlers of an event and given the function that runs a delivery: it never imports delivery.',
      from: { path: '^src/store/' },
      to: { path: '^src/delivery/' },
    },
    {
      name: 'hubex-stands-alone',
      severity: 'error',
      comment: 'hubex-router/hubex is usable by itself: src/hubex imports nothing of the app.',
      from: { path: '^src/hubex/' },
      to: { path: '^(src|routes|handlers)/', pathNot: '^src/hubex/' },
    },
    {
      name: 'app-not-routes-or-cli',
      severity: 'error',
      comment: 'Routes and the command line use the app; the app (but its factory, server.ts, and main.ts) never imports them.',
      from: { path: '^src/', pathNot: '^src/(server|main)\\.ts$|^src/cli/' },
      to: { path: '^routes/|^src/cli/' },
    },
    {
      name: 'no-app-imports-tests',
      severity: 'error',
      from: { path: '^(src|routes|handlers)/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/hubex/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
