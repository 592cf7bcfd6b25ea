/**
 * A cluster in Debian's layout: postgresql.conf (with a conf.d include, data_directory and an
 * external pid file), pg_hba.conf and pg_ident.conf outside the data directory, peer
 * authentication only. The express full keeps the configuration with the point; a restore writes
 * it into the copy without the settings that name the live cluster's files, starts it and reaches
 * its target though only peer authentication is allowed; a drill of the point passes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './cli-harness.js';
import { ProtectedPg, connectRestored, pgSkip, stopRestored } from './pg-harness.js';

describe("PostgreSQL in Debian's layout (configuration outside the data directory)", { skip: pgSkip, timeout: 300_000 }, () => {
  const tmp = scratch('holdfast-pgdeb-');
  const dir = (n: string): string => join(tmp.dir, n);
  let p: ProtectedPg;

  before(async () => {
    chmodSync(tmp.dir, 0o755);
    p = await ProtectedPg.start(dir, {
      layout: 'debian',
      prepare: async (db) => {
        await db.query('CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)');
        await db.query("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g");
      },
    });
  });

  after(async () => {
    await p?.stop();
    tmp.cleanup();
  });

  it('a restore writes the configuration into the copy, never the live paths, and recovers to the latest commit', async () => {
    const { server, db } = p;
    await server.cliOk(['sync', 'db', '--wait']);
    await db.query("INSERT INTO t SELECT g, 'later' FROM generate_series(501, 800) g");
    await p.shipCurrentSegment();

    const livePid = readFileSync(join(db.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0];
    const to = dir('restore');
    const r = await server.cli(['restore', '--source', 'db', '--latest', '--to', to, '--json']);
    assert.equal(r.code, 0, r.stderr);
    p.restored.push(to);
    const conf = readFileSync(join(to, 'postgresql.conf'), 'utf8');
    assert.match(conf, /^work_mem = '7MB'$/m, 'the conf.d include is part of the configuration');
    assert.doesNotMatch(conf, /data_directory|external_pid_file|hba_file|ident_file/, 'nothing that names the live cluster');
    assert.ok(!conf.includes(db.dataDir), "the live data directory's path is not in the copy's configuration");
    assert.equal(readFileSync(join(to, 'pg_hba.conf'), 'utf8'), 'local all all peer\n');

    const d = (JSON.parse(r.stdout) as { database: { port: number; socket: string } }).database;
    const c = await connectRestored(d.socket, d.port, 'root');
    try {
      const row = (await c.query<{ n: number; w: string }>("SELECT count(*)::int AS n, current_setting('work_mem') AS w FROM t")).rows[0];
      assert.equal(row?.n, 800, 'every committed row');
      assert.equal(row?.w, '7MB');
    } finally {
      await c.end();
      stopRestored(to);
    }
    assert.equal(readFileSync(join(db.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0], livePid, 'the live cluster was not touched');
    assert.equal((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM t'))[0]?.n, 800);
  });

  it('a drill of the point starts the copy with its configuration and passes', async () => {
    const r = await p.server.cli(['drill', 'db', '--wait', '--json']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal((JSON.parse(r.stdout) as { ok: boolean }).ok, true);
  });
});
