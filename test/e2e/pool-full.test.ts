/**
 * A full pool: on a small loop-mounted ext4 file system, a backup that does not fit fails with
 * POOL_FULL naming the pool, leaves no partial pack or temporary file behind, and harms nothing
 * already stored (verify --full passes, earlier points restore bit-exact). After deleting a point
 * and running gc, the same backup fits and everything restores.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { holdfast, holdfastJson, scratch, sh } from './cli-harness.js';
import { backupPoint, initPool, writeRandomFile } from './pool-fixtures.js';
import type { VerifyReport } from '../../src/pool/verify.js';
import type { GcReport } from '../../src/pool/gc.js';

const MiB = 1024 * 1024;
const canMount = process.getuid?.() === 0 && spawnSync('mkfs.ext4', ['-V']).status === 0;

test('a full pool fails the backup with POOL_FULL and harms nothing; gc makes room', { skip: !canMount && 'needs root and mkfs.ext4' }, async () => {
  const s = scratch('holdfast-full-');
  const img = join(s.dir, 'fs.img');
  const mnt = join(s.dir, 'mnt');
  const pool = join(mnt, 'pool');
  let mounted = false;
  try {
    sh('truncate', ['-s', '64M', img]);
    sh('mkfs.ext4', ['-q', '-F', img]);
    mkdirSync(mnt);
    sh('mount', ['-o', 'loop', img, mnt]);
    mounted = true;
    await initPool(pool);
    const data = new Map<string, Buffer>();
    const source = (name: string, bytes: number): string => {
      const dir = join(s.dir, name);
      mkdirSync(dir);
      data.set(name, writeRandomFile(join(dir, 'data.bin'), bytes));
      return dir;
    };
    let restores = 0;
    const checkRestore = async (name: string, point: string): Promise<void> => {
      const to = join(s.dir, `restore-${restores++}`);
      const r = await holdfast(['restore', '--pool', pool, '--source', name, '--point', point, '--to', to]);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(readFileSync(join(to, 'data.bin')).equals(data.get(name) as Buffer), `${name} ${point} restores bit-exact`);
    };

    const a = await backupPoint(pool, 'a', source('a', 16 * MiB));
    const b = await backupPoint(pool, 'b', source('b', 24 * MiB));
    const cDir = source('c', 28 * MiB);
    const full = await holdfast(['backup', '--pool', pool, '--source', 'c', cDir]);
    assert.equal(full.code, 7, `expected POOL_FULL (exit 7): ${full.stderr}`);
    assert.match(full.stderr, new RegExp(`storage pool ${pool} is out of space`));

    // Nothing half-written is left: every pack has its index file, no temporary files.
    const packs = readdirSync(join(pool, 'packs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.pack'));
    for (const f of packs) assert.ok(existsSync(join(pool, 'index', `${f.slice(3, -5)}.idx`)), `pack ${f} has an index file`);
    const temps = ['packs', 'index', 'points'].flatMap((d) => readdirSync(join(pool, d), { recursive: true, encoding: 'utf8' }).filter((f) => f.includes('.tmp-')));
    assert.deepEqual(temps, []);
    const v1 = await holdfastJson<VerifyReport>(['verify', '--pool', pool, '--full']);
    assert.ok(v1.ok, JSON.stringify(v1));
    assert.equal(v1.points, 2);
    await checkRestore('a', a);
    await checkRestore('b', b);

    // Make room: delete b's point, gc, and the backup fits.
    assert.equal((await holdfast(['points', 'delete', '--pool', pool, '--source', 'b', b])).code, 0);
    const gc = await holdfastJson<GcReport>(['gc', '--pool', pool]);
    assert.ok(gc.bytesFreed >= 24 * MiB, `gc freed ${gc.bytesFreed}`);
    const c = await backupPoint(pool, 'c', cDir);
    await checkRestore('a', a);
    await checkRestore('c', c);
    assert.ok((await holdfastJson<VerifyReport>(['verify', '--pool', pool, '--full'])).ok);
  } finally {
    if (mounted) spawnSync('umount', [mnt]);
    // mount -o loop detaches on umount; make sure no loop device stays bound to the image.
    const loops = spawnSync('losetup', ['-j', img], { encoding: 'utf8' }).stdout;
    for (const line of loops.split('\n')) {
      const dev = line.split(':')[0];
      if (dev) spawnSync('losetup', ['-d', dev]);
    }
    s.cleanup();
  }
});
