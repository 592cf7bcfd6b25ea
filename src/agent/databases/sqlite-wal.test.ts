import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { framesOf, readWal, FRAME_HEADER_BYTES, WAL_HEADER_BYTES } from './sqlite-wal.js';

function fixture(): { dir: string; db: Database.Database; path: string; insert(n: number): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hf-wal-'));
  const path = join(dir, 'app.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  return { dir, db, path, insert: (n) => db.transaction(() => { for (let i = 0; i < n; i++) ins.run('x'.repeat(300)); })() };
}

test('the WAL reader hands out whole committed transactions and continues where it stopped', () => {
  const f = fixture();
  try {
    f.insert(30);
    const a = readWal(`${f.path}-wal`);
    assert.ok(a.header && a.range);
    assert.equal(a.range.firstFrame, 1);
    const frames = [...framesOf(a.range.data, a.range.pageSize)];
    assert.equal(frames.length, a.range.lastFrame);
    assert.ok(frames.at(-1)!.commitPages > 0, 'the range ends with a commit frame');
    assert.equal(readWal(`${f.path}-wal`, { after: a.range.end }).range, undefined, 'nothing new');
    f.insert(5);
    const b = readWal(`${f.path}-wal`, { after: a.range.end });
    assert.equal(b.newGeneration, false);
    assert.equal(b.range!.firstFrame, a.range.lastFrame + 1);
    // The whole WAL, read in one go, is the two ranges back to back.
    const all = readWal(`${f.path}-wal`);
    assert.ok(all.range!.data.equals(Buffer.concat([a.range.data, b.range!.data])));
  } finally {
    f.db.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('the WAL reader stops at a damaged frame and before an uncommitted tail', () => {
  const f = fixture();
  try {
    f.insert(10);
    const first = readWal(`${f.path}-wal`).range!;
    f.insert(10);
    const whole = readWal(`${f.path}-wal`).range!;
    const frameBytes = FRAME_HEADER_BYTES + whole.pageSize;
    const wal = readFileSync(`${f.path}-wal`);
    // A copy cut in the middle of the second transaction: only the first is committed.
    const cut = join(f.dir, 'cut-wal');
    writeFileSync(cut, wal.subarray(0, WAL_HEADER_BYTES + (first.lastFrame + 1) * frameBytes));
    assert.equal(readWal(cut).range!.lastFrame, first.lastFrame);
    // One flipped byte in a page of the second transaction: its checksum breaks the chain there.
    const bad = Buffer.from(wal);
    bad[WAL_HEADER_BYTES + first.lastFrame * frameBytes + FRAME_HEADER_BYTES + 100]! ^= 0xff;
    const badPath = join(f.dir, 'bad-wal');
    writeFileSync(badPath, bad);
    assert.equal(readWal(badPath).range!.lastFrame, first.lastFrame);
    // A damaged header: no valid WAL at all.
    const hdr = Buffer.from(wal);
    hdr[9]! ^= 1;
    writeFileSync(badPath, hdr);
    assert.equal(readWal(badPath).header, undefined);
  } finally {
    f.db.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('a WAL reset (new salts) is a new generation read from frame 1', () => {
  const f = fixture();
  try {
    f.insert(20);
    const a = readWal(`${f.path}-wal`).range!;
    f.db.pragma('wal_checkpoint(RESTART)');
    f.insert(3); // the next writer starts the WAL over
    const b = readWal(`${f.path}-wal`, { after: a.end });
    assert.equal(b.newGeneration, true);
    assert.notEqual(b.generation, a.generation);
    assert.equal(b.range!.firstFrame, 1);
    assert.equal(b.range!.salt1, a.salt1 + 1, 'salt-1 counts resets');
    // A copy of the file in which the frame we stopped at was replaced is not trusted either.
    copyFileSync(`${f.path}-wal`, join(f.dir, 'copy-wal'));
    const c = readWal(join(f.dir, 'copy-wal'), { after: { ...b.range!.end, cksum: [1, 2] } });
    assert.equal(c.newGeneration, true);
    assert.equal(c.range!.firstFrame, 1);
  } finally {
    f.db.close();
    rmSync(f.dir, { recursive: true, force: true });
  }
});
