/**
 * End to end: damage in the storage pool is found and never restored as data. A flipped byte
 * inside one chunk is named by `verify --full` (chunk, every recovery point that needs it, every
 * file that holds it); a restore that needs the chunk fails loudly and leaves no file with wrong
 * bytes, while unaffected files still restore bit-exact. Truncated and deleted packs and a
 * damaged index file are reported too.
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { holdfast, scratch } from './cli-harness.js';
import { backupPoint, flipByte, writeRandomFile } from './pool-fixtures.js';
import { Pool } from '../../src/pool/pool.js';
import { readManifest } from '../../src/core/manifest-io.js';
import { hasContent } from '../../src/core/manifest.js';
import { decodeIndex } from '../../src/pool/index-file.js';
import type { ChunkLocation } from '../../src/pool/chunk-index.js';
import type { VerifyReport } from '../../src/pool/verify.js';
import { poolPaths } from '../../src/pool/pool-layout.js';

const MiB = 1024 * 1024;

interface StoredChunk {
  digest: string;
  loc: ChunkLocation;
}

/** Where every chunk of every file of a recovery point is stored, and which packs hold its manifest. */
async function mapPoint(poolDir: string, point: string): Promise<{ files: Map<string, StoredChunk[]>; manifestPacks: Set<string> }> {
  const pool = await Pool.open(poolDir);
  try {
    const row = pool.catalog.point(point);
    assert.ok(row, `point ${point} exists`);
    const files = new Map<string, StoredChunk[]>();
    for await (const e of readManifest(pool.reader, row.manifest)) {
      if (!hasContent(e)) continue;
      files.set(
        e.path,
        e.chunks.map(([digest]) => {
          const loc = pool.index.get(digest);
          assert.ok(loc, `chunk ${digest} of ${e.path} is indexed`);
          return { digest, loc };
        }),
      );
    }
    return { files, manifestPacks: new Set(row.manifest.map(([d]) => pool.index.get(d)?.pack ?? '-')) };
  } finally {
    await pool.close();
  }
}

/** The files of a mapped point that hold a chunk matching `hit`, sorted. */
function filesWith(files: Map<string, StoredChunk[]>, hit: (c: StoredChunk) => boolean): string[] {
  return [...files].filter(([, chunks]) => chunks.some(hit)).map(([path]) => path).sort();
}

function verifyJson(r: { stdout: string }): VerifyReport {
  return JSON.parse(r.stdout) as VerifyReport;
}

describe('a damaged storage pool', () => {
  const s = scratch('holdfast-corrupt-');
  const data = join(s.dir, 'data');
  const other = join(s.dir, 'other');
  const pristine = join(s.dir, 'pristine-pool');
  let pool = '';
  let p1 = '';
  let p2 = '';
  let p3 = '';
  let map: Awaited<ReturnType<typeof mapPoint>>;
  /** the last chunk of big.bin: the one damaged */
  let bigChunk: StoredChunk;
  /** a pack with chunks of big.bin and no manifest chunk */
  let dataPack = '';
  /** the pack holding the most chunks: its trailer is longer than 100 bytes */
  let busiestPack = '';
  let packPath = (id: string): string => id;
  let case_ = 0;

  before(async () => {
    mkdirSync(join(data, 'notes'), { recursive: true });
    // 12 MiB: its chunks span more than one 8 MiB restore batch, so its first bytes are written
    // before the damaged last chunk is read.
    const big = writeRandomFile(join(data, 'big.bin'), 12 * MiB);
    writeFileSync(join(data, 'big-copy.bin'), big); // shares every chunk with big.bin
    writeRandomFile(join(data, 'small.bin'), 40 * 1024); // one chunk, shares none
    writeRandomFile(join(data, 'medium.bin'), 700 * 1024);
    writeFileSync(join(data, 'notes/readme.txt'), 'not damaged\n'.repeat(100));
    mkdirSync(other);
    writeRandomFile(join(other, 'unrelated.bin'), 500 * 1024);

    // Small packs, so the data spreads over several and one pack's loss is a few files' damage.
    await Pool.init(pristine, { packSize: 2 * MiB });
    p1 = await backupPoint(pristine, 'data', data);
    p2 = await backupPoint(pristine, 'data', data); // unchanged: a second point with the same chunks
    p3 = await backupPoint(pristine, 'other', other);
    map = await mapPoint(pristine, p1);
    const bigChunks = map.files.get('big.bin') ?? [];
    bigChunk = bigChunks[bigChunks.length - 1] as StoredChunk;
    dataPack = bigChunks.map((c) => c.loc.pack).find((p) => !map.manifestPacks.has(p)) ?? '';
    assert.ok(dataPack, 'some pack holds data of big.bin and no manifest chunk');
    assert.deepEqual(filesWith(map.files, (c) => c.digest === bigChunk.digest), ['big-copy.bin', 'big.bin']);
    const counts = new Map<string, number>();
    const p = await Pool.open(pristine);
    try {
      for (const [, loc] of p.index.entries()) counts.set(loc.pack, (counts.get(loc.pack) ?? 0) + 1);
    } finally {
      await p.close();
    }
    busiestPack = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
    assert.ok((counts.get(busiestPack) ?? 0) >= 3, 'a pack holds at least three chunks');
  });

  beforeEach(() => {
    pool = join(s.dir, `pool-${++case_}`);
    copyTree(pristine, pool);
    packPath = (id: string) => poolPaths(pool).pack(id);
  });

  afterEach(() => rmSync(pool, { recursive: true, force: true }));

  after(() => s.cleanup());

  it('the undamaged pool verifies sound, quick and full', async () => {
    for (const args of [[], ['--full']]) {
      const r = await holdfast(['verify', '--pool', pool, ...args]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /pool is sound: 3 recovery points/);
    }
  });

  describe('a flipped byte inside one chunk', () => {
    beforeEach(() => flipByte(packPath(bigChunk.loc.pack), bigChunk.loc.offset + Math.floor(bigChunk.loc.storedLength / 2)));

    it('verify --full exits non-zero naming the chunk, both recovery points and both files', async () => {
      const r = await holdfast(['verify', '--pool', pool, '--full']);
      assert.notEqual(r.code, 0);
      assert.ok(r.stdout.includes(bigChunk.digest), r.stdout);
      assert.ok(r.stdout.includes(p1) && r.stdout.includes(p2), r.stdout);
      assert.ok(!r.stdout.includes(p3), `unaffected point ${p3} is not named:\n${r.stdout}`);
      assert.match(r.stdout, /damaged file: big\.bin$/m);
      assert.match(r.stdout, /damaged file: big-copy\.bin$/m);
      assert.doesNotMatch(r.stdout, /small\.bin|medium\.bin|readme/);

      const report = verifyJson(await holdfast(['verify', '--pool', pool, '--full', '--json']));
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.damagedChunks.map((c) => c.digest),
        [bigChunk.digest],
      );
      assert.deepEqual(report.damagedPoints.map((p) => p.point).sort(), [p1, p2].sort());
      for (const p of report.damagedPoints) assert.deepEqual(p.files, ['big-copy.bin', 'big.bin']);
    });

    it('quick verify does not read chunk data, so it still passes (documented: use --full to find bit rot)', async () => {
      const r = await holdfast(['verify', '--pool', pool]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /pool is sound/);
    });

    it('restoring the whole point fails loudly, names the chunk, and leaves no file with wrong bytes', async () => {
      const to = join(s.dir, `restore-${case_}`);
      const r = await holdfast(['restore', '--pool', pool, '--source', 'data', '--point', p1, '--to', to]);
      assert.notEqual(r.code, 0);
      assert.ok(r.stderr.includes(bigChunk.digest), r.stderr);
      assert.match(r.stderr, /damaged/);
      assert.equal(existsSync(join(to, 'big.bin')), false, 'big.bin is absent, not partly written');
      assert.equal(existsSync(join(to, 'big-copy.bin')), false, 'big-copy.bin is absent, not partly written');
      // Whatever else was restored is bit-exact.
      for (const name of existsSync(to) ? readdirSync(to) : []) {
        if (statSync(join(to, name)).isFile()) assert.deepEqual(readFileSync(join(to, name)), readFileSync(join(data, name)), name);
      }
      rmSync(to, { recursive: true, force: true });
    });

    it('restoring an unaffected file or directory with --path succeeds bit-exact', async () => {
      const to = join(s.dir, `restore-${case_}`);
      for (const path of ['small.bin', 'medium.bin', 'notes']) {
        const r = await holdfast(['restore', '--pool', pool, '--source', 'data', '--point', p1, '--path', path, '--to', to, '--overwrite']);
        assert.equal(r.code, 0, r.stderr);
      }
      assert.deepEqual(readdirSync(to).sort(), ['medium.bin', 'notes', 'small.bin']);
      assert.deepEqual(readFileSync(join(to, 'small.bin')), readFileSync(join(data, 'small.bin')));
      assert.deepEqual(readFileSync(join(to, 'medium.bin')), readFileSync(join(data, 'medium.bin')));
      assert.deepEqual(readFileSync(join(to, 'notes/readme.txt')), readFileSync(join(data, 'notes/readme.txt')));
      rmSync(to, { recursive: true, force: true });
    });

    it('the other source still restores whole', async () => {
      const to = join(s.dir, `restore-${case_}`);
      const r = await holdfast(['restore', '--pool', pool, '--source', 'other', '--point', p3, '--to', to]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(readFileSync(join(to, 'unrelated.bin')), readFileSync(join(other, 'unrelated.bin')));
      rmSync(to, { recursive: true, force: true });
    });
  });

  it('a pack cut short by 100 bytes (into its trailer, chunk data intact) is reported by quick verify', async () => {
    const path = packPath(busiestPack);
    truncateSync(path, statSync(path).size - 100);
    const full = await holdfast(['verify', '--pool', pool, '--full']);
    assert.notEqual(full.code, 0, full.stdout);
    assert.ok(full.stdout.includes(busiestPack), full.stdout);
    const quick = await holdfast(['verify', '--pool', pool]);
    assert.notEqual(quick.code, 0, `quick verify passed a truncated pack:\n${quick.stdout}`);
    assert.ok(quick.stdout.includes(busiestPack), `names pack ${busiestPack}:\n${quick.stdout}`);
  });

  it('a pack cut inside chunk data is reported by quick verify, naming the chunk, points and files', async () => {
    truncateSync(packPath(bigChunk.loc.pack), bigChunk.loc.offset + 10);
    const r = await holdfast(['verify', '--pool', pool]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.ok(r.stdout.includes(bigChunk.digest), r.stdout);
    assert.match(r.stdout, /truncated/);
    assert.ok(r.stdout.includes(p1) && r.stdout.includes(p2), r.stdout);
  });

  it('a deleted pack is reported, with the recovery points and files that needed it', async () => {
    const lost = filesWith(map.files, (c) => c.loc.pack === dataPack);
    assert.ok(lost.includes('big.bin') && lost.includes('big-copy.bin'));
    rmSync(packPath(dataPack));
    for (const args of [[], ['--full']]) {
      const r = await holdfast(['verify', '--pool', pool, ...args]);
      assert.notEqual(r.code, 0, r.stdout);
      assert.ok(r.stdout.includes(dataPack), r.stdout);
      assert.match(r.stdout, /pack file missing/);
      assert.ok(r.stdout.includes(p1) && r.stdout.includes(p2), r.stdout);
      assert.ok(!r.stdout.includes(p3), r.stdout);
      for (const f of lost) assert.ok(r.stdout.includes(`damaged file: ${f}\n`), `names ${f}:\n${r.stdout}`);
      for (const f of map.files.keys()) if (!lost.includes(f)) assert.ok(!r.stdout.includes(f), `does not name ${f}:\n${r.stdout}`);
      const report = verifyJson(await holdfast(['verify', '--pool', pool, ...args, '--json']));
      assert.deepEqual(report.damagedPoints.map((p) => p.point).sort(), [p1, p2].sort());
      for (const p of report.damagedPoints) assert.deepEqual(p.files, lost);
    }
    const to = join(s.dir, `restore-${case_}`);
    const r = await holdfast(['restore', '--pool', pool, '--source', 'data', '--point', p2, '--to', to]);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(dataPack), r.stderr);
    assert.equal(existsSync(join(to, 'big.bin')), false);
    rmSync(to, { recursive: true, force: true });
  });

  it('a deleted pack that held manifest chunks is reported: the recovery points are unreadable', async () => {
    const pack = [...map.manifestPacks][0] as string;
    rmSync(packPath(pack));
    for (const args of [[], ['--full']]) {
      const r = await holdfast(['verify', '--pool', pool, ...args]);
      assert.notEqual(r.code, 0, r.stdout);
      assert.ok(r.stdout.includes(pack), r.stdout);
      assert.match(r.stdout, new RegExp(`damaged recovery point ${p1} .*manifest unreadable`));
      assert.match(r.stdout, new RegExp(`damaged recovery point ${p2} .*manifest unreadable`));
      assert.ok(!r.stdout.includes(p3), r.stdout);
    }
  });

  it('a damaged index file is reported by verify', async () => {
    const dir = join(pool, 'index');
    const name = readdirSync(dir).find((n) => {
      const entries = decodeIndex(readFileSync(join(dir, n)));
      return typeof entries !== 'string' && entries.some((e) => e.digest === bigChunk.digest);
    });
    assert.ok(name, 'an index file holds the chunk');
    flipByte(join(dir, name), 8 + 61 + 40); // inside the second entry
    for (const args of [[], ['--full']]) {
      const r = await holdfast(['verify', '--pool', pool, ...args]);
      assert.notEqual(r.code, 0, r.stdout);
      assert.ok(r.stdout.includes(name), `names ${name}:\n${r.stdout}`);
      assert.match(r.stdout, /checksum/);
      assert.ok(r.stdout.includes(p1) && r.stdout.includes(p2), r.stdout);
    }
  });
});

/** Copies a pool directory (packs and index files keep their read-only modes). */
function copyTree(from: string, to: string): void {
  mkdirSync(to);
  for (const name of readdirSync(from)) {
    const a = join(from, name);
    const b = join(to, name);
    if (statSync(a).isDirectory()) copyTree(a, b);
    else copyFileSync(a, b);
  }
}
