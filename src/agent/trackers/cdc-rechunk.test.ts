/**
 * Partial re-chunking must give exactly the chunks a full cut of the new file gives, while
 * reading only around the changes: checked on random files with overwrites, appends and
 * truncations, against cdcSplit of the whole new content.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChunkSink } from '../../core/chunk-io.js';
import { cdcSplit, DEFAULT_CDC } from '../../core/chunker.js';
import { digestOf } from '../../core/digest.js';
import type { ChunkRef } from '../../core/manifest.js';
import type { ByteRange } from '../nbd/nbd-client.js';
import { rechunk } from './cdc-rechunk.js';

const MiB = 1024 * 1024;

function fullCut(data: Buffer): ChunkRef[] {
  const { lengths } = cdcSplit(data, DEFAULT_CDC, true);
  let pos = 0;
  return lengths.map((len) => {
    const ref: ChunkRef = [digestOf(data.subarray(pos, pos + len)), len];
    pos += len;
    return ref;
  });
}

function sink(): ChunkSink & { stored: Set<string> } {
  const stored = new Set<string>();
  return {
    stored,
    compressionLevel: 0,
    want: (ds) => Promise.resolve(ds.map((d) => !stored.has(d))),
    put: (cs) => {
      for (const c of cs) stored.add(c.digest);
      return Promise.resolve();
    },
  };
}

async function check(before: Buffer, after: Buffer, dirty: ByteRange[]): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-rechunk-'));
  try {
    const file = join(dir, 'f');
    writeFileSync(file, after);
    const fh = await open(file, 'r');
    const counters = { readBytes: 0 };
    try {
      const got = await rechunk({ sink: sink(), cdc: DEFAULT_CDC, counters }, fh, fullCut(before), before.length, after.length, dirty);
      assert.deepEqual(got, fullCut(after));
    } finally {
      await fh.close();
    }
    return counters.readBytes;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an overwrite in the middle re-reads only the chunks around it', async () => {
  const before = randomBytes(20 * MiB);
  const after = Buffer.from(before);
  randomBytes(8192).copy(after, 7 * MiB + 123);
  const read = await check(before, after, [{ offset: 7 * MiB + 123, length: 8192 }]);
  assert.ok(read <= 4 * MiB, `read ${read} bytes for an 8 KiB change in 20 MiB`);
});

test('several overwrites, an append and a truncation give the full cut', async () => {
  const before = randomBytes(12 * MiB);
  const grown = Buffer.concat([before, randomBytes(300_000)]);
  randomBytes(100).copy(grown, 0);
  randomBytes(70_000).copy(grown, 5 * MiB);
  const read = await check(before, grown, [
    { offset: 0, length: 100 },
    { offset: 5 * MiB, length: 70_000 },
    { offset: before.length, length: 300_000 },
  ]);
  assert.ok(read < 8 * MiB, `read ${read}`);
  await check(before, before.subarray(0, 9 * MiB + 5), []);
});

test('no change reads nothing; random cases match the full cut', async () => {
  const base = randomBytes(6 * MiB);
  assert.equal(await check(base, base, []), 0);
  for (let i = 0; i < 10; i++) {
    const after = Buffer.from(base);
    const dirty: ByteRange[] = [];
    for (let j = 0; j < 3; j++) {
      const len = 1 + Math.floor(Math.random() * 200_000);
      const off = Math.floor(Math.random() * (after.length - len));
      randomBytes(len).copy(after, off);
      dirty.push({ offset: off, length: len });
    }
    await check(base, after, dirty);
  }
});
