#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm install` (prepare script).
// More libuv threads: a backup keeps many small-file reads in flight at once.
process.env.UV_THREADPOOL_SIZE ??= '16';
import('../dist/src/cli/main.js').then((m) => m.main(process.argv)).catch((err) => {
  console.error(err);
  process.exit(70);
});
