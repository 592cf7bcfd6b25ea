#!/usr/bin/env node
// Runs every compiled test file (unit tests beside the code, e2e under test/) with node's test runner.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
const filter = process.argv[2];
const files = [...collect('dist/src', []), ...collect('dist/test', [])].filter((f) => !filter || f.includes(filter)).sort();
if (files.length === 0) {
  // node --test with no files would look for tests by itself and run the whole suite.
  console.error(`no compiled test file matches '${filter}' (under dist/src and dist/test)`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
