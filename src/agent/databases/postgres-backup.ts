/**
 * An express full of a PostgreSQL cluster: the non-exclusive backup API around an ordinary
 * directory read. One session runs pg_backup_start (a fast checkpoint), stays open while the data
 * directory is read through the dir path (unchanged files, by size, times and inode, are not read
 * again; changed ones send only new chunks), then pg_backup_stop, which waits until the last WAL
 * segment the copy needs is archived — through this agent, so durable on the server. Files that
 * change during the read are expected: WAL replay from the backup's start repairs them.
 *
 * Left out, as the PostgreSQL documentation says (recreated empty on restore): the contents of
 * pg_wal, pg_replslot, pg_dynshmem, pg_notify, pg_serial, pg_snapshots, pg_stat_tmp and
 * pg_subtrans, postmaster.pid and postmaster.opts, and temporary files. The backup label and
 * tablespace map pg_backup_stop returns are stored in the point's meta. Tablespaces (links under
 * pg_tblspc) are read through their links, as directories of the point.
 * The point's time is when pg_backup_stop returned: every later time is reachable from it.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HoldfastError } from '../../core/errors.js';
import { backupDir } from '../backup-dir.js';
import type { PendingSync, Tracker, TrackerContext } from '../trackers/tracker.js';
import type pg from 'pg';
import { configureArchiving, pgConnect } from './postgres-archive.js';
import { outsideConfig } from './postgres-config.js';

/** Directories whose contents a base backup leaves out (they are recreated empty). */
export const PG_EMPTY_DIRS = ['pg_wal', 'pg_replslot', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_stat_tmp', 'pg_subtrans'];
/** Files a base backup leaves out. */
const PG_SKIP_FILES = ['postmaster.pid', 'postmaster.opts', 'postgresql.auto.conf.tmp', 'current_logfiles.tmp', 'backup_label', 'tablespace_map', 'backup_label.old'];

/** What a PostgreSQL recovery point says about its backup (the point's meta). */
export interface PgPointMeta {
  [k: string]: unknown;
  backupLabel: string;
  tablespaceMap: string;
  startLsn: string;
  stopLsn: string;
  timeline: number;
  startWal: string;
  stopWal: string;
  pgVersion: number;
  /** the configuration kept outside the data directory (Debian: /etc/postgresql/…), as files a restore writes into the copy */
  config?: Record<string, string>;
}

async function excludes(dataDir: string): Promise<string[]> {
  const out = PG_EMPTY_DIRS.map((d) => join(dataDir, d));
  for (const f of PG_SKIP_FILES) out.push(join(dataDir, f));
  // pg_internal.init (relation cache) files are rebuilt at start; temporary relation files go.
  const walk = async (dir: string, depth: number): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (n === 'pg_internal.init' || n.startsWith('pgsql_tmp')) out.push(join(dir, n));
      else if (depth > 0 && !n.includes('.')) await walk(join(dir, n), depth - 1);
    }
  };
  await walk(join(dataDir, 'global'), 0);
  await walk(join(dataDir, 'base'), 1);
  return out;
}

/**
 * The tablespaces' links (pg_tblspc/<oid> → a directory outside the cluster). Their contents are
 * read as pg_tblspc/<oid>/… so the point holds them; a restore puts them there, inside the new
 * data directory, never over the original locations.
 */
async function tablespaceLinks(dataDir: string): Promise<string[]> {
  const dir = join(dataDir, 'pg_tblspc');
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isSymbolicLink()).map((e) => join(dir, e.name));
}

/** An LSN ('16/B374D848') as a number (exact below 2^53 bytes of WAL). */
export const lsnValue = (lsn: string): number => {
  const [hi, lo] = lsn.split('/').map((x) => parseInt(x, 16)) as [number, number];
  return hi * 0x100000000 + lo;
};

/** The WAL file name holding byte `pos` of the WAL on a timeline. */
export const walName = (timeline: number, pos: number, segSize: number): string => {
  const segno = Math.floor(pos / segSize);
  const perLog = 0x100000000 / segSize;
  const h = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
  return `${h(timeline)}${h(Math.floor(segno / perLog))}${h(segno % perLog)}`;
};

/** How long pg_backup_stop may wait for the stop segment to be archived before the sync gives up. */
export const STOP_WAIT_MS = 30 * 60_000;

export interface BackupStop {
  lsn: string;
  labelfile: string;
  spcmapfile: string | null;
}

/**
 * pg_backup_stop, waiting until the stop segment is archived, i.e. durable on the server through
 * this agent. While archive_command fails PostgreSQL would wait forever; after `waitMs` the sync
 * fails instead, quoting what pg_stat_archiver says (the backup itself is already ended).
 */
export async function stopBackup(client: pg.Client, version: number, source: string, waitMs = STOP_WAIT_MS): Promise<BackupStop> {
  await client.query(`SET statement_timeout = ${Math.max(1, Math.round(waitMs))}`);
  try {
    const res = version >= 150000
      ? await client.query<BackupStop>('SELECT lsn::text, labelfile, spcmapfile FROM pg_backup_stop(true)')
      : await client.query<BackupStop>('SELECT lsn::text, labelfile, spcmapfile FROM pg_stop_backup(false, true)');
    return res.rows[0] as BackupStop;
  } catch (err) {
    if ((err as { code?: string }).code !== '57014') throw err; // query_canceled: the timeout
    const a = (await client.query<{ failed: number; wal: string | null; at: string | null }>('SELECT failed_count::int AS failed, last_failed_wal AS wal, last_failed_time::text AS at FROM pg_stat_archiver')).rows[0];
    const why = a?.wal ? `archive_command has failed ${a.failed} time(s), last for ${a.wal} at ${a.at}: see the PostgreSQL log` : 'archiving is behind';
    throw new HoldfastError('JOB_FAILED', `source '${source}': pg_backup_stop waited ${Math.round(waitMs / 1000)} s for the WAL the copy needs to be archived and gave up; ${why}`, { source });
  } finally {
    await client.query('SET statement_timeout = 0').catch(() => undefined);
  }
}

export const postgresTracker: Tracker = {
  name: 'postgres-backup',
  async sync(ctx: TrackerContext): Promise<PendingSync> {
    const r = ctx.r;
    const source = r.source.name;
    if (!r.postgres?.connect) throw new HoldfastError('BAD_ARGUMENT', `postgres source '${source}' has no connection (source option postgres.connect)`, { source });
    const warnings = [...ctx.warnings];
    const client = await pgConnect(r.postgres.connect, source);
    try {
      const version = Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v);
      const dataDir = (await client.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]?.d;
      if (dataDir && dataDir !== r.source.path) warnings.push(`PostgreSQL's data_directory is ${dataDir}, the source path ${r.source.path}; reading the source path`);
      const segSize = Number((await client.query<{ s: string }>("SELECT setting AS s FROM pg_settings WHERE name = 'wal_segment_size'")).rows[0]?.s ?? 16 * 1024 * 1024);
      if (r.pgArchive) warnings.push(...(await configureArchiving(client, { ...r.pgArchive, source, syncEveryMs: r.syncEveryMs })));
      else warnings.push('no agent daemon log socket here: archive_command was not configured (express full only)');
      const label = `holdfast ${source} ${new Date().toISOString()}`;
      const start = version >= 150000
        ? await client.query<{ lsn: string }>('SELECT pg_backup_start($1, true) AS lsn', [label])
        : await client.query<{ lsn: string }>('SELECT pg_start_backup($1, true, false) AS lsn', [label]);
      const startLsn = start.rows[0]?.lsn as string;
      // Ending the session (an error below) ends the backup: nothing to undo on the cluster.
      const outcome = await backupDir({
          root: r.source.path,
          sink: r.sink,
          batcher: r.batcher,
          cdc: r.cdc,
          imageChunk: r.imageChunk,
          parent: ctx.parentFiles,
          exclude: [...(r.exclude ?? []), ...(await excludes(r.source.path))],
          follow: await tablespaceLinks(r.source.path),
          verifyContent: r.consistencyCheck === 'heavy',
          signal: r.signal,
          onProgress: r.onProgress,
        });
      const stop = await stopBackup(client, version, source);
      const pointTime = new Date().toISOString();
      const startWal = /START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)/.exec(stop.labelfile)?.[1];
      const timeline = Number(/START TIMELINE: (\d+)/.exec(stop.labelfile)?.[1] ?? 1);
      if (!startWal) throw new HoldfastError('SOURCE_UNREADABLE', `pg_backup_stop returned a backup label without its start WAL file: ${stop.labelfile.slice(0, 200)}`, { source });
      // The stop record is at stop.lsn; the segment holding the byte before it is the last one needed.
      const stopWal = walName(timeline, lsnValue(stop.lsn) - 1, segSize);
      const meta: PgPointMeta = { backupLabel: stop.labelfile, tablespaceMap: stop.spcmapfile ?? '', startLsn, stopLsn: stop.lsn, timeline, startWal, stopWal, pgVersion: version };
      const config = await outsideConfig(client, r.source.path, warnings);
      if (config) meta.config = config;
      return {
        outcome: { ...outcome, warnings: [...warnings, ...outcome.warnings], tracker: 'postgres-backup', meta, pointTime },
        committed: () => Promise.resolve(),
        abandon: () => Promise.resolve(),
      };
    } finally {
      await client.end().catch(() => undefined);
    }
  },
};
