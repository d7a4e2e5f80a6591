/**
 * The import rules of docs/architecture.md, as code: `npm run lint` (and so `npm test`) fails on
 * an arrow that should never exist. Each rule's comment says why it exists.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'workflow-sandbox',
      comment:
        'workflows/ runs in the deterministic sandbox: it may import @temporalio/workflow (and common), src/shared/ and ' +
        'other workflows; anything else only as `import type` (no pg, ioredis, config, Node APIs).',
      severity: 'error',
      from: { path: '^workflows/' },
      to: {
        dependencyTypesNot: ['type-only'],
        pathNot: ['^workflows/', '^src/shared/', '^node_modules/@temporalio/(workflow|common)/'],
      },
    },
    {
      name: 'teardown-is-a-plain-library',
      comment:
        'src/teardown/ must be testable alone and reusable: no Temporal package, and no config read ' +
        '(it receives its URLs and settings as arguments).',
      severity: 'error',
      from: { path: '^src/teardown/' },
      to: { path: ['^node_modules/@temporalio/', '^src/config\\.ts$'] },
    },
    {
      name: 'shared-is-pure',
      comment:
        'src/shared/ is bundled into the workflow sandbox and imported by clients: nothing outside ' +
        "src/shared/ but Temporal's sandbox-safe packages (types excepted).",
      severity: 'error',
      from: { path: '^src/shared/' },
      to: {
        dependencyTypesNot: ['type-only'],
        pathNot: ['^src/shared/', '^node_modules/@temporalio/(workflow|common)/'],
      },
    },
    {
      name: 'shared-no-node-builtins',
      comment: 'src/shared/ runs in the workflow sandbox, where Node built-ins do not exist.',
      severity: 'error',
      from: { path: '^src/shared/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'activities-not-workflows',
      comment: 'Data flows one way: workflows call activities, never the reverse.',
      severity: 'error',
      from: { path: '^activities/' },
      to: { path: '^workflows/' },
    },
    {
      name: 'teardown-internals-stay-inside',
      comment:
        "Outside src/teardown/, only its public surface (src/teardown/index.ts) is imported, so a backend's " +
        'internals can change without touching other rooms.',
      severity: 'error',
      from: { path: '^(src|activities|workflows)/', pathNot: '^src/(teardown|dev)/' },
      to: { path: '^src/teardown/', pathNot: '^src/teardown/index\\.ts$' },
    },
    {
      name: 'worker-uses-activities-entry',
      comment:
        'The worker registers createActivities from activities/index.ts; activity internals stay private.',
      severity: 'error',
      from: { path: '^src/worker\\.ts$' },
      to: { path: '^activities/', pathNot: '^activities/index\\.ts$' },
    },
    {
      name: 'library-not-temporal-glue',
      comment:
        'The library under src/ (store, platform, teardown, shared, config, metrics) does not depend on ' +
        'activities/ or workflows/; only the process entry points wire them in.',
      severity: 'error',
      from: {
        path: '^src/',
        pathNot: ['^src/worker\\.ts$', '^src/client\\.ts$', '^src/cli(\\.ts|/)', '^src/dev/', '^src/build/'],
      },
      to: { path: '^(activities|workflows)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'dev-tools-stay-out-of-production',
      comment:
        'src/dev/ (the local stack, seeding fake items) is for development: only the CLI wires it in, ' +
        'never the worker, the activities or the library.',
      severity: 'error',
      from: { path: '^(src|activities|workflows)/', pathNot: ['^src/dev/', '^src/cli(\\.ts|/)'] },
      to: { path: '^src/dev/' },
    },
    {
      name: 'no-circular',
      comment: 'A cycle makes load order matter and rooms inseparable.',
      severity: 'error',
      from: {},
      to: { circular: true, dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
