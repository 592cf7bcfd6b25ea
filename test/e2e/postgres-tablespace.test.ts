/**
 * A PostgreSQL cluster with a tablespace outside its data directory: the express full holds the
 * tablespace's files (read through pg_tblspc/<oid>), and a restore to another place puts them
 * beside the copy (<target>.tablespaces/<oid>, linked from pg_tblspc), never reading or writing the
 * live cluster's tablespace.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './cli-harness.js';
import { PG_USER, ProtectedPg, connectRestored, pgSkip, stopRestored } from './pg-harness.js';

describe('PostgreSQL: a tablespace outside the data directory', { skip: pgSkip, timeout: 300_000 }, () => {
  const tmp = scratch('holdfast-pgts-');
  const dir = (n: string): string => join(tmp.dir, n);
  let p: ProtectedPg;
  let point = '';

  const tablespaceFiles = (): string[] => {
    const out: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(d, e.name));
        else out.push(join(d, e.name));
      }
    };
    walk(dir('ts'));
    return out.sort();
  };

  const restoreTo = async (name: string, args: string[]): Promise<{ count: number; sum: number; to: string }> => {
    const to = dir(name);
    const r = await p.server.cli(['restore', '--source', 'db', ...args, '--to', to, '--json']);
    assert.equal(r.code, 0, `restore ${args.join(' ')}: ${r.stderr}`);
    p.restored.push(to);
    const d = (JSON.parse(r.stdout) as { database: { port: number; socket: string } }).database;
    const c = await connectRestored(d.socket, d.port);
    try {
      const row = (await c.query<{ n: number; s: number }>('SELECT count(*)::int AS n, coalesce(sum(id), 0)::int AS s FROM tt')).rows[0];
      return { count: row?.n ?? -1, sum: row?.s ?? -1, to };
    } finally {
      await c.end();
      stopRestored(to);
    }
  };

  before(async () => {
    chmodSync(tmp.dir, 0o755);
    p = await ProtectedPg.start(dir, {
      prepare: async (db) => {
        const u = PG_USER as { uid: number; gid: number };
        mkdirSync(dir('ts'), { mode: 0o700 });
        chownSync(dir('ts'), u.uid, u.gid);
        await db.query(`CREATE TABLESPACE ts LOCATION '${dir('ts')}'`);
        await db.query('CREATE TABLE tt (id int PRIMARY KEY, v text NOT NULL) TABLESPACE ts');
        await db.query("INSERT INTO tt SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 2000) g");
      },
    });
  });

  after(async () => {
    await p?.stop();
    tmp.cleanup();
  });

  it('the express full holds the tablespace; a restore of the point brings back its rows inside the copy', async () => {
    point = (await p.server.json<{ point: string }>(['sync', 'db', '--wait'])).point;
    await p.db.query("INSERT INTO tt SELECT g, 'after the full' FROM generate_series(2001, 3000) g");
    const before = tablespaceFiles();
    const { count, sum, to } = await restoreTo('restore-point', ['--point', point]);
    assert.equal(count, 2000, 'the rows of the express full, read from the restored tablespace');
    assert.equal(sum, (2000 * 2001) / 2);
    const links = readdirSync(join(to, 'pg_tblspc'));
    assert.equal(links.length, 1, 'one tablespace');
    const link = join(to, 'pg_tblspc', links[0] as string);
    assert.equal(readlinkSync(link), join(`${to}.tablespaces`, links[0] as string), "the copy's tablespace lives beside it, not at the live cluster's location");
    assert.ok(statSync(link).isDirectory());
    assert.deepEqual(tablespaceFiles(), before, 'the live tablespace was not touched');
    const live = (await p.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tt'))[0];
    assert.equal(live?.n, 3000, 'the source cluster still reads its own rows');
  });

  it('a point-in-time restore replays the WAL into the restored tablespace', async () => {
    await p.shipCurrentSegment();
    const { count, sum } = await restoreTo('restore-latest', ['--latest']);
    assert.equal(count, 3000, 'every committed row, the later ones from the shipped WAL');
    assert.equal(sum, (3000 * 3001) / 2);
  });
});
