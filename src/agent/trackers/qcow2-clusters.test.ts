/**
 * Qcow2Clusters against QEMU's own reading of the same images (`qemu-img convert` to raw): every
 * range it serves is byte for byte the guest's, and whatever it cannot know (compressed clusters,
 * a backing file's) it refuses rather than guesses. On a disk file system (O_DIRECT) and on tmpfs
 * (which refuses O_DIRECT: buffered reads).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Qcow2Clusters } from './qcow2-clusters.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function qemuIo(img: string, dir: string, writes: Array<{ at: number; len: number; how: 'data' | 'zero' | 'compressed' }>, format = 'qcow2'): void {
  const args: string[] = [];
  writes.forEach((w, i) => {
    if (w.how === 'zero') args.push('-c', `write -z ${w.at} ${w.len}`);
    else {
      const f = join(dir, `w${i}`);
      // Compressed clusters must compress, or QEMU stores them plainly.
      writeFileSync(f, w.how === 'compressed' ? Buffer.alloc(w.len, `compressible ${i} `) : randomBytes(w.len));
      args.push('-c', `write -q ${w.how === 'compressed' ? '-c ' : ''}-s ${f} ${w.at} ${w.len}`);
    }
  });
  execFileSync('qemu-io', ['-f', format, ...args, img]);
}

function guestBytes(img: string, dir: string): Buffer {
  const raw = join(dir, 'guest.raw');
  execFileSync('qemu-img', ['convert', '-O', 'raw', img, raw]);
  const b = readFileSync(raw);
  rmSync(raw);
  return b;
}

/** Reads `ranges` through the map; checks served ones against `guest`; returns which were refused. */
async function check(c: Qcow2Clusters, guest: Buffer, ranges: Array<[number, number]>): Promise<Array<[number, number]>> {
  const refused: Array<[number, number]> = [];
  await Promise.all(
    ranges.map(async ([at, len]) => {
      const into = Buffer.alloc(len + 7).subarray(3, 3 + len).fill(0xa5); // not aligned, not zero
      if (await c.read(at, len, into)) assert.ok(into.equals(guest.subarray(at, at + len)), `bytes ${at}+${len} differ from QEMU's`);
      else refused.push([at, len]);
    }),
  );
  return refused.sort((a, b) => a[0] - b[0]);
}

const everyCluster = (size: number, cluster: number): Array<[number, number]> => Array.from({ length: Math.ceil(size / cluster) }, (_, i) => [i * cluster, Math.min(cluster, size - i * cluster)]);

for (const { where, direct } of [{ where: 'disk', direct: true }, { where: 'disk', direct: false }, { where: 'tmpfs', direct: undefined }]) {
  test(`qcow2 clusters read from the file (${where}, ${direct === false ? 'buffered' : 'direct where it can'}) equal QEMU's guest bytes; compressed ones are left to QEMU`, async () => {
    const dir = mkdtempSync(join(where === 'disk' ? tmpdir() : '/dev/shm', 'holdfast-q2c-'));
    try {
      const img = join(dir, 'disk.qcow2');
      const size = 8 * MiB + 20 * KiB; // a partial last cluster
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'cluster_size=65536', img, String(size)]);
      qemuIo(img, dir, [
        { at: 0, len: 3 * 64 * KiB, how: 'data' },
        { at: 1 * MiB + 4 * KiB, len: 100 * KiB, how: 'data' }, // partial clusters: the rest reads as zero
        { at: 2 * MiB, len: 64 * KiB, how: 'data' },
        { at: 2 * MiB, len: 64 * KiB, how: 'zero' }, // allocated, then zeroed: the zero flag
        { at: 3 * MiB, len: 64 * KiB, how: 'compressed' },
        { at: 5 * MiB, len: 2 * MiB, how: 'data' }, // runs longer than one staged read
        { at: 8 * MiB, len: 20 * KiB, how: 'data' },
      ]);
      const guest = guestBytes(img, dir);
      const c = await Qcow2Clusters.open(img, { direct });
      assert.ok(c, 'a plain qcow2 image is mapped');
      try {
        if (direct !== undefined) assert.equal(c.direct, direct, 'O_DIRECT on a disk file system unless told not to');
        const refused = await check(c, guest, everyCluster(size, 64 * KiB));
        assert.deepEqual(refused, [[3 * MiB, 64 * KiB]], 'only the compressed cluster goes to QEMU');
        // Ranges across clusters and at odd offsets; the whole image in pieces; the tail.
        const odd: Array<[number, number]> = [[60 * KiB, 10 * KiB], [1 * MiB, 200 * KiB], [5 * MiB - 512, 2 * MiB + 1024], [size - 30 * KiB, 30 * KiB], [7, 3]];
        assert.deepEqual(await check(c, guest, odd), []);
        const whole: Array<[number, number]> = [];
        for (let at = 0; at < size; at += 1536 * KiB) whole.push([at, Math.min(1536 * KiB, size - at)]);
        assert.deepEqual((await check(c, guest, whole)).map((r) => r[0]), [3 * MiB - (3 * MiB) % (1536 * KiB)]);
        assert.ok(c.directBytes > 8 * MiB, 'the reads were served from the file');
        assert.equal(await c.read(size - 10, 20, Buffer.alloc(20)), false, 'past the end is refused');
      } finally {
        await c.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('qcow2 clusters: an overlay serves its own clusters and leaves the backing file’s to QEMU; v2 images map; subclusters and raw files do not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-q2c-'));
  try {
    const base = join(dir, 'base.qcow2');
    const top = join(dir, 'top.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '4M']);
    qemuIo(base, dir, [{ at: 0, len: 4 * MiB, how: 'data' }]);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
    qemuIo(top, dir, [{ at: 1 * MiB, len: 128 * KiB, how: 'data' }, { at: 2 * MiB, len: 64 * KiB, how: 'zero' }]);
    const guest = guestBytes(top, dir);
    const c = await Qcow2Clusters.open(top);
    assert.ok(c);
    try {
      const refused = await check(c, guest, everyCluster(4 * MiB, 64 * KiB));
      assert.equal(refused.length, 64 - 3, 'all but the overlay’s two written clusters and its zeroed one go to QEMU');
      assert.ok(!refused.some(([at]) => at === 1 * MiB || at === 1 * MiB + 64 * KiB || at === 2 * MiB));
    } finally {
      await c.close();
    }

    const v2 = join(dir, 'v2.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', v2, '2M']);
    qemuIo(v2, dir, [{ at: 64 * KiB, len: 192 * KiB, how: 'data' }]);
    const c2 = await Qcow2Clusters.open(v2);
    assert.ok(c2, 'version 2 images are mapped');
    try {
      assert.deepEqual(await check(c2, guestBytes(v2, dir), everyCluster(2 * MiB, 64 * KiB)), []);
    } finally {
      await c2.close();
    }

    const sub = join(dir, 'sub.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'extended_l2=on', sub, '2M']);
    assert.equal(await Qcow2Clusters.open(sub), undefined, 'subclusters: left to QEMU');
    const raw = join(dir, 'disk.raw');
    writeFileSync(raw, Buffer.alloc(MiB));
    assert.equal(await Qcow2Clusters.open(raw), undefined, 'not qcow2');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
