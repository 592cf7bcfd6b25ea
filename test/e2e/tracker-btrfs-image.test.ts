/**
 * A disk image kept as a file in a btrfs subvolume (sparse, like a raw VM disk): it is cut into
 * fixed 16 KiB chunks, and a sync reads only the 16 KiB slots whose extents changed since the
 * previous snapshot (the send stream reports whole split extents; the extent maps narrow them),
 * whatever happens to its holes: writes into holes, punched holes, scattered 4 KiB writes.
 * Every point restores bit-exact, and a renamed image keeps its chunks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, holdfastJson, scratch, sh } from './cli-harness.js';
import { prng } from './tree-fixtures.js';
import { KiB, LoopBtrfs, MiB } from './btrfs-fixtures.js';
import { requireTools } from './qemu-fixtures.js';

interface BackupJson {
  point: string;
  readBytes: number;
  newBytes: number;
  tracker: string;
  warnings: string[];
}

const SIZE = 48 * MiB;
const SLOT = 16 * KiB;

describe('btrfs tracker: disk image files', () => {
  const s = scratch('holdfast-btrfs-img-');
  const fs = new LoopBtrfs(s.dir);
  const pool = join(s.dir, 'pool');
  const seed = Number(process.env.HOLDFAST_SEED ?? Date.now() % 1_000_000);
  const rng = prng(seed);
  let vol = '';
  let name = 'disk.img';
  const img = (): string => join(vol, name);
  const backup = (): Promise<BackupJson> => holdfastJson<BackupJson>(['backup', '--pool', pool, '--source', 'img', '--kind', 'btrfs', vol]);
  const digest = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
  const restoresTo = async (point: string, want: string): Promise<void> => {
    const to = join(s.dir, `restore-${point}`);
    const r = await holdfast(['restore', '--pool', pool, '--source', 'img', '--point', point, '--to', to]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(digest(join(to, name)), want, `point ${point} does not restore the image (seed ${seed})`);
    rmSync(to, { recursive: true, force: true });
  };
  /** Writes `count` runs of `len` bytes at random offsets aligned to `align`; returns the slots they touch. */
  const write = (count: number, len: number, align: number): Set<number> => {
    const fd = openSync(img(), 'r+');
    const slots = new Set<number>();
    try {
      for (let i = 0; i < count; i++) {
        const off = Math.floor((rng() * (SIZE - len)) / align) * align;
        writeSync(fd, randomBytes(len), 0, len, off);
        for (let x = Math.floor(off / SLOT); x < Math.ceil((off + len) / SLOT); x++) slots.add(x);
      }
    } finally {
      closeSync(fd);
    }
    return slots;
  };

  before(() => {
    requireTools('mkfs.btrfs', 'btrfs', 'fallocate');
    fs.setup(400);
    vol = fs.subvolume('vol');
    // Data in 1 MiB runs with 1 MiB holes between, like a guest disk.
    const fd = openSync(img(), 'w');
    for (let off = 0; off < SIZE; off += 2 * MiB) writeSync(fd, randomBytes(MiB), 0, MiB, off);
    closeSync(fd);
    sh('truncate', ['-s', String(SIZE), img()]);
  });
  after(() => {
    try {
      fs.teardown();
    } finally {
      s.cleanup();
    }
  });

  test('first sync, then rounds of scattered, clustered and hole changes read only the changed slots', async (t) => {
    assert.equal((await holdfast(['pool', 'init', pool])).code, 0);
    const first = await backup();
    await restoresTo(first.point, digest(img()));
    assert.ok(first.readBytes <= SIZE / 2 + MiB, `first sync read ${first.readBytes} bytes of a half-sparse image`);
    const rounds: Array<[string, () => Set<number>]> = [
      ['200 scattered 4 KiB writes', () => write(200, 4 * KiB, 4 * KiB)],
      ['40 clustered 64 KiB writes', () => write(40, 64 * KiB, 64 * KiB)],
      [
        'a punched hole and writes into holes',
        () => {
          const off = 4 * MiB + 3 * SLOT;
          sh('fallocate', ['-p', '-o', String(off), '-l', String(8 * SLOT), img()]);
          const hit = write(20, 8 * KiB, 4 * KiB);
          for (let x = off / SLOT; x < off / SLOT + 8; x++) hit.add(x);
          return hit;
        },
      ],
    ];
    for (const [what, change] of rounds) {
      const slots = change();
      const r = await backup();
      t.diagnostic(`${what}: ${slots.size} slots, read ${r.readBytes}, new ${r.newBytes}`);
      assert.equal(r.tracker, 'btrfs', r.warnings.join('; '));
      assert.ok(r.readBytes <= slots.size * SLOT, `${what}: read ${r.readBytes} bytes for ${slots.size} changed slots (seed ${seed})`);
      assert.ok(r.readBytes > 0, `${what}: nothing read`);
      await restoresTo(r.point, digest(img()));
    }
  });

  test('a renamed image keeps its chunks; nothing changed reads nothing', async () => {
    renameSync(img(), join(vol, 'renamed.raw'));
    name = 'renamed.raw';
    const r = await backup();
    assert.equal(r.readBytes, 0);
    await restoresTo(r.point, digest(img()));
    const none = await backup();
    assert.equal(none.readBytes, 0);
  });
});
