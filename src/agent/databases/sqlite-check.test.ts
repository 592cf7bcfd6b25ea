/**
 * The SQLite check on real files: a sound database (with a -wal file beside it, as a restore
 * of a live database leaves it) passes; a page overwritten with garbage fails with SQLite's own
 * words; a file that is not a database fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, copyFileSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { checkSqlite } from './sqlite-check.js';

function scratch(): { dir: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'hf-sqlitecheck-'));
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function fill(file: string, rows: number): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL); CREATE INDEX items_name ON items(name)');
  const ins = db.prepare('INSERT INTO items (id, name) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= rows; i++) ins.run(i, `name-${i}-${'x'.repeat(i % 50)}`);
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

test('a sound database with a live -wal passes integrity_check and the query', async () => {
  const s = scratch();
  try {
    const src = join(s.dir, 'live.db');
    fill(src, 5000);
    // A writer keeps the database open with un-checkpointed frames: copy db and -wal as a restore would.
    const live = new Database(src);
    live.pragma('wal_autocheckpoint = 0');
    live.prepare('INSERT INTO items (id, name) VALUES (?, ?)').run(999_999, 'only-in-wal');
    copyFileSync(src, join(s.dir, 'copy.db'));
    copyFileSync(`${src}-wal`, join(s.dir, 'copy.db-wal'));
    live.close();
    const r = await checkSqlite({ file: join(s.dir, 'copy.db'), query: "SELECT count(*) FROM items WHERE name = 'only-in-wal'" });
    assert.equal(r.ok, true, r.detail);
    assert.match(r.detail, /integrity_check of \d+ pages, 1 tables: ok; check query answered "1"/);
  } finally {
    s.done();
  }
});

test('a page overwritten with garbage fails the check', async () => {
  const s = scratch();
  try {
    const f = join(s.dir, 'bad.db');
    fill(f, 20000);
    const fd = openSync(f, 'r+');
    writeSync(fd, randomBytes(4096), 0, 4096, 4096 * 20);
    closeSync(fd);
    const r = await checkSqlite({ file: f });
    assert.equal(r.ok, false, r.detail);
    assert.match(r.detail, /problem/);
    assert.ok(existsSync(f));
  } finally {
    s.done();
  }
});

test('a file that is not a database fails', async () => {
  const s = scratch();
  try {
    const f = join(s.dir, 'not.db');
    writeFileSync(f, randomBytes(8192));
    const r = await checkSqlite({ file: f });
    assert.equal(r.ok, false);
    assert.match(r.detail, /SQLITE_NOTADB|not a database/);
  } finally {
    s.done();
  }
});
