/**
 * Loading the index view while gc repacks under it: index files vanish between the listing and
 * the read, and their replacements appear. Every live chunk must be in every view loaded, and
 * every read must find it (CI saw a reader call a live chunk missing under a gc running back to
 * back: the load gave up after four listings and kept a view without the replacements).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { decodeIndex, encodeIndex } from './index-file.js';
import { CLOCK_MARGIN_MS } from './gc.js';
import { Pool } from './pool.js';
import { poolOfChunks } from './pool-fixtures.test.js';
import type { PoolPaths } from './pool-layout.js';

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/**
 * What gc's repack does to the files, over and over: copies a batch of packs under new ids (pack,
 * then index file), then deletes the originals' index files, then their packs. Like gc, it
 * leaves packs younger than its clock margin alone (gc's own copies among them).
 */
async function churn(paths: PoolPaths, stop: () => boolean, stats: { moved: number }, batchSize: () => number): Promise<void> {
  const made = new Map<string, number>();
  while (!stop()) {
    const names = (await readdir(paths.index)).filter((f) => f.endsWith('.idx')).map((f) => f.slice(0, -'.idx'.length));
    const old = names.filter((id) => Date.now() - (made.get(id) ?? 0) >= CLOCK_MARGIN_MS);
    if (old.length === 0) {
      await sleep(20);
      continue;
    }
    const batch = old.sort(() => Math.random() - 0.5).slice(0, batchSize());
    const moved: string[] = [];
    for (const id of batch) {
      const entries = decodeIndex(await readFile(paths.indexFile(id)));
      assert.ok(typeof entries !== 'string');
      const to = randomBytes(16).toString('hex');
      await mkdir(paths.packDir(to), { recursive: true });
      await copyFile(paths.pack(id), paths.pack(to));
      const tmp = `${paths.indexFile(to)}.tmp-${process.pid}`;
      await writeFile(tmp, encodeIndex(entries.map((e) => ({ ...e, pack: to }))));
      await rename(tmp, paths.indexFile(to));
      made.set(to, Date.now());
      moved.push(id);
    }
    for (const id of moved) await unlink(paths.indexFile(id));
    for (const id of moved) await unlink(paths.pack(id));
    stats.moved += moved.length;
    if (stats.moved % 5 === 0) await sleep(1);
  }
}

test('views loaded and reads made while gc repacks the whole pool over and over find every chunk', { timeout: 120_000 }, async () => {
  const { dir, chunks } = await poolOfChunks(200, 'hf-churn-');
  try {
    const pool = await Pool.open(dir);
    let done = false;
    const stats = { moved: 0 };
    const mover = churn(pool.paths, () => done, stats, () => 1 + Math.floor(Math.random() * 3));
    try {
      // Until the pool was repacked once over, and at least 20 views.
      for (let round = 0; round < 20 || stats.moved < chunks.length; round++) {
        await pool.refreshIndex();
        const lacking = chunks.filter((c) => !pool.index.has(c.ref[0]));
        assert.equal(lacking.length, 0, `view ${round} lacks ${lacking.length} of ${chunks.length} live chunks`);
        const got = await pool.reader.read(chunks.map((c) => c.ref));
        got.forEach((b, i) => assert.ok(Buffer.from(b).equals((chunks[i] as { data: Buffer }).data), `chunk ${i} read back wrong`));
      }
    } finally {
      done = true;
      await mover;
      await pool.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
