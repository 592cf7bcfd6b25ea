/**
 * Point-in-time restore of a PostgreSQL source. The data directory is rebuilt from the nearest
 * express full (the directories a base backup leaves out are recreated empty, the backup label
 * and tablespace map written back from the point's meta), the WAL segments the server picked go
 * into a directory beside it (`<target>.holdfast-wal`), and recovery is configured:
 * restore_command is wal-feed.ts's script, recovery_target_time (or 'immediate' for the point
 * itself, or none for as far as the logs go) with recovery_target_action 'promote', and
 * recovery.signal. Archiving is turned off in the copy, so it never ships into the source's chain.
 *
 * Then, unless asked only to prepare, PostgreSQL is started as the data directory's owner (pg_ctl,
 * on the port given or a free one, its socket in the WAL directory) right away, while the
 * segments are still being fetched (restore_command waits for each), and the restore waits until
 * recovery has reached the target and the copy is promoted (paused there, then promoted by the
 * restore: no end-of-recovery checkpoint to wait for); then fetching stops. If PostgreSQL
 * ends recovery before the target (the logs do not reach it) or fetching fails, the restore fails
 * and says so. Prepared only, every segment is fetched (and fsynced) before the job ends.
 */
import { spawn } from 'node:child_process';
import { access, appendFile, chown, lchown, lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import pg from 'pg';
import type { ChunkSource } from '../../core/chunk-io.js';
import { HoldfastError, errnoCode } from '../../core/errors.js';
import type { ChunkRef } from '../../core/manifest.js';
import type { RestoreJobSpec, RestoreReport } from '../../core/protocol.js';
import type { CodecPool } from '../../workers/codec-pool.js';
import { restore } from '../restore.js';
import { RemoteSource } from '../remote/remote-source.js';
import type { ServerClient } from '../remote/server-client.js';
import { PG_EMPTY_DIRS } from './postgres-backup.js';
import { freePort } from './free-port.js';
import { feedWal, writeRestoreCommand, FAILED_FILE, type WalFeed } from './wal-feed.js';
import { writeConfig } from './postgres-config.js';

export interface PgPrepareOptions {
  chunks: ChunkSource;
  manifest: ChunkRef[];
  logs: Array<{ name: string; manifest: ChunkRef[] }>;
  pointMeta: Record<string, unknown>;
  /** the new data directory (absent or empty) */
  target: string;
  targetTime?: string;
  /** stop as soon as the copy is consistent (the point itself) */
  immediate?: boolean;
  codec: CodecPool;
  label: string;
  signal?: AbortSignal;
  onProgress?: (p: { entries: number; bytes: number }) => void;
  /** fetch the WAL in the background (the caller starts PostgreSQL now and stops the feed); default: all before returning */
  background?: boolean;
}

export interface PgPrepared {
  dataDir: string;
  walDir: string;
  uid: number;
  gid: number;
  entries: number;
  bytes: number;
  logs: number;
  logBytes: number;
  warnings: string[];
  /** the WAL fetch: done when not in the background */
  feed: WalFeed;
  /** ms the data directory took */
  dataMs: number;
}

const RECOVERY_MARK = '# holdfast restore';
/**
 * The data files go in writes of this size: PostgreSQL then writes 8 KiB blocks into them while it
 * replays, each costing the kernel per-folio work, and a file written 4 MiB at a time sits in
 * 2 MiB folios (measured on ext4, Linux 6.18: 8 KiB writes into such a file take 5× the CPU of
 * writes into one written 64 KiB at a time; replay's system time was 1.5× pgBackRest's).
 */
const PG_WRITE_SIZE = 64 * 1024;
/** WAL segments fetched alongside the data directory before PostgreSQL starts */
const EARLY_LOGS = 4;

/** '2026-11-26 02:16:36.607+00': the form recovery_target_time accepts (not ISO 8601's 'T…Z'). */
export const pgTime = (iso: string): string => new Date(iso).toISOString().replace('T', ' ').replace('Z', '+00');

/** Rebuilds the data directory and writes the recovery settings; does not start anything. */
export async function preparePostgres(o: PgPrepareOptions): Promise<PgPrepared> {
  const dataDir = o.target;
  const walDir = `${dataDir.replace(/\/+$/, '')}.holdfast-wal`;
  if (/['"\\\n]/.test(walDir)) throw new HoldfastError('BAD_ARGUMENT', `restore target ${dataDir} may not contain quotes, backslashes or newlines (it goes into restore_command)`);
  const label = o.pointMeta.backupLabel;
  if (typeof label !== 'string' || !label) throw new HoldfastError('BAD_ARGUMENT', `${o.label} has no backup label: it is not a PostgreSQL express full`);
  const t0 = Date.now();
  // The WAL is fetched while the data directory is rebuilt: root's files (0644) in a directory
  // only the owner may enter once it is known, so PostgreSQL can read every one the moment it lands.
  await mkdir(walDir, { recursive: true, mode: 0o700 });
  await rm(join(walDir, FAILED_FILE), { force: true }); // an earlier attempt's
  // Started at once, a few segments only: the rest would compete with the data directory, which
  // PostgreSQL needs first; they come while it replays (released when it starts).
  const feed = feedWal({ source: o.chunks, codec: o.codec, logs: o.logs, dir: walDir, durable: !o.background, holdAfter: o.background ? EARLY_LOGS : undefined, signal: o.signal });
  try {
    const out = await restore({ source: o.chunks, manifest: o.manifest, kind: 'dir', target: dataDir, overwrite: false, signal: o.signal, onProgress: o.onProgress, label: o.label, codec: o.codec, flush: true, writeSize: PG_WRITE_SIZE });
    const { uid, gid } = await stat(dataDir);
    const own = (p: string): Promise<void> => chown(p, uid, gid);
    for (const d of PG_EMPTY_DIRS) {
      await mkdir(join(dataDir, d), { recursive: true, mode: 0o700 });
      await own(join(dataDir, d));
    }
    await mkdir(join(dataDir, 'pg_wal', 'archive_status'), { recursive: true, mode: 0o700 });
    await own(join(dataDir, 'pg_wal', 'archive_status'));
    const writeOwned = async (name: string, text: string): Promise<void> => {
      await writeFile(join(dataDir, name), text, { mode: 0o600 });
      await own(join(dataDir, name));
    };
    await writeOwned('backup_label', label);
    await writeConfig(dataDir, o.pointMeta.config, uid, gid); // Debian's layout: the configuration the point kept
    const map = await placeTablespaces(dataDir, o.pointMeta.tablespaceMap, uid, gid);
    if (map) await writeOwned('tablespace_map', map);
    await own(walDir);
    await feed.setOwner({ uid, gid });
    const dataMs = Date.now() - t0;
    const restoreCommand = await writeRestoreCommand(walDir, o.logs.map((l) => l.name), { uid, gid });
    const target = o.immediate ? "recovery_target = 'immediate'" : o.targetTime ? `recovery_target_time = '${pgTime(o.targetTime)}'` : '';
    const settings = [
      '',
      `${RECOVERY_MARK} (${new Date().toISOString()}): recover from the shipped WAL; archiving off, so the copy never ships into its source's log chain`,
      "archive_mode = 'off'",
      "archive_command = ''",
      `restore_command = '${restoreCommand}'`,
      ...(target ? [target, "recovery_target_action = 'promote'"] : []),
      '',
    ].join('\n');
    const auto = join(dataDir, 'postgresql.auto.conf');
    await appendFile(auto, settings);
    await own(auto);
    await writeOwned('recovery.signal', '');
    if (!o.background) await feed.done;
    return { dataDir, walDir, uid, gid, entries: out.entries, bytes: out.bytes, logs: o.logs.length, logBytes: feed.bytes(), warnings: out.warnings, feed, dataMs };
  } catch (err) {
    await feed.stop();
    throw err;
  }
}


/**
 * A tablespace the point holds came back as the directory pg_tblspc/<oid>; PostgreSQL wants a link
 * there. Its files move beside the copy (<target>.tablespaces/<oid>, never the original location:
 * that is the live cluster's) and the link points at them. Returns the tablespace map's lines
 * PostgreSQL must still act on: only those of points from before tablespaces were read, which
 * kept their links to the original locations.
 */
async function placeTablespaces(dataDir: string, map: unknown, uid: number, gid: number): Promise<string | undefined> {
  const links = join(dataDir, 'pg_tblspc');
  const home = `${dataDir.replace(/\/+$/, '')}.tablespaces`;
  for (const oid of await readdir(links).catch(() => [])) {
    if (!(await lstat(join(links, oid))).isDirectory()) continue;
    await mkdir(home, { recursive: true, mode: 0o700 });
    await chown(home, uid, gid);
    await rename(join(links, oid), join(home, oid));
    await symlink(join(home, oid), join(links, oid));
    await lchown(join(links, oid), uid, gid);
  }
  if (typeof map !== 'string' || map.length === 0) return undefined;
  const keep: string[] = [];
  for (const line of map.split('\n').filter((l) => l.length > 0)) {
    const oid = line.split(' ', 1)[0] as string;
    if (!(await readlink(join(links, oid)).catch(() => '')).startsWith(`${home}/`)) keep.push(line);
  }
  return keep.length > 0 ? `${keep.join('\n')}\n` : undefined;
}

async function pgBin(dataDir: string, bin?: string): Promise<string> {
  if (bin) return bin;
  const version = (await readFile(join(dataDir, 'PG_VERSION'), 'utf8').catch(() => '')).trim();
  const debian = `/usr/lib/postgresql/${version}/bin`;
  return access(join(debian, 'pg_ctl')).then(() => debian, () => '');
}

function run(cmd: string, args: string[], o: { uid: number; gid: number; cwd: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { uid: o.uid, gid: o.gid, cwd: o.cwd, env: o.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out }));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface PgStarted {
  port: number;
  socketDir: string;
  logFile: string;
  /** where recovery stopped, as PostgreSQL logged it */
  stopped: string | null;
  durationMs: number;
  /** ms until it first accepted a connection (consistent; replaying as a hot standby) */
  startMs: number | null;
}

/**
 * Starts the prepared copy as its owner and waits until recovery is over (promoted). Fails with
 * PostgreSQL's own words when it ends recovery before the target or does not start.
 */
export async function startRecovery(p: {
  dataDir: string;
  walDir: string;
  uid: number;
  gid: number;
  port?: number;
  bin?: string;
  targetTime?: string;
  /** the recovery settings name a target (a time or 'immediate'): pause there, then promote */
  hasTarget?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}): Promise<PgStarted> {
  const started = Date.now();
  if (p.uid === 0) throw new HoldfastError('BAD_ARGUMENT', `data directory ${p.dataDir} is owned by root; PostgreSQL runs only as an unprivileged owner`, { path: p.dataDir });
  const bin = await pgBin(p.dataDir, p.bin);
  const pgCtl = bin ? join(bin, 'pg_ctl') : 'pg_ctl';
  const port = p.port ?? (await freePort());
  const logFile = join(p.walDir, 'postgresql.log');
  // Its first act is to fsync the data directory: syncfs, one call, rather than an fsync per file
  // (the restore already wrote the large files back while the rest arrived).
  // At a target, pause and promote from here rather than let recovery_target_action 'promote' end
  // recovery: that one waits for a full end-of-recovery checkpoint before the copy opens, while a
  // promotion asked for writes an end-of-recovery record and checkpoints in the background (as
  // crash-safe: the record is in the WAL). Given on the command line, so the data directory keeps
  // 'promote' for a later start by hand.
  const pause = p.hasTarget ? ' -c recovery_target_action=pause -c hot_standby=on' : '';
  const opts = `-p ${port} -k ${p.walDir} -c listen_addresses=localhost -c recovery_init_sync_method=syncfs${pause}`;
  const r = await run(pgCtl, ['-D', p.dataDir, '-l', logFile, '-o', opts, '-W', 'start'], { uid: p.uid, gid: p.gid, cwd: p.walDir });
  if (r.code !== 0) throw new HoldfastError('JOB_FAILED', `pg_ctl could not start the restored copy in ${p.dataDir}: ${r.out.trim().slice(-2000)}`, { path: p.dataDir });
  const readLog = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '');
  const user = await ownerName(p.dataDir);
  const psql = { cmd: bin ? join(bin, 'psql') : 'psql', user };
  // A connection as the owner's role; the copy's own pg_hba.conf may allow only peer
  // authentication (Debian's default), which the agent's user fails: then psql as the owner.
  let peerOnly = false;
  // One connection for the whole wait: a new one per poll is a backend start every 100 ms on a
  // copy whose startup process is busy replaying.
  let client: pg.Client | undefined;
  const ask = async (sql: string): Promise<string | undefined> => {
    if (peerOnly) return psqlValue(psql, port, p, sql);
    try {
      if (!client) {
        const c = new pg.Client({ host: p.walDir, port, user, database: 'postgres', connectionTimeoutMillis: 2000 });
        c.on('error', () => undefined);
        client = c;
        await c.connect();
      }
      return String((await client.query<{ v: unknown }>(`SELECT (${sql})::text AS v`)).rows[0]?.v);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === '28000' || code === '28P01') peerOnly = true;
      await client?.end().catch(() => undefined);
      client = undefined;
      return undefined;
    }
  };
  const deadline = Date.now() + (p.timeoutMs ?? 30 * 60_000);
  let accepting: number | undefined;
  try {
    for (;;) {
      if (p.signal?.aborted) throw new HoldfastError('ABORTED', 'restore aborted');
      const log = await readLog();
      if (/recovery ended before configured recovery target was reached/.test(log)) {
        throw new HoldfastError('JOB_FAILED', `PostgreSQL ended recovery before the target${p.targetTime ? ` ${p.targetTime}` : ''}: the shipped WAL does not reach it (the copy in ${p.dataDir} was not promoted)\n${tailLines(log, 8)}`, { path: p.dataDir });
      }
      // undefined: not accepting connections yet (replaying), or gone: the log and the pid file say which
      // 'replaying', 'paused' (at the target: only recovery_target_action pauses this copy) or 'promoted'
      const state = await ask("CASE WHEN NOT pg_is_in_recovery() THEN 'promoted' WHEN pg_is_wal_replay_paused() THEN 'paused' ELSE 'replaying' END");
      if (state !== undefined) accepting ??= Date.now() - started;
      if (state === 'paused') {
        // Noticed at the end of the startup process's pause sleep (at most a second): still sooner
        // than the 'promote' action's end-of-recovery checkpoint at any real shared_buffers.
        await ask('pg_promote(true, 300)');
        continue;
      }
      if (state === 'promoted') {
        const stopped = /recovery stopping [^\n]*/.exec(await readLog())?.[0] ?? null;
        return { port, socketDir: p.walDir, logFile, stopped, durationMs: Date.now() - started, startMs: accepting ?? null };
      }
      if (state === undefined && !(await postmasterAlive(p.dataDir)) && Date.now() - started > 3000) {
        throw new HoldfastError('JOB_FAILED', `the restored PostgreSQL in ${p.dataDir} stopped before recovery finished:\n${tailLines(await readLog(), 12)}`, { path: p.dataDir });
      }
      if (Date.now() > deadline) throw new HoldfastError('JOB_FAILED', `recovery of ${p.dataDir} did not finish in time; PostgreSQL keeps running (log ${logFile})`, { path: p.dataDir });
      await sleep(peerOnly ? 250 : 100);
    }
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/** One value asked by psql running as the data directory's owner (peer authentication). */
async function psqlValue(psql: { cmd: string; user: string }, port: number, p: { walDir: string; uid: number; gid: number }, sql: string): Promise<string | undefined> {
  const r = await run(psql.cmd, ['-X', '-A', '-t', '-h', p.walDir, '-p', String(port), '-U', psql.user, '-d', 'postgres', '-c', `SELECT (${sql})::text`], {
    uid: p.uid,
    gid: p.gid,
    cwd: p.walDir,
    env: { ...process.env, PGCONNECT_TIMEOUT: '2', PGOPTIONS: '' },
  });
  return r.code === 0 ? r.out.trim() : undefined;
}

const tailLines = (text: string, n: number): string => text.trim().split('\n').slice(-n).join('\n');

async function postmasterAlive(dataDir: string): Promise<boolean> {
  try {
    const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/** The bootstrap role is named after the OS user that ran initdb: the data directory's owner, usually. */
async function ownerName(dataDir: string): Promise<string> {
  const uid = (await stat(dataDir)).uid;
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (Number(f[2]) === uid && f[0]) return f[0];
  }
  return 'postgres';
}

/** Stops a copy this module started (tests, drills). */
export async function stopPostgres(dataDir: string, bin?: string): Promise<void> {
  const st = await stat(dataDir);
  const b = await pgBin(dataDir, bin);
  await run(b ? join(b, 'pg_ctl') : 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop'], { uid: st.uid, gid: st.gid, cwd: dirname(dataDir) });
}

export interface PgRestoreJobContext {
  client: ServerClient;
  codec: CodecPool;
  signal: AbortSignal;
}

export async function runPostgresRestoreJob(ctx: PgRestoreJobContext, spec: RestoreJobSpec, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const db = spec.database;
  if (!db) throw new HoldfastError('BAD_ARGUMENT', 'not a database restore');
  if (spec.subPath !== undefined) throw new HoldfastError('BAD_ARGUMENT', 'a PostgreSQL source is restored whole (no --path)');
  const chunks = new RemoteSource(ctx.client, spec.id, headers);
  const t0 = Date.now();
  const prepared = await preparePostgres({
    chunks,
    manifest: spec.point.manifest,
    logs: spec.logs ?? [],
    pointMeta: db.pointMeta ?? {},
    target: spec.target,
    targetTime: db.targetTime,
    immediate: db.immediate,
    codec: ctx.codec,
    label: `recovery point ${spec.point.id} of source '${spec.source.name}'`,
    signal: ctx.signal,
    background: db.start,
  });
  const feed = prepared.feed;
  const database: Record<string, unknown> = {
    kind: 'postgres',
    logs: prepared.logs,
    walDir: prepared.walDir,
    target: db.immediate ? 'immediate' : db.targetTime ?? 'latest',
    started: false,
    dataMs: prepared.dataMs,
  };
  if (db.start) {
    // Recovery runs while the WAL is fetched; a failed fetch ends the wait with its own error.
    const failed = new AbortController();
    const fetchFailed = feed.done.then(
      () => new Promise<never>(() => undefined),
      (err: unknown) => {
        failed.abort();
        throw err;
      },
    );
    feed.release();
    try {
      const s = await Promise.race([
        startRecovery({
          dataDir: prepared.dataDir,
          walDir: prepared.walDir,
          uid: prepared.uid,
          gid: prepared.gid,
          port: db.port,
          bin: db.bin,
          targetTime: db.targetTime,
          hasTarget: db.immediate === true || db.targetTime !== undefined,
          signal: AbortSignal.any([ctx.signal, failed.signal]),
        }),
        fetchFailed,
      ]);
      Object.assign(database, { started: true, port: s.port, socket: s.socketDir, log: s.logFile, stopped: s.stopped, startMs: s.startMs, recoveryMs: s.durationMs });
    } finally {
      await feed.stop();
    }
    await feed.removeLogs(); // promoted: the copy has what it needs in pg_wal
  }
  Object.assign(database, { logsFetched: feed.fetched(), logBytes: feed.bytes(), fetchMs: feed.elapsedMs(), agentMs: Date.now() - t0 });
  const report: RestoreReport = { entries: prepared.entries, bytes: prepared.bytes, target: prepared.dataDir, warnings: prepared.warnings, database };
  return ctx.client.json('POST', `/api/v1/agent/jobs/${spec.id}/complete-restore`, report, { signal: ctx.signal, headers });
}

/** For tests: the WAL files a prepared restore holds. */
export async function preparedLogs(walDir: string): Promise<string[]> {
  return (await readdir(walDir)).filter((n) => n !== 'postgresql.log' && !n.startsWith('.') && n !== basename(walDir));
}
