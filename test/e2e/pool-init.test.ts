/**
 * `pool init --compression-level`: the level is the pool's, every backup into it uses it, and a
 * bad level is refused before anything is created.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch, snapshotTree, diffSnapshots } from './cli-harness.js';

interface Stats {
  logicalBytes: number;
  storedBytes: number;
}

describe('pool init --compression-level', () => {
  const s = scratch('holdfast-pool-init-');
  after(() => s.cleanup());
  const src = join(s.dir, 'src');
  mkdirSync(src);
  // 2 MiB of text zstd shrinks several times at any level.
  const line = 'the quick brown fox jumps over the lazy dog while the backup runs\n';
  writeFileSync(join(src, 'notes.txt'), line.repeat(Math.ceil((2 * 1024 * 1024) / line.length)));

  async function backupInto(pool: string): Promise<Stats> {
    await holdfastJson(['backup', '--pool', pool, '--source', 'notes', src]);
    const t = join(s.dir, `restored-${pool.split('/').pop()}`);
    await holdfastJson(['restore', '--pool', pool, '--source', 'notes', '--to', t]);
    assert.deepEqual(diffSnapshots(snapshotTree(src, { skipRootMeta: true }), snapshotTree(t, { skipRootMeta: true })), []);
    return holdfastJson<Stats>(['pool', 'stats', '--pool', pool]);
  }

  test('a new pool compresses with zstd level 1 unless told otherwise', async () => {
    const pool = join(s.dir, 'default');
    const r = await holdfastJson<{ config: { compressionLevel: number } }>(['pool', 'init', pool]);
    assert.equal(r.config.compressionLevel, 1);
    assert.equal((JSON.parse(readFileSync(join(pool, 'config.json'), 'utf8')) as { compressionLevel: number }).compressionLevel, 1);
    const st = await backupInto(pool);
    assert.ok(st.storedBytes < st.logicalBytes / 4, `stored ${st.storedBytes} bytes for ${st.logicalBytes} of text`);
  });

  test('level 0 stores chunks raw; a higher level is recorded and used', async () => {
    const raw = join(s.dir, 'raw');
    await holdfastJson(['pool', 'init', '--compression-level', '0', raw]);
    const st0 = await backupInto(raw);
    assert.ok(st0.storedBytes >= st0.logicalBytes, `a raw pool stored ${st0.storedBytes} bytes for ${st0.logicalBytes}`);
    const high = join(s.dir, 'high');
    const r = await holdfastJson<{ config: { compressionLevel: number } }>(['pool', 'init', '--compression-level', '9', high]);
    assert.equal(r.config.compressionLevel, 9);
    const st9 = await backupInto(high);
    assert.ok(st9.storedBytes < st9.logicalBytes / 4);
  });

  test('a bad level is named and nothing is created', async () => {
    for (const bad of ['20', '-1', 'fast', '1.5']) {
      const pool = join(s.dir, `bad-${bad}`);
      const r = await holdfast(['pool', 'init', '--compression-level', bad, pool]);
      assert.notEqual(r.code, 0, `level ${bad} was accepted`);
      assert.match(r.stderr, /--compression-level/);
      assert.ok(r.stderr.includes(bad), `stderr should name ${bad}: ${r.stderr}`);
      assert.ok(!existsSync(pool), `pool init created ${pool} for a bad level`);
    }
  });
});
