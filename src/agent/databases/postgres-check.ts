/**
 * The integrity check of a restored PostgreSQL data directory (a drill's scratch copy, never a
 * live cluster): start it as the directory's owner with pg_ctl on a private Unix socket, wait
 * until it accepts connections (recovery finished), run amcheck in every database — bt_index_check
 * with heapallindexed on every btree index, verify_heapam on every table where the extension has
 * it — and/or a configured query, then stop it.
 *
 * The copy is started with archiving off (its archive_command would push the copy's WAL into the
 * source's log chain), no TCP listener and a trust rule for the private socket only.
 */
import { mkdtemp, readFile, rm, stat, writeFile, chown, unlink, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HoldfastError } from '../../core/errors.js';
import { runProgram, tail, type CheckResult } from './database-check.js';
import { freePort } from './free-port.js';

export interface PostgresCheckOptions {
  /** the restored data directory (changed: its stale lock file is removed) */
  dataDir: string;
  /** directory of pg_ctl and psql; default /usr/lib/postgresql/<PG_VERSION>/bin */
  bin?: string;
  /** a role and database to connect as, e.g. from the source's libpq URL; default the owner's name and 'postgres' */
  user?: string;
  database?: string;
  /** a query that must succeed (run in `database`) — the check where amcheck is missing, or in addition */
  query?: string;
  /** skip amcheck even where it is available (the query alone) */
  noAmcheck?: boolean;
  /** start (including WAL replay) may take this long; default 10 min */
  startTimeoutMs?: number;
  /** each check statement; default 30 min */
  checkTimeoutMs?: number;
  signal?: AbortSignal;
}

/** Reported per database by the check block below, on stderr as NOTICE / WARNING lines. */
const AMCHECK_SQL = `
DO $hf$
DECLARE r record; n_idx int := 0; n_tab int := 0; bad int := 0; has_heap boolean; v record;
BEGIN
  SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'verify_heapam') INTO has_heap;
  FOR r IN SELECT c.oid, c.oid::regclass::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'btree' AND c.relpersistence <> 't' AND i.indisready AND i.indisvalid LOOP
    BEGIN
      PERFORM bt_index_check(r.oid, true);
      n_idx := n_idx + 1;
    EXCEPTION WHEN OTHERS THEN
      bad := bad + 1;
      RAISE WARNING 'holdfast-bad index %: %', r.name, SQLERRM;
    END;
  END LOOP;
  IF has_heap THEN
    FOR r IN SELECT c.oid, c.oid::regclass::text AS name FROM pg_class c JOIN pg_am a ON a.oid = c.relam
             WHERE c.relkind IN ('r', 'm', 't') AND a.amname = 'heap' AND c.relpersistence <> 't' LOOP
      BEGIN
        FOR v IN EXECUTE 'SELECT blkno, offnum, msg FROM verify_heapam($1) LIMIT 3' USING r.oid LOOP
          bad := bad + 1;
          RAISE WARNING 'holdfast-bad table % block % offset %: %', r.name, v.blkno, v.offnum, v.msg;
        END LOOP;
        n_tab := n_tab + 1;
      EXCEPTION WHEN OTHERS THEN
        bad := bad + 1;
        RAISE WARNING 'holdfast-bad table %: %', r.name, SQLERRM;
      END;
    END LOOP;
  END IF;
  RAISE NOTICE 'holdfast-checked % % %', n_idx, n_tab, bad;
END
$hf$;
`;

export async function checkPostgres(o: PostgresCheckOptions): Promise<CheckResult> {
  const started = Date.now();
  const st = await stat(o.dataDir).catch(() => undefined);
  if (!st?.isDirectory()) throw new HoldfastError('PATH_NOT_FOUND', `restored PostgreSQL data directory ${o.dataDir} does not exist`, { path: o.dataDir });
  if (st.uid === 0) throw new HoldfastError('BAD_ARGUMENT', `data directory ${o.dataDir} is owned by root; PostgreSQL runs only as an unprivileged owner`, { path: o.dataDir });
  const version = (await readFile(join(o.dataDir, 'PG_VERSION'), 'utf8').catch(() => '')).trim();
  if (!version) return { ok: false, detail: `${o.dataDir} is not a PostgreSQL data directory (no PG_VERSION)`, durationMs: Date.now() - started };
  const bin = o.bin ?? `/usr/lib/postgresql/${version}/bin`;
  await access(join(bin, 'pg_ctl')).catch(() => {
    throw new HoldfastError('BAD_ARGUMENT', `no pg_ctl in ${bin} for a PostgreSQL ${version} data directory (set the source's PostgreSQL bin directory)`, { path: bin });
  });
  const user = o.user ?? (await userName(st.uid)) ?? 'postgres';
  const database = o.database ?? 'postgres';
  const as = { uid: st.uid, gid: st.gid };

  // Private socket directory, short enough for sun_path, owned by the cluster's owner.
  const run = await mkdtemp(join(tmpdir(), 'hf-pg-'));
  await chown(run, st.uid, st.gid);
  const port = await freePort();
  const hba = join(run, 'hba.conf');
  await writeFile(hba, 'local all all trust\n');
  await chown(hba, st.uid, st.gid);
  // A copy of a running cluster carries its postmaster.pid; the copy is ours, the lock is not.
  await unlink(join(o.dataDir, 'postmaster.pid')).catch(() => undefined);
  const configFile = await access(join(o.dataDir, 'postgresql.conf')).then(() => undefined, async () => {
    // Debian keeps the configuration under /etc; the data directory alone starts with defaults.
    const f = join(run, 'postgresql.conf');
    await writeFile(f, '');
    await chown(f, st.uid, st.gid);
    return f;
  });
  const settings = [
    `-p ${port}`, `-c listen_addresses=''`, `-c unix_socket_directories='${run}'`, `-c hba_file='${hba}'`,
    '-c archive_mode=off', `-c archive_command=''`, '-c ssl=off', '-c logging_collector=off',
    ...(configFile ? [`-c config_file='${configFile}'`] : []),
  ].join(' ');
  const logFile = join(run, 'server.log');
  const pgCtl = join(bin, 'pg_ctl');
  const env = { PGHOST: run, PGPORT: String(port), PGUSER: user, PGDATABASE: database, PGCONNECT_TIMEOUT: '30' };
  const startTimeout = o.startTimeoutMs ?? 600_000;
  const log = async (): Promise<string> => tail(await readFile(logFile, 'utf8').catch(() => ''), 12);
  try {
    const s = await runProgram(pgCtl, ['start', '-D', o.dataDir, '-w', '-t', String(Math.ceil(startTimeout / 1000)), '-l', logFile, '-o', settings], {
      ...as, cwd: run, env, timeoutMs: startTimeout + 30_000, signal: o.signal,
    });
    if (s.code !== 0) return { ok: false, detail: `PostgreSQL ${version} did not start from the restored data directory (${s.why}): ${await log()}`, durationMs: Date.now() - started };

    const psql = (db: string, sql: string, extra: string[] = []): ReturnType<typeof runProgram> =>
      runProgram(join(bin, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, ...extra, '-c', sql], { ...as, cwd: run, env, timeoutMs: o.checkTimeoutMs ?? 1_800_000, signal: o.signal });
    const problems: string[] = [];
    const facts: string[] = [];
    const counts: Record<string, number> = { databases: 0, indexes: 0, tables: 0 };

    const list = await psql(database, 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname', ['-At']);
    if (list.code !== 0) return { ok: false, detail: `cannot connect to the restored PostgreSQL as '${user}' (${list.why}): ${tail(list.stderr, 4)}`, durationMs: Date.now() - started };
    const dbs = list.stdout.split('\n').map((l) => l.trim()).filter((l) => l && l !== 'template0');

    // pg_ctl -w returns once connections are accepted, which a hot standby does during replay.
    const state = await untilPromoted(psql, database, startTimeout);
    if (state === 'gone') return { ok: false, detail: `PostgreSQL ${version} stopped during recovery of the restored copy: ${await log()}`, durationMs: Date.now() - started };
    const recovering = state === 'recovering';
    const available = await psql(database, "SELECT count(*) FROM pg_available_extensions WHERE name = 'amcheck'", ['-At']);
    const amcheck = !o.noAmcheck && available.stdout.trim() === '1' && !recovering;
    if (amcheck) {
      for (const db of dbs) {
        const r = await psql(db, `CREATE EXTENSION IF NOT EXISTS amcheck;${AMCHECK_SQL}`);
        counts.databases = (counts.databases ?? 0) + 1;
        const done = /holdfast-checked (\d+) (\d+) (\d+)/.exec(r.stderr);
        for (const m of r.stderr.matchAll(/holdfast-bad (.*)/g)) problems.push(`${db}: ${m[1] ?? ''}`);
        if (r.code !== 0 || !done) {
          problems.push(`${db}: amcheck did not complete (${r.why}): ${tail(r.stderr.replace(/^.*holdfast-bad.*$/gm, ''), 3)}`);
          continue;
        }
        counts.indexes = (counts.indexes ?? 0) + Number(done[1]);
        counts.tables = (counts.tables ?? 0) + Number(done[2]);
      }
      facts.push(`amcheck: ${counts.indexes} btree indexes and ${counts.tables} tables in ${counts.databases} databases`);
    } else if (!o.query) {
      const why = o.noAmcheck ? 'amcheck is turned off' : available.stdout.trim() !== '1' ? 'the amcheck extension is not installed on this host' : 'the copy is still in recovery (read-only)';
      problems.push(`no integrity check could run: ${why} and no check query is configured`);
    }
    if (o.query) {
      const q = await psql(database, o.query, ['-At']);
      if (q.code !== 0) problems.push(`check query failed (${q.why}): ${tail(q.stderr, 4)}`);
      else facts.push(`check query answered ${JSON.stringify(tail(q.stdout, 1).slice(0, 200))}`);
    }
    const ok = problems.length === 0;
    const head = `PostgreSQL ${version} started from the restored copy; ${facts.join('; ') || 'nothing checked'}`;
    return {
      ok,
      detail: ok ? head : `${head}; ${problems.length} problem(s): ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? '; …' : ''}`,
      durationMs: Date.now() - started,
      counts,
    };
  } finally {
    await stopPostgres(pgCtl, o.dataDir, as, run);
    await rm(run, { recursive: true, force: true });
  }
}

/**
 * Waits for the end of recovery (a paused one is resumed: its target was reached): 'recovering'
 * when the copy is still in recovery at the deadline, 'gone' when it stopped (PostgreSQL ends
 * with FATAL when the logs do not reach the recovery target).
 */
async function untilPromoted(psql: (db: string, sql: string, extra?: string[]) => Promise<{ code: number | null; stdout: string }>, db: string, timeoutMs: number): Promise<'promoted' | 'recovering' | 'gone'> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await psql(db, "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE '' END", ['-At']);
    const [inRecovery, pause] = r.stdout.trim().split('|');
    if (r.code !== 0) return 'gone';
    if (inRecovery !== 't') return 'promoted';
    if (Date.now() > end) return 'recovering';
    if (pause === 'paused') await psql(db, 'SELECT pg_wal_replay_resume()');
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** Stops the copy: fast, then immediate, then the postmaster's pid by force — it must never outlive the drill. */
async function stopPostgres(pgCtl: string, dataDir: string, as: { uid: number; gid: number }, cwd: string): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  for (const mode of ['fast', 'immediate']) {
    const pid = await readFile(pidFile, 'utf8').catch(() => undefined);
    if (pid === undefined) return;
    await runProgram(pgCtl, ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '60'], { ...as, cwd, timeoutMs: 70_000 });
  }
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function userName(uid: number): Promise<string | undefined> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f[2] === String(uid)) return f[0];
  }
  return undefined;
}


/** The role and database in a libpq URL or conninfo string, as far as they are given. */
export function connectTarget(connect: string | undefined): { user?: string; database?: string } {
  if (!connect) return {};
  // A URL may have an empty host (a socket directory in ?host=), which WHATWG URL refuses.
  const m = /^postgres(?:ql)?:\/\/(?:([^:@/]*)(?::[^@/]*)?@)?[^/?]*(?:\/([^?]*))?(?:\?(.*))?$/.exec(connect);
  if (m) {
    const q = new URLSearchParams(m[3] ?? '');
    const user = q.get('user') ?? (m[1] ? decodeURIComponent(m[1]) : undefined);
    const database = q.get('dbname') ?? (m[2] ? decodeURIComponent(m[2]) : undefined);
    return { ...(user ? { user } : {}), ...(database ? { database } : {}) };
  }
  const kv = new Map<string, string>([...connect.matchAll(/(\w+)\s*=\s*('([^']*)'|\S+)/g)].map((m) => [m[1] ?? '', m[3] ?? m[2] ?? '']));
  const user = kv.get('user');
  const database = kv.get('dbname');
  return { ...(user ? { user } : {}), ...(database ? { database } : {}) };
}
