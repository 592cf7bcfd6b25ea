/**
 * `npm run bench:versions` at a small scale, so the script cannot rot unnoticed: it must build
 * the index, answer every query and print its figures and the target line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO } from './cli-harness.js';

test('bench:versions runs at a small scale and reports the versions-query target', async () => {
  const script = join(REPO, 'dist', 'bench', 'versions-bench.js');
  const { stdout } = await promisify(execFile)(process.execPath, [script, '--files', '2000', '--points', '5', '--queries', '20'], { timeout: 120_000 });
  assert.match(stdout, /indexed 5 points/);
  assert.match(stdout, /index size: .* 2,\d{3} paths/);
  assert.match(stdout, /versions of a file .* 20 queries, avg [1-5]\.\d points each/);
  assert.match(stdout, /search by name \(20 queries\): +p50 \S+/);
  assert.match(stdout, /target: every versions query under 200 ms: (met|MISSED)/);
});
