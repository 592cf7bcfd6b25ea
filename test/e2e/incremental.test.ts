/**
 * Incremental forever: every recovery point is a logical full, but only what changed is read and
 * only new data is stored. Checked with the numbers a user sees (backup --json, pool stats) and
 * with restores of each point.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, linkSync, mkdirSync, openSync, closeSync, renameSync, symlinkSync, unlinkSync, writeSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { setXattr } from '../../src/native/index.js';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch, snapshotTree, diffSnapshots, type NodeSnapshot } from './cli-harness.js';
import { writeRandomFile } from './tree-fixtures.js';

const KiB = 1024;
const MiB = 1024 * KiB;

interface BackupJson {
  point: string;
  time: string;
  logicalBytes: number;
  readBytes: number;
  newBytes: number;
  storedNewBytes: number;
  torn: string[];
}

interface StatsJson {
  logicalBytes: number;
  storedBytes: number;
  chunks: number;
  packs: number;
}

const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
const snap = (dir: string): Map<string, NodeSnapshot> => snapshotTree(dir, { skipRootMeta: true });

describe('incremental backups', () => {
  const s = scratch('holdfast-incr-');
  const pool = join(s.dir, 'pool');
  const src = join(s.dir, 'src');
  let restores = 0;
  const backup = (source: string, path: string, extra: string[] = []): Promise<BackupJson> =>
    holdfastJson<BackupJson>(['backup', '--pool', pool, '--source', source, ...extra, path]);
  const stats = (): Promise<StatsJson> => holdfastJson<StatsJson>(['pool', 'stats', '--pool', pool]);
  const restoreDir = async (source: string, sel: string[]): Promise<{ dir: string; point: string }> => {
    const dir = join(s.dir, `restore-${restores++}`);
    const r = await holdfastJson<{ point: string }>(['restore', '--pool', pool, '--source', source, ...sel, '--to', dir]);
    return { dir, point: r.point };
  };

  before(async () => {
    mkdirSync(join(src, 'docs', 'old'), { recursive: true });
    mkdirSync(join(src, 'media'));
    const sizes = [12 * MiB + 4097, 3 * MiB, 2 * MiB + 17, 1 * MiB, 700 * KiB, 300 * KiB, 64 * KiB, 5 * KiB, 1, 0];
    sizes.forEach((n, i) => writeRandomFile(join(src, 'media', `m${i}.bin`), n));
    for (let i = 0; i < 30; i++) writeRandomFile(join(src, 'docs', i % 3 === 0 ? 'old' : '', `d${i}.txt`), 1000 + i * 977);
    writeRandomFile(join(src, 'docs', 'report.bin'), 1 * MiB + 333);
    writeFileSync(join(src, 'notes.txt'), 'compressible text\n'.repeat(20000));
    assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
  });
  after(() => s.cleanup());

  let first: BackupJson;
  let second: BackupJson;
  let third: BackupJson;
  let beforeChange: Map<string, NodeSnapshot>;

  test('the first backup reads everything; a second with nothing changed reads and stores nothing', async () => {
    first = await backup('home', src);
    assert.ok(first.logicalBytes > 8 * MiB, `logicalBytes ${first.logicalBytes}`);
    assert.equal(first.readBytes, first.logicalBytes);
    const st0 = await stats();
    second = await backup('home', src);
    assert.equal(second.logicalBytes, first.logicalBytes);
    assert.equal(second.readBytes, 0, 'nothing changed, yet file data was read');
    assert.ok(second.newBytes < first.logicalBytes / 1000, `newBytes ${second.newBytes} for an unchanged tree of ${first.logicalBytes} bytes`);
    const st1 = await stats();
    assert.ok(st1.storedBytes - st0.storedBytes < first.logicalBytes / 1000, `stored ${st1.storedBytes - st0.storedBytes} more bytes for an unchanged tree`);
    // Still a logical full: the second point restores the whole tree.
    beforeChange = snap(src);
    const r = await restoreDir('home', ['--point', second.point]);
    assert.deepEqual(diffSnapshots(beforeChange, snap(r.dir)), []);
  });

  test('after changing one file only that file is read', async () => {
    // Larger than one 8 MiB read segment, so content-defined chunks carry across segments.
    const changed = join(src, 'media', 'm0.bin');
    writeRandomFile(changed, 9 * MiB + 4321);
    const size = statSync(changed).size;
    third = await backup('home', src);
    assert.equal(third.readBytes, size, `read ${third.readBytes} bytes; the one changed file has ${size}`);
    assert.ok(third.newBytes >= size * 0.9 && third.newBytes < size + 256 * KiB, `newBytes ${third.newBytes} for a changed file of ${size}`);
    const now = await restoreDir('home', ['--point', third.point]);
    assert.deepEqual(diffSnapshots(snap(src), snap(now.dir)), []);
    const then = await restoreDir('home', ['--point', first.point]);
    assert.deepEqual(diffSnapshots(beforeChange, snap(then.dir)), [], 'the earlier point changed when a later one was added');
  });

  // An unchanged tree reuses its parent's manifest (its walk's signature, kept in the agent state,
  // is the parent's); every kind of change must still reach the next point.
  test("an unchanged tree takes its parent's manifest; a change of content, name, mode, link or xattr is never missed", async () => {
    const tree = join(s.dir, 'tree');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    for (let i = 0; i < 12; i++) writeRandomFile(join(tree, i % 2 ? 'a' : join('a', 'b'), `f${i}`), 2000 + i * 3001);
    writeRandomFile(join(tree, 'big.bin'), 2 * MiB + 5);
    symlinkSync('a/f1', join(tree, 'link'));
    const state = (): { pointId: string; tree?: string } => JSON.parse(readFileSync(join(pool, 'agent-state', 'tree.full.json'), 'utf8')) as { pointId: string; tree?: string };
    const p0 = await backup('tree', tree);
    const s0 = state();
    assert.equal(s0.pointId, p0.point);
    assert.match(s0.tree ?? '', /^[0-9a-f]{64}$/);
    const p1 = await backup('tree', tree);
    assert.equal(p1.readBytes, 0);
    assert.equal(p1.logicalBytes, p0.logicalBytes);
    assert.deepEqual(state(), { pointId: p1.point, tree: s0.tree }, 'the unchanged tree keeps its signature');
    const big = join(tree, 'big.bin');
    const changes: Array<[string, () => void]> = [
      ['mode', () => chmodSync(join(tree, 'a', 'f1'), 0o600)],
      ['content, same size and mtime (to the nanosecond)', () => {
        const ns = statSync(big, { bigint: true }).mtimeNs;
        const fd = openSync(big, 'r+');
        writeSync(fd, randomBytes(4096), 0, 4096, 1 * MiB);
        closeSync(fd);
        execFileSync('touch', ['-m', '-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, big]);
        assert.equal(statSync(big, { bigint: true }).mtimeNs, ns);
      }],
      ['rename', () => renameSync(join(tree, 'a', 'f3'), join(tree, 'a', 'f3-renamed'))],
      ['new empty directory', () => mkdirSync(join(tree, 'a', 'empty'))],
      ['symlink retargeted', () => {
        unlinkSync(join(tree, 'link'));
        symlinkSync('a/f5', join(tree, 'link'));
      }],
      ['hard link added', () => linkSync(join(tree, 'a', 'f7'), join(tree, 'f7-link'))],
      ['xattr set', () => setXattr(join(tree, 'a', 'b', 'f0'), 'user.note', Buffer.from('set later'))],
      ['file deleted', () => unlinkSync(join(tree, 'a', 'b', 'f2'))],
    ];
    for (const [what, change] of changes) {
      const before = state().tree;
      change();
      const p = await backup('tree', tree);
      assert.notEqual(state().tree, before, `${what}: the signature did not change`);
      const r = await restoreDir('tree', ['--point', p.point]);
      assert.deepEqual(diffSnapshots(snap(tree), snap(r.dir)), [], `${what}: the point is not the tree`);
    }
  });

  test('--at picks the latest point at or before the time', async () => {
    const t2 = Date.parse(second.time);
    const t3 = Date.parse(third.time);
    assert.ok(t3 > t2 + 1);
    const between = new Date(Math.floor((t2 + t3) / 2)).toISOString();
    const mid = await restoreDir('home', ['--at', between]);
    assert.equal(mid.point, second.point, `--at ${between} (between ${second.time} and ${third.time})`);
    assert.deepEqual(diffSnapshots(beforeChange, snap(mid.dir)), [], '--at between two backups restored the wrong content');
    const exact = await restoreDir('home', ['--at', third.time]);
    assert.equal(exact.point, third.point);
    assert.deepEqual(diffSnapshots(snap(src), snap(exact.dir)), []);
    const later = await restoreDir('home', ['--at', new Date(t3 + 3_600_000).toISOString()]);
    assert.equal(later.point, third.point);
    // A time with an offset names the same instant.
    const offset = new Date(Math.floor((t2 + t3) / 2) + 2 * 3_600_000).toISOString().replace('Z', '+02:00');
    const viaOffset = await restoreDir('home', ['--at', offset]);
    assert.equal(viaOffset.point, second.point, `--at ${offset}`);
  });

  test('identical data under two sources is stored once', async () => {
    const copy = join(s.dir, 'copy');
    cpSync(src, copy, { recursive: true });
    const st0 = await stats();
    const r = await backup('copy', copy);
    const st1 = await stats();
    assert.equal(r.logicalBytes, third.logicalBytes);
    assert.ok(st1.storedBytes - st0.storedBytes < r.logicalBytes * 0.05, `storedBytes grew by ${st1.storedBytes - st0.storedBytes} for ${r.logicalBytes} bytes already in the pool`);
    assert.ok(r.newBytes < r.logicalBytes * 0.05, `newBytes ${r.newBytes}`);
    assert.equal(st1.logicalBytes - st0.logicalBytes, r.logicalBytes);
    const back = await restoreDir('copy', []);
    assert.deepEqual(diffSnapshots(snap(copy), snap(back.dir)), []);
  });

  test('image source: a few 4 KiB in-place changes are read in full but stored as little', async () => {
    const img = join(s.dir, 'disk.img');
    writeRandomFile(img, 32 * MiB);
    const original = sha(img);
    const a = await backup('disk', img, ['--kind', 'image']);
    assert.equal(a.logicalBytes, 32 * MiB);
    assert.equal(a.readBytes, 32 * MiB);
    const st0 = await stats();
    const fd = openSync(img, 'r+');
    try {
      for (const off of [0, 5 * MiB + 4 * KiB, 13 * MiB + 123 * KiB, 31 * MiB, 32 * MiB - 4 * KiB]) writeSync(fd, randomBytes(4 * KiB), 0, 4 * KiB, off);
    } finally {
      closeSync(fd);
    }
    const changed = sha(img);
    const b = await backup('disk', img, ['--kind', 'image']);
    assert.equal(b.readBytes, 32 * MiB, 'no change tracking for plain image files yet: the whole image is read');
    assert.ok(b.newBytes < 1 * MiB, `newBytes ${b.newBytes} for 20 KiB of changes`);
    assert.ok(b.newBytes >= 20 * KiB, `newBytes ${b.newBytes}: the changed blocks were not stored`);
    const st1 = await stats();
    assert.ok(st1.storedBytes - st0.storedBytes < 1 * MiB, `storedBytes grew by ${st1.storedBytes - st0.storedBytes}`);

    const rb = join(s.dir, 'disk-b.img');
    await holdfastJson(['restore', '--pool', pool, '--source', 'disk', '--point', b.point, '--to', rb]);
    assert.equal(sha(rb), changed);
    const ra = join(s.dir, 'disk-a.img');
    const between = new Date(Math.floor((Date.parse(a.time) + Date.parse(b.time)) / 2)).toISOString();
    const r = await holdfastJson<{ point: string }>(['restore', '--pool', pool, '--source', 'disk', '--at', between, '--to', ra]);
    assert.equal(r.point, a.point);
    assert.equal(sha(ra), original);
  });

  test('image source unchanged: nothing is read, the point restores; a chmod afterwards is in the next point', async () => {
    const img = join(s.dir, 'still.img');
    writeRandomFile(img, 8 * MiB);
    chmodSync(img, 0o644);
    const original = sha(img);
    await backup('still', img, ['--kind', 'image']);
    const same = await backup('still', img, ['--kind', 'image']);
    assert.equal(same.readBytes, 0, 'an unchanged image is not read again');
    assert.equal(same.newBytes, 0);
    chmodSync(img, 0o600);
    const moded = await backup('still', img, ['--kind', 'image']);
    for (const [point, mode] of [[same.point, 0o644], [moded.point, 0o600]] as const) {
      // The restored image's folder does not exist yet: it is made.
      const to = join(s.dir, `new-folder-${point}`, 'still.img');
      await holdfastJson(['restore', '--pool', pool, '--source', 'still', '--point', point, '--to', to]);
      assert.equal(sha(to), original);
      assert.equal(statSync(to).mode & 0o7777, mode, `mode restored from point ${point}`);
    }
  });
});
