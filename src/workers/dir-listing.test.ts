/** A codec worker's directory listing: names sorted, stats read through StatView equal lstat's, xattrs carried. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setXattr, STAT_FIELDS } from '../native/index.js';
import { StatView } from '../native/stat-view.js';
import { CodecPool } from './codec-pool.js';

test('a listing holds every entry sorted by name, each stat equal to lstat, and the xattrs of those that have them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-listing-'));
  const codec = new CodecPool();
  try {
    for (const n of ['b', 'a', 'c10', 'c9', 'Z']) writeFileSync(join(dir, n), n.repeat(100));
    mkdirSync(join(dir, 'sub'));
    symlinkSync('a', join(dir, 'link'));
    setXattr(join(dir, 'c9'), 'user.note', Buffer.from('nine'));
    const [l] = await codec.listDirs([dir, join(dir, 'missing')]).then((ls) => {
      assert.equal(ls[1]?.ok, false, 'a missing directory is a failed listing, not an error');
      return ls;
    });
    assert.ok(l?.ok);
    assert.deepEqual(l.names, ['Z', 'a', 'b', 'c10', 'c9', 'link', 'sub']);
    l.names.forEach((name, i) => {
      const st = new StatView(l.stats, i * STAT_FIELDS);
      const want = lstatSync(join(dir, name), { bigint: true });
      for (const k of ['mode', 'uid', 'gid', 'size', 'blocks', 'mtimeNs', 'ctimeNs', 'ino', 'dev', 'nlink', 'rdev'] as const) {
        assert.equal(st[k], want[k], `${name}: ${k}`);
      }
    });
    assert.deepEqual(l.xattrs, { 4: { 'user.note': Buffer.from('nine').toString('base64') } });
  } finally {
    await codec.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
