/**
 * PostgreSQL protection end to end, with a real cluster, server and agent: express fulls under
 * load, WAL shipped through archive_command → holdfast log-push → the agent → the server, and
 * point-in-time restores to random times chosen between commits, each of which must hold exactly
 * the rows committed at or before its target. The agent is killed -9 while segments are being
 * archived (PostgreSQL retries; the chain has no gap), and the server's pool runs out of space
 * (archive_command fails, PostgreSQL keeps its WAL, shipping catches up when space returns).
 * Last, a retention that keeps only the newer express full prunes the older one with the WAL
 * only it needed, and the kept full and times after it still restore exactly.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { scratch, sh } from './cli-harness.js';
import { TestAgent, TestServer, sleep, until } from './server-harness.js';
import { TestPg, connectRestored, pgSkip, stopRestored } from './pg-harness.js';

const canMount = process.getuid?.() === 0 && spawnSync('mkfs.ext4', ['-V']).status === 0;

interface Row {
  id: number;
  /** clock_timestamp() inside the transaction (ms): the commit came after it */
  ts: number;
  /** when the client had the commit's answer (ms): the commit came before it */
  ack: number;
}

interface LogJson {
  name: string;
  seq: number;
  time: string;
}

interface PruneJson {
  removed: number;
  logsRemoved: number;
  groups: Array<{ sources: Array<{ source: string; logs: { records: number; bytes: number; first: string | null; last: string | null } }> }>;
}

/** Commits one small row at a time (and switches WAL now and then) until stopped; rows in order. */
function startWriter(c: pg.Client, rows: Row[]): { stop(): Promise<void> } {
  let stopping = false;
  const done = (async () => {
    for (let n = 0; !stopping; n++) {
      const r = await c.query<{ id: number; ts: string }>('INSERT INTO t (v) VALUES ($1) RETURNING id, (extract(epoch from clock_timestamp()) * 1000)::text AS ts', [`row ${n} ${'x'.repeat(200)}`]);
      const ack = Date.now();
      const row = r.rows[0] as { id: number; ts: string };
      rows.push({ id: row.id, ts: Number(row.ts), ack });
      if (n % 25 === 24) await c.query('SELECT pg_switch_wal()');
      await sleep(20 + Math.random() * 40);
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

/** Bulk load beside the writer: about a MiB of WAL a second (a shared 2-core machine ships it comfortably). */
function startLoad(c: pg.Client): { stop(): Promise<void> } {
  let stopping = false;
  const done = (async () => {
    while (!stopping) {
      await c.query("INSERT INTO bulk SELECT g, md5(random()::text) || repeat('y', 100) FROM generate_series(1, 1000) g");
      await c.query('DELETE FROM bulk WHERE random() < 0.5');
      await sleep(250);
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

/** Target times strictly between two commits (a gap of at least 10 ms), after `from` and before `to`. */
function targetsBetween(rows: Row[], from: number, to: number): Array<{ at: number; lastId: number }> {
  const out: Array<{ at: number; lastId: number }> = [];
  for (let i = 0; i + 1 < rows.length; i++) {
    const a = rows[i] as Row;
    const b = rows[i + 1] as Row;
    if (b.ts - a.ack >= 10 && a.ack > from && b.ts < to) out.push({ at: Math.floor((a.ack + b.ts) / 2), lastId: a.id });
  }
  return out;
}

const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

describe('PostgreSQL: express fulls, WAL shipping and point-in-time restore', { skip: pgSkip, timeout: 600_000 }, () => {
  const tmp = scratch('holdfast-pg-');
  const dir = (n: string): string => join(tmp.dir, n);
  let server: TestServer;
  let agent: TestAgent;
  let db: TestPg;
  let mounted = false;
  const rows: Row[] = [];
  const points: Array<{ point: string; time: string }> = [];
  const restored: string[] = [];

  const logs = async (): Promise<LogJson[]> => server.admin().json<LogJson[]>('GET', '/api/v1/sources/db/logs');
  const archiver = async (): Promise<{ archived_count: number; failed_count: number; last_archived_wal: string | null; last_failed_wal: string | null }> =>
    (await db.query<{ archived_count: number; failed_count: number; last_archived_wal: string | null; last_failed_wal: string | null }>('SELECT archived_count::int, failed_count::int, last_archived_wal, last_failed_wal FROM pg_stat_archiver'))[0] as never;
  /** PostgreSQL's last lines about archiving: what archive_command answered. */
  const failures = (): string => db.log.split('\n').filter((l) => /archive|log-push|holdfast/i.test(l)).slice(-12).join('\n');
  /** Switches WAL and waits until that segment is on the server: everything committed before is shippable. */
  const flushWal = async (timeoutMs = 180_000): Promise<string> => {
    // The segment the switch completed: when nothing was written since the last switch (the insert
    // position on a segment's first byte) it does nothing, and the segment holding every commit is
    // the one before. Naming the segment the insert position is in waited for one never archived.
    const [{ seg, switched } = { seg: '', switched: '' }] = await db.query<{ seg: string; switched: string }>('SELECT pg_walfile_name(lsn) AS seg, lsn::text AS switched FROM pg_switch_wal() AS lsn');
    await until(`segment ${seg} on the server`, async () => (await logs()).some((l) => l.name >= seg && !l.name.endsWith('.history')), timeoutMs, 300).catch(async (err: Error) => {
      // Say where shipping stood: a slow machine and a failing archive_command look alike from here.
      const shipped = (await logs().catch(() => [])).slice(-3).map((l) => `${l.name} ${l.time}`).join(', ');
      const stat = JSON.stringify(await archiver().catch((e: Error) => e.message));
      const wal = JSON.stringify(await db.query('SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS file').catch((e: Error) => e.message));
      const ready = readdirSync(join(db.dataDir, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready')).join(' ');
      const pushing = spawnSync('pgrep', ['-af', 'log-push'], { encoding: 'utf8' }).stdout.trim();
      const facts = `${err.message}\n--- pg_stat_archiver: ${stat}\n--- switched at ${switched} (completing ${seg}); now ${wal}; .ready: ${ready || 'none'}; log-push running: ${pushing || 'none'}\n--- last on the server: ${shipped}`;
      if (process.env.HOLDFAST_TEST_DUMP) writeFileSync(`${process.env.HOLDFAST_TEST_DUMP}-${Date.now()}.log`, `${facts}\n=== postgres\n${db.log}\n=== agent\n${agent.log}\n=== server\n${server.log}`);
      throw new Error(`${facts}\n--- archive_command:\n${failures()}\n--- agent:\n${agent.log.slice(-1500)}\n--- server:\n${server.log.slice(-1500)}`);
    });
    return seg;
  };
  const restoreAt = async (args: string[], name: string): Promise<{ ids: number[]; result: Record<string, unknown>; to: string }> => {
    const to = dir(`restore-${name}`);
    const r = await server.cli(['restore', '--source', 'db', ...args, '--to', to, '--json']);
    assert.equal(r.code, 0, `restore ${args.join(' ')} failed: ${r.stderr}`);
    const result = JSON.parse(r.stdout) as Record<string, unknown>;
    const d = result.database as { port: number; socket: string };
    restored.push(to);
    const c = await connectRestored(d.socket, d.port);
    try {
      const ids = (await c.query<{ id: number }>('SELECT id FROM t ORDER BY id')).rows.map((x) => x.id);
      return { ids, result, to };
    } finally {
      await c.end();
      stopRestored(to);
    }
  };
  const expectRows = (ids: number[], lastId: number, what: string): void => {
    const want = rows.filter((x) => x.id <= lastId).map((x) => x.id);
    assert.equal(ids.length, want.length, `${what}: ${ids.length} rows restored, ${want.length} committed at or before the target (last ${lastId}, restored last ${ids[ids.length - 1]})`);
    assert.deepEqual(ids, want, what);
  };

  before(async () => {
    chmodSync(tmp.dir, 0o755); // the postgres user runs archive_command and reaches the agent's socket through it
    mkdirSync(dir('server'));
    if (canMount) {
      // The pool alone on a small file system, to run it out of space later.
      sh('truncate', ['-s', '400M', dir('fs.img')]);
      sh('mkfs.ext4', ['-q', '-F', '-m', '0', dir('fs.img')]); // no reserved blocks: the server runs as root
      mkdirSync(dir('mnt'));
      sh('mount', ['-o', 'loop', dir('fs.img'), dir('mnt')]);
      mounted = true;
      mkdirSync(join(dir('mnt'), 'pool'));
      symlinkSync(join(dir('mnt'), 'pool'), join(dir('server'), 'pool'));
    }
    server = await TestServer.start(dir('server'), ['--gc-every', 'off', '--verify-every', 'off']);
    agent = await TestAgent.start(server, 'dbhost', dir('agent'));
    db = await TestPg.init(dir('pg'));
    await db.query('CREATE TABLE t (id serial PRIMARY KEY, v text NOT NULL)');
    await db.query('CREATE TABLE bulk (k int, v text)');
    await server.cliOk(['group', 'create', 'g', '--sync-every', 'off']);
    await server.cliOk(['source', 'add', '--group', 'g', '--agent', 'dbhost', '--kind', 'postgres', '--connect', db.url, 'db', db.dataDir]);
  });

  after(async () => {
    if (process.env.HOLDFAST_PG_DEBUG) writeFileSync(process.env.HOLDFAST_PG_DEBUG, `--- agent\n${agent?.log}\n--- server\n${server?.log}\n--- postgres\n${db?.log}`);
    for (const r of restored) stopRestored(r);
    db?.stop();
    await agent?.kill();
    await server?.kill();
    if (mounted) spawnSync('umount', ['-l', dir('mnt')]);
    tmp.cleanup();
  });

  it('an express full under load configures archiving; WAL segments ship and the chain has no gap', async () => {
    const w = await db.client();
    const l = await db.client();
    const writer = startWriter(w, rows);
    const load = startLoad(l);
    try {
      await sleep(1500);
      const p1 = await server.json<{ point: string; time: string }>(['sync', 'db', '--wait']);
      points.push(p1);
      const settings = await db.query<{ name: string; setting: string }>("SELECT name, setting FROM pg_settings WHERE name IN ('archive_command', 'archive_timeout')");
      const cmd = settings.find((s) => s.name === 'archive_command')?.setting ?? '';
      assert.match(cmd, /log-push --socket '.*log\.sock' --source 'db' --key '[A-Za-z0-9_-]+' %p %f/);
      assert.equal(settings.find((s) => s.name === 'archive_timeout')?.setting, '900', "the group syncs 'off': the 15-minute default");
      await sleep(4000);
    } finally {
      await writer.stop();
      await load.stop();
      await w.end();
      await l.end();
    }
    await flushWal();
    const chain = await logs();
    assert.ok(chain.length >= 3, `${chain.length} segments shipped`);
    const view = await server.admin().json<{ recoverable: { from: string; to: string } | null }>('GET', '/api/v1/sources/db');
    assert.equal(view.recoverable?.from, points[0]?.time);
    assert.equal(view.recoverable?.to, chain[chain.length - 1]?.time);
    const alerts = await server.admin().json<Array<{ kind: string; state: string }>>('GET', '/api/v1/alerts?state=active');
    assert.ok(!alerts.some((a) => a.kind === 'log-gap'), 'no gap');
  });

  it('kill -9 of the agent while segments are archived: PostgreSQL retries, no segment is lost', async () => {
    const w = await db.client();
    const l = await db.client();
    const writer = startWriter(w, rows);
    const load = startLoad(l);
    const before = await archiver();
    try {
      await sleep(1500);
      await agent.kill('SIGKILL');
      await sleep(3000); // several switches meanwhile: archive_command fails, PostgreSQL keeps the segments
      const during = await archiver();
      assert.ok(during.failed_count > before.failed_count, 'archive_command failed while the agent was down');
      agent.restart();
      await agent.waitOnline();
      // A second express full with the chain running: restores after it start from it.
      points.push(await server.json<{ point: string; time: string }>(['sync', 'db', '--wait']));
      await sleep(3000);
    } finally {
      await writer.stop();
      await load.stop();
      await w.end();
      await l.end();
    }
    await flushWal();
    const chain = (await logs()).filter((x) => /^[0-9A-F]{24}$/.test(x.name));
    const segnos = chain.map((x) => parseInt(x.name.slice(8, 16), 16) * 256 + parseInt(x.name.slice(16), 16));
    for (let i = 1; i < segnos.length; i++) assert.equal(segnos[i], (segnos[i - 1] as number) + 1, `segment after ${chain[i - 1]?.name} is ${chain[i]?.name}`);
    const alerts = await server.admin().json<Array<{ kind: string }>>('GET', '/api/v1/alerts?state=active');
    assert.ok(!alerts.some((a) => a.kind === 'log-gap'), 'no log-gap alert');
  });

  it('restores to random times between commits hold exactly the rows committed by then', async () => {
    const end = Date.parse((await logs()).at(-1)?.time as string);
    const p1 = Date.parse(points[0]?.time as string);
    const p2 = Date.parse(points[1]?.time as string);
    const early = targetsBetween(rows, p1, p2);
    const late = targetsBetween(rows, p2, end);
    assert.ok(early.length > 0 && late.length > 0, 'commits on both sides of the second express full');
    for (const [i, t] of [pick(early), pick(late)].entries()) {
      const at = new Date(t.at).toISOString();
      const { ids, result } = await restoreAt(['--at', at], `at${i}`);
      expectRows(ids, t.lastId, `restore to ${at}`);
      assert.equal(result.point, i === 0 ? points[0]?.point : points[1]?.point, 'the nearest express full before the target');
      assert.match(String((result.database as { stopped: string }).stopped), /recovery stopping before commit/);
    }
    // --latest: everything committed (the writer stopped and its last segment shipped).
    const { ids } = await restoreAt(['--latest'], 'latest');
    expectRows(ids, rows.at(-1)?.id as number, 'restore --latest');
  });

  it('--point restores the express full alone; --no-start only prepares; a time beyond the chain is refused naming the range', async () => {
    const { ids } = await restoreAt(['--point', points[0]?.point as string], 'point');
    // The copy is consistent at the backup's end: every row acknowledged before the sync began is there.
    assert.ok(ids.length > 0 && ids.length <= rows.length);
    assert.deepEqual(ids, rows.slice(0, ids.length).map((x) => x.id), 'a prefix of the committed rows');

    const to = dir('restore-prepared');
    const at = new Date(Date.parse(points[1]?.time as string) + 500).toISOString();
    const r = await server.cli(['restore', '--source', 'db', '--at', at, '--to', to, '--no-start', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(join(to, 'recovery.signal')) && existsSync(join(to, 'backup_label')));
    assert.ok(!existsSync(join(to, 'postmaster.pid')), 'not started');
    assert.match(readFileSync(join(to, 'postgresql.auto.conf'), 'utf8'), new RegExp(`recovery_target_time = '${at.replace('T', ' ').replace('Z', '\\+00')}'`));
    assert.ok(readdirSync(`${to}.holdfast-wal`).length >= 1, 'the WAL it needs is fetched');

    const future = new Date(Date.now() + 3_600_000).toISOString();
    const beyond = await server.cli(['restore', '--source', 'db', '--at', future, '--to', dir('restore-future')]);
    assert.notEqual(beyond.code, 0);
    assert.match(beyond.stderr, /outside the recoverable range of source 'db': \S+ – \S+/);
    const tooEarly = await server.cli(['restore', '--source', 'db', '--at', '2000-01-01T00:00:00Z', '--to', dir('restore-early')]);
    assert.match(tooEarly.stderr, /outside the recoverable range/);
  });

  it('a full pool fails archive_command; PostgreSQL keeps its WAL; shipping catches up when space returns', { skip: !canMount && 'needs root and mkfs.ext4' }, async () => {
    const filler = join(dir('mnt'), 'filler');
    // Fill the file system to the last block: with any slack left, the chunks of a failed segment
    // that did fit stay stored, each retry gets further, and a segment would land now and then.
    const df = spawnSync('df', ['--output=avail', '-B1', dir('mnt')], { encoding: 'utf8' }).stdout.trim().split('\n')[1];
    sh('fallocate', ['-l', String(Math.max(0, Number(df) - 1024 * 1024)), filler]);
    spawnSync('dd', ['if=/dev/zero', `of=${filler}-rest`, 'bs=4k'], { stdio: 'ignore' }); // ends with ENOSPC
    const w = await db.client();
    const l = await db.client();
    const writer = startWriter(w, rows);
    const load = startLoad(l);
    const failedBefore = (await archiver()).failed_count;
    try {
      await until('archive_command to fail', async () => (await archiver()).failed_count > failedBefore + 1, 60_000, 500);
      const poolFull = async (): Promise<boolean> => (await server.admin().json<Array<{ kind: string }>>('GET', '/api/v1/alerts?state=active')).some((a) => a.kind === 'pool-full');
      await until('the pool-full alert', poolFull, 20_000, 300).catch((err: Error) => {
        throw new Error(`${err.message}\n--- archive_command:\n${failures()}`);
      });
      const ready = readdirSync(join(db.dataDir, 'pg_wal', 'archive_status')).filter((f) => f.endsWith('.ready'));
      assert.ok(ready.length >= 1, 'PostgreSQL keeps the segments it could not archive');
    } finally {
      await writer.stop();
      await load.stop();
      await w.end();
      await l.end();
    }
    rmSync(filler);
    rmSync(`${filler}-rest`);
    // PostgreSQL's archiver waits up to a minute after three failures, then ships the backlog one
    // log-push process per segment: on a loaded CI machine that took over two minutes once.
    const seg = await flushWal(240_000);
    // PostgreSQL records the success a moment after the server committed it.
    await until('PostgreSQL to count the segment archived', async () => ((await archiver()).last_archived_wal ?? '') >= seg, 30_000, 300);
    const chain = (await logs()).filter((x) => /^[0-9A-F]{24}$/.test(x.name));
    const segnos = chain.map((x) => parseInt(x.name.slice(8, 16), 16) * 256 + parseInt(x.name.slice(16), 16));
    for (let i = 1; i < segnos.length; i++) assert.equal(segnos[i], (segnos[i - 1] as number) + 1, `segment after ${chain[i - 1]?.name}`);
    const { ids } = await restoreAt(['--latest'], 'after-full');
    expectRows(ids, rows.at(-1)?.id as number, 'restore --latest after the pool was full');
  });

  it('a retention that keeps only the newer express full prunes the WAL only the older one needed; the kept full and times after it still restore', async () => {
    const [p1, p2] = points as [{ point: string; time: string }, { point: string; time: string }];
    const chain = await logs();
    await server.cliOk(['group', 'edit', 'g', '--retain', '1s', '--keep-last', '1']);
    const dry = await server.json<PruneJson>(['prune', '--dry-run']);
    const gone = dry.groups[0]?.sources.find((x) => x.source === 'db')?.logs;
    assert.ok(gone && gone.records > 0, 'the older full needed segments the newer one does not');
    assert.deepEqual([dry.removed, dry.logsRemoved], [1, gone.records]);
    assert.equal(chain[gone.records - 1]?.name, gone.last, 'the records before the first one the kept full needs');
    assert.match(await server.cliOk(['prune', '--dry-run']), new RegExp(`would remove db log records ${gone.first} … ${gone.last} \\(${gone.records}, `));
    assert.deepEqual(await logs(), chain, 'a dry run removes nothing');

    const r = await server.json<PruneJson>(['prune']);
    assert.deepEqual([r.removed, r.logsRemoved, r.groups[0]?.sources[0]?.logs], [1, gone.records, gone]);
    const after = await logs();
    assert.deepEqual(after.slice(0, chain.length - gone.records), chain.slice(gone.records), 'every later record stays');
    const view = await server.admin().json<{ recoverable: { from: string } | null }>('GET', '/api/v1/sources/db');
    assert.equal(view.recoverable?.from, p2.time, 'the recoverable range starts at the kept full');

    // The kept full restores by itself, and the chain starts exactly at its backup's first segment.
    const { ids, to } = await restoreAt(['--point', p2.point], 'kept-full');
    assert.deepEqual(ids, rows.slice(0, ids.length).map((x) => x.id), 'a prefix of the committed rows');
    const startWal = /START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)/.exec(readFileSync(join(to, 'backup_label.old'), 'utf8'))?.[1];
    assert.equal(after.find((l) => !l.name.endsWith('.history'))?.name, startWal, 'the chain starts at the segment the kept full starts in');

    // A time after the kept full replays the kept chain exactly; one before it is out of range now.
    const late = targetsBetween(rows, Date.parse(p2.time), Date.parse(after.at(-1)?.time as string));
    const t = pick(late);
    const at = new Date(t.at).toISOString();
    const res = await restoreAt(['--at', at], 'after-prune');
    expectRows(res.ids, t.lastId, `restore to ${at} after the prune`);
    assert.equal(res.result.point, p2.point);
    const early = new Date(pick(targetsBetween(rows, Date.parse(p1.time), Date.parse(p2.time))).at).toISOString();
    const refused = await server.cli(['restore', '--source', 'db', '--at', early, '--to', dir('restore-pruned')]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /outside the recoverable range/);
  });

  it('the restored copy is ours to keep: it archives nothing into the source chain', () => {
    for (const r of restored) assert.match(readFileSync(join(r, 'postgresql.auto.conf'), 'utf8'), /archive_mode = 'off'/);
  });
});
