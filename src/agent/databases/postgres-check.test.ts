/**
 * The PostgreSQL check on real clusters (initdb as the postgres user in a temporary directory):
 * a sound cluster passes amcheck and a configured query; a btree index page overwritten with
 * garbage fails and the detail names the index; a failing query fails; the copy is always
 * stopped afterwards (no postmaster left running).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkPostgres, connectTarget } from './postgres-check.js';

const BIN = '/usr/lib/postgresql/15/bin';
const skip = !existsSync(join(BIN, 'initdb')) || process.getuid?.() !== 0 ? 'needs root and PostgreSQL 15 (postgresql-15)' : false;

function pgIds(): { uid: number; gid: number } {
  return { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
}

/** A fresh cluster with a table and two indexes, made in single-user mode (no server, no port). */
function cluster(): { dir: string; data: string; sql(text: string): string; done(): void } {
  const ids = pgIds();
  const dir = mkdtempSync(join(tmpdir(), 'hf-pgcheck-'));
  chownSync(dir, ids.uid, ids.gid);
  const data = join(dir, 'data');
  execFileSync(join(BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { ...ids, cwd: dir, stdio: 'ignore' });
  const sql = (text: string): string => execFileSync(join(BIN, 'postgres'), ['--single', '-D', data, 'postgres'], { ...ids, cwd: dir, input: text, stdio: ['pipe', 'pipe', 'ignore'] }).toString();
  sql(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
CREATE INDEX items_name ON items (name);
`);
  return { dir, data, sql, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function postmasterGone(data: string): boolean {
  return !existsSync(join(data, 'postmaster.pid'));
}

test('a sound cluster passes amcheck on every btree index and a configured query', { skip }, async () => {
  const c = cluster();
  try {
    const r = await checkPostgres({ dataDir: c.data, query: 'SELECT count(*) FROM items' });
    assert.equal(r.ok, true, r.detail);
    assert.match(r.detail, /amcheck: \d+ btree indexes/);
    assert.match(r.detail, /"20000"/);
    // items_pkey and items_name in postgres, plus the catalogs' indexes in every database
    assert.ok((r.counts?.indexes ?? 0) > 100, JSON.stringify(r.counts));
    assert.ok(postmasterGone(c.data), 'the copy was stopped');
  } finally {
    c.done();
  }
});

test('an index page overwritten with garbage fails the check and names the index', { skip }, async () => {
  const c = cluster();
  try {
    const out = c.sql("SELECT pg_relation_filepath('items_name')\n");
    const rel = /pg_relation_filepath = "([^"]+)"/.exec(out)?.[1];
    assert.ok(rel, out);
    const fd = openSync(join(c.data, rel), 'r+');
    writeSync(fd, randomBytes(8192), 0, 8192, 8192 * 2); // a leaf page, not the metapage
    closeSync(fd);
    const r = await checkPostgres({ dataDir: c.data });
    assert.equal(r.ok, false, r.detail);
    assert.match(r.detail, /items_name/);
    assert.ok(postmasterGone(c.data), 'the copy was stopped after a failed check');
  } finally {
    c.done();
  }
});

test('a failing check query fails; archiving stays off in the copy', { skip }, async () => {
  const c = cluster();
  try {
    // A source configured for WAL shipping: the copy must never run its archive_command.
    const marker = join(c.dir, 'archived');
    c.sql(`ALTER SYSTEM SET archive_mode = on;\nALTER SYSTEM SET archive_command = 'touch ${marker}';\n`);
    const r = await checkPostgres({ dataDir: c.data, query: 'SELECT count(*) FROM no_such_table', noAmcheck: true });
    assert.equal(r.ok, false);
    assert.match(r.detail, /no_such_table/);
    assert.equal(existsSync(marker), false);
    assert.ok(postmasterGone(c.data));
  } finally {
    c.done();
  }
});

test('a directory that is not a cluster fails clearly', { skip }, async () => {
  const c = cluster();
  try {
    rmSync(join(c.data, 'PG_VERSION'));
    const r = await checkPostgres({ dataDir: c.data });
    assert.equal(r.ok, false);
    assert.match(r.detail, /not a PostgreSQL data directory/);
  } finally {
    c.done();
  }
});

test('connectTarget reads the role and database of a URL or conninfo', () => {
  assert.deepEqual(connectTarget('postgresql://app@/shop?host=/tmp/x&port=5433'), { user: 'app', database: 'shop' });
  assert.deepEqual(connectTarget("host=/tmp/x user=app dbname='shop'"), { user: 'app', database: 'shop' });
  assert.deepEqual(connectTarget(undefined), {});
});
