import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { encodeChunk } from '../core/codec.js';
import { digestOf } from '../core/digest.js';
import { Pool } from './pool.js';
import { verifyPool } from './verify.js';

const DAY = 24 * 3600_000;

/** Ships `data` as one raw chunk in its own session (so its own pack) as log record `name`; returns the chunk's location. */
async function store(pool: Pool, name: string, data: Buffer): Promise<{ pack: string; offset: number }> {
  const s = pool.startSession(0);
  const digest = digestOf(data);
  assert.ok(s.claim(digest));
  await s.put([{ digest, length: data.length, encoded: encodeChunk(data, 0) }]);
  await s.finish();
  await pool.commitLog({ source: 'db', name, kind: 'pg-wal', meta: {}, manifest: [[digest, data.length]] }, s);
  const loc = pool.index.get(digest);
  assert.ok(loc);
  return loc;
}

function flipByte(file: string, offset: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = (b[0] as number) ^ 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

test('verify --full --older-than re-hashes the packs not re-hashed within the span (one hashed long ago, one never) and not a recently hashed one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-verify-'));
  await Pool.init(join(dir, 'pool'));
  const pool = await Pool.open(join(dir, 'pool'));
  try {
    const recent = await store(pool, '000000010000000000000001', randomBytes(100_000));
    const old = await store(pool, '000000010000000000000002', randomBytes(100_000));
    const first = await verifyPool(pool, { full: true });
    assert.ok(first.ok);
    const hashedAt = pool.catalog.packsVerified().get(recent.pack);
    assert.ok(hashedAt !== undefined);
    pool.catalog.setPacksVerified([old.pack], Date.now() - 2 * DAY);
    const fresh = await store(pool, '000000010000000000000003', randomBytes(100_000));
    assert.equal(new Set([recent.pack, old.pack, fresh.pack]).size, 3);
    // A flipped byte in the recent pack: only a re-hash can see it, so this run must not.
    flipByte(pool.paths.pack(recent.pack), recent.offset + 10);

    const started = Date.now();
    const r = await verifyPool(pool, { full: true, olderThanMs: DAY });
    assert.equal(r.packs, 3);
    assert.equal(r.recentPacks, 1);
    assert.equal(r.bytesRead, statSync(pool.paths.pack(old.pack)).size + statSync(pool.paths.pack(fresh.pack)).size);
    assert.ok(r.ok, 'the recent pack got only the quick check');
    const times = pool.catalog.packsVerified();
    assert.equal(times.get(recent.pack), hashedAt);
    assert.ok((times.get(old.pack) ?? 0) >= started && (times.get(fresh.pack) ?? 0) >= started);

    // Without --older-than every pack is re-hashed, and the flipped byte is found.
    const all = await verifyPool(pool, { full: true, record: false });
    assert.equal(all.recentPacks, 0);
    assert.deepEqual(all.damagedChunks.map((c) => c.pack), [recent.pack]);
    assert.deepEqual(all.damagedLogs?.map((l) => l.seq), [1]);
  } finally {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
