#!/usr/bin/env node
// Built by `npm run build` (run by `prepare`, so `npm ci` leaves a working binary).
require('../dist/src/cli.js')
  .main()
  .then((code) => process.exit(code));
