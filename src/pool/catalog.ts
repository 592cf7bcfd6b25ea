/**
 * The catalog: sources and recovery points in SQLite (WAL mode). A recovery point exists when
 * its row exists; the row is inserted only after its packs, index and manifest are durable.
 *
 * It is also the pool's cross-process serialization point (docs/design.md, "Garbage collection
 * and concurrent syncs"): write-session leases, the condemned set with its epoch, the gc lock,
 * and verification results live here, and the commit check and gc's condemnation run as
 * IMMEDIATE transactions on it.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type { ChunkRef } from '../core/manifest.js';

export type SourceKind = 'dir' | 'image';

export interface SourceRow {
  name: string;
  kind: SourceKind;
  path: string;
  created: string;
}

export interface PointRow {
  id: string;
  source: string;
  time: string;
  kind: SourceKind;
  manifest: ChunkRef[];
  logicalBytes: number;
  files: number;
  readBytes: number;
  newBytes: number;
  storedNewBytes: number;
  durationMs: number;
  parent: string | null;
  torn: number;
  /** pinned points are never pruned (absent means not pinned) */
  pinned?: boolean;
  /** kind-specific facts kept with the point (pg: backupLabel, startWal...; sqlite: generation...) */
  meta?: Record<string, unknown>;
}

export type LogKind = 'pg-wal' | 'sqlite-wal';

/** One shipped log record (a WAL segment, a run of SQLite WAL frames): docs/design.md, "Log chains". */
export interface LogRow {
  source: string;
  name: string;
  /** position in the source's chain, 1-based, assigned at commit */
  seq: number;
  kind: LogKind;
  /** when it became durable on the server: every change inside was committed at or before it */
  time: string;
  meta: Record<string, unknown>;
  /** the raw bytes, in order */
  manifest: ChunkRef[];
  bytes: number;
}

/** A location gc or verify took out of service: its bytes are never used again. */
export interface CondemnedRow {
  digest: string;
  pack: string;
  /** 'gc' (unreferenced) or 'damaged' (failed verify) */
  reason: 'gc' | 'damaged';
  condemnedAt: number;
  /** when gc deleted the pack's copy (index and pack files), or null while it still exists */
  deletedAt: number | null;
}

export interface LeaseRow {
  id: string;
  pid: number;
  host: string;
  started: number;
  renewed: number;
}

export interface VerificationRow {
  point: string;
  time: string;
  full: boolean;
  ok: boolean;
  detail: string;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS sources (
     name TEXT PRIMARY KEY,
     kind TEXT NOT NULL,
     path TEXT NOT NULL,
     created TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS points (
     id TEXT PRIMARY KEY,
     source TEXT NOT NULL REFERENCES sources(name),
     time TEXT NOT NULL,
     kind TEXT NOT NULL,
     manifest TEXT NOT NULL,
     logical_bytes INTEGER NOT NULL,
     files INTEGER NOT NULL,
     read_bytes INTEGER NOT NULL,
     new_bytes INTEGER NOT NULL,
     stored_new_bytes INTEGER NOT NULL,
     duration_ms INTEGER NOT NULL,
     parent TEXT,
     torn INTEGER NOT NULL DEFAULT 0)`,
  // By source and time, and covering pointHeads, pointSpan and latestPointHead: a row's later
  // columns sit behind its manifest list's overflow pages. It replaces points_by_source_time, its prefix.
  `CREATE INDEX IF NOT EXISTS points_heads ON points(source, time, id, logical_bytes, stored_new_bytes)`,
  `DROP INDEX IF EXISTS points_by_source_time`,
  `CREATE TABLE IF NOT EXISTS leases (
     id TEXT PRIMARY KEY,
     pid INTEGER NOT NULL,
     host TEXT NOT NULL,
     started INTEGER NOT NULL,
     renewed INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS condemned (
     digest TEXT NOT NULL,
     pack TEXT NOT NULL,
     reason TEXT NOT NULL,
     condemned_at INTEGER NOT NULL,
     deleted_at INTEGER,
     PRIMARY KEY (digest, pack))`,
  `CREATE TABLE IF NOT EXISTS pool_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS verifications (
     point TEXT PRIMARY KEY REFERENCES points(id) ON DELETE CASCADE,
     time TEXT NOT NULL,
     full INTEGER NOT NULL,
     ok INTEGER NOT NULL,
     detail TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS packs_verified (pack TEXT PRIMARY KEY, time INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS logs (
     source TEXT NOT NULL,
     name TEXT NOT NULL,
     seq INTEGER NOT NULL,
     kind TEXT NOT NULL,
     time TEXT NOT NULL,
     meta TEXT NOT NULL,
     manifest TEXT NOT NULL,
     bytes INTEGER NOT NULL,
     PRIMARY KEY (source, name),
     UNIQUE (source, seq))`,
];

/** Columns added after the first release, for catalogs created before them. */
const ADDED_COLUMNS: Array<[table: string, column: string, ddl: string]> = [
  ['points', 'pinned', 'ALTER TABLE points ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0'],
  ['points', 'meta', 'ALTER TABLE points ADD COLUMN meta TEXT'],
];

/** What retention and the log chain's pruning read of a point. */
export type PointMark = Pick<PointRow, 'id' | 'time' | 'pinned' | 'meta'>;

interface PointDb {
  id: string;
  source: string;
  time: string;
  kind: string;
  manifest: string;
  logical_bytes: number;
  files: number;
  read_bytes: number;
  new_bytes: number;
  stored_new_bytes: number;
  duration_ms: number;
  parent: string | null;
  torn: number;
  pinned: number;
  meta: string | null;
}

interface LogDb {
  source: string;
  name: string;
  seq: number;
  kind: string;
  time: string;
  meta: string;
  manifest: string;
  bytes: number;
}

/**
 * What gc's mark remembers of a log record: a name can come back with other chunks (pruned, then
 * shipped again while gc runs), so the key holds the record's seq and a hash of its chunk list; a
 * record with the same key has the same chunks, which are marked already.
 */
export function logMarkKey(l: LogRow): string {
  return `${l.source}/${l.name}/${l.seq}/${createHash('sha256').update(JSON.stringify(l.manifest)).digest('hex')}`;
}

function toLog(r: LogDb): LogRow {
  return {
    source: r.source,
    name: r.name,
    seq: r.seq,
    kind: r.kind as LogKind,
    time: r.time,
    meta: JSON.parse(r.meta) as Record<string, unknown>,
    manifest: JSON.parse(r.manifest) as ChunkRef[],
    bytes: r.bytes,
  };
}

function toPoint(r: PointDb): PointRow {
  return {
    id: r.id,
    source: r.source,
    time: r.time,
    kind: r.kind as SourceKind,
    manifest: JSON.parse(r.manifest) as ChunkRef[],
    logicalBytes: r.logical_bytes,
    files: r.files,
    readBytes: r.read_bytes,
    newBytes: r.new_bytes,
    storedNewBytes: r.stored_new_bytes,
    durationMs: r.duration_ms,
    parent: r.parent,
    torn: r.torn,
    pinned: r.pinned === 1,
    ...(r.meta ? { meta: JSON.parse(r.meta) as Record<string, unknown> } : {}),
  };
}

interface CondemnedDb {
  digest: string;
  pack: string;
  reason: string;
  condemned_at: number;
  deleted_at: number | null;
}

function toCondemned(r: CondemnedDb): CondemnedRow {
  return { digest: r.digest, pack: r.pack, reason: r.reason as CondemnedRow['reason'], condemnedAt: r.condemned_at, deletedAt: r.deleted_at };
}

export class Catalog {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    for (const s of SCHEMA) this.db.exec(s);
    for (const [table, column, ddl] of ADDED_COLUMNS) {
      const cols = this.db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
      if (!cols.some((c) => c.name === column)) this.db.exec(ddl);
    }
  }

  /**
   * Runs `fn` in a write transaction taken up front (BEGIN IMMEDIATE), so it is serialized with
   * every other writer of the pool, in this process or another.
   */
  immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  close(): void {
    this.db.close();
  }

  source(name: string): SourceRow | undefined {
    return this.db.prepare('SELECT name, kind, path, created FROM sources WHERE name = ?').get(name) as SourceRow | undefined;
  }

  sources(): SourceRow[] {
    return this.db.prepare('SELECT name, kind, path, created FROM sources ORDER BY name').all() as SourceRow[];
  }

  addSource(s: SourceRow): void {
    this.db.prepare('INSERT OR IGNORE INTO sources (name, kind, path, created) VALUES (@name, @kind, @path, @created)').run(s);
  }

  insertPoint(p: PointRow): void {
    this.db
      .prepare(
        `INSERT INTO points (id, source, time, kind, manifest, logical_bytes, files, read_bytes, new_bytes, stored_new_bytes, duration_ms, parent, torn, pinned, meta)
         VALUES (@id, @source, @time, @kind, @manifest, @logicalBytes, @files, @readBytes, @newBytes, @storedNewBytes, @durationMs, @parent, @torn, @pinned, @meta)`,
      )
      .run({ ...p, manifest: JSON.stringify(p.manifest), pinned: p.pinned ? 1 : 0, meta: p.meta ? JSON.stringify(p.meta) : null });
  }

  points(source?: string): PointRow[] {
    const rows = source
      ? this.db.prepare('SELECT * FROM points WHERE source = ? ORDER BY time, id').all(source)
      : this.db.prepare('SELECT * FROM points ORDER BY source, time, id').all();
    return (rows as PointDb[]).map(toPoint);
  }

  /**
   * A source's points in time order with what retention decides by (id, time, pinned, meta),
   * without their manifest lists: a prune after every sync must not parse every point's list.
   */
  pointMarks(source: string): PointMark[] {
    const rows = this.db.prepare('SELECT id, time, pinned, meta FROM points WHERE source = ? ORDER BY time, id').all(source) as Array<Pick<PointDb, 'id' | 'time' | 'pinned' | 'meta'>>;
    return rows.map((r) => ({ id: r.id, time: r.time, pinned: r.pinned === 1, ...(r.meta ? { meta: JSON.parse(r.meta) as Record<string, unknown> } : {}) }));
  }

  /** A source's points as id and time, in time order (only those after `after`, when given), without reading their rows. */
  pointHeads(source: string, after?: string): Array<{ id: string; time: string }> {
    return (
      after === undefined
        ? this.db.prepare('SELECT id, time FROM points WHERE source = ? ORDER BY time, id').all(source)
        : this.db.prepare('SELECT id, time FROM points WHERE source = ? AND time > ? ORDER BY time, id').all(source, after)
    ) as Array<{ id: string; time: string }>;
  }

  /** How many points a source has, the first and last one's time and the bytes they stored, without reading their rows. */
  pointSpan(source: string): { count: number; first: string; last: string; storedNewBytes: number } | undefined {
    const r = this.db.prepare('SELECT count(*) AS count, min(time) AS first, max(time) AS last, total(stored_new_bytes) AS stored FROM points WHERE source = ?').get(source) as { count: number; first: string | null; last: string | null; stored: number };
    return r.count > 0 && r.first !== null && r.last !== null ? { count: r.count, first: r.first, last: r.last, storedNewBytes: r.stored } : undefined;
  }

  point(id: string): PointRow | undefined {
    const r = this.db.prepare('SELECT * FROM points WHERE id = ?').get(id) as PointDb | undefined;
    return r ? toPoint(r) : undefined;
  }

  /** Points whose id starts with the given prefix (for short ids typed by hand). */
  pointsByPrefix(prefix: string): PointRow[] {
    const rows = this.db.prepare("SELECT * FROM points WHERE id LIKE ? || '%' ESCAPE '\\'").all(prefix.replace(/[%_\\]/g, '\\$&'));
    return (rows as PointDb[]).map(toPoint);
  }

  /**
   * The id, time and size of the latest sound point, without its manifest: what the scheduler asks
   * of every source on every tick (an image point's manifest list is 2,049 references to parse).
   */
  latestPointHead(source: string): { id: string; time: string; logicalBytes: number } | undefined {
    return this.latestRow('id, time, logical_bytes AS logicalBytes', source) as { id: string; time: string; logicalBytes: number } | undefined;
  }

  /**
   * The latest recovery point of a source (at or before a time). By default a point whose last
   * verify found it damaged is passed over: this is the parent a sync reuses chunk lists from, and
   * a damaged point's lists must not be reused, so that the sync reads those files again and the
   * damaged chunks are healed. Restores ask with `includeDamaged`.
   */
  latestPoint(source: string, atOrBefore?: string, opts: { includeDamaged?: boolean } = {}): PointRow | undefined {
    const r = this.latestRow('*', source, atOrBefore, opts.includeDamaged) as PointDb | undefined;
    return r ? toPoint(r) : undefined;
  }

  private latestRow(columns: string, source: string, atOrBefore?: string, includeDamaged = false): unknown {
    const damaged = includeDamaged ? '' : ' AND id NOT IN (SELECT point FROM verifications WHERE ok = 0)';
    return atOrBefore
      ? this.db.prepare(`SELECT ${columns} FROM points WHERE source = ? AND time <= ?${damaged} ORDER BY time DESC, id DESC LIMIT 1`).get(source, atOrBefore)
      : this.db.prepare(`SELECT ${columns} FROM points WHERE source = ?${damaged} ORDER BY time DESC, id DESC LIMIT 1`).get(source);
  }

  /** A read transaction: what `fn` reads is one consistent state of the catalog. */
  snapshot<T>(fn: () => T): T {
    return this.db.transaction(fn).deferred();
  }

  /** The point exists and its last verify did not find it damaged. */
  pointSound(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM points WHERE id = ? AND id NOT IN (SELECT point FROM verifications WHERE ok = 0)').get(id) !== undefined;
  }

  pointExists(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM points WHERE id = ?').get(id) !== undefined;
  }

  /** Point ids only (cheap: no manifests), for gc's re-mark check. */
  pointIds(): string[] {
    return (this.db.prepare('SELECT id FROM points').all() as Array<{ id: string }>).map((r) => r.id);
  }

  deletePoint(id: string): boolean {
    return this.db.prepare('DELETE FROM points WHERE id = ?').run(id).changes === 1;
  }

  setPinned(id: string, pinned: boolean): boolean {
    return this.db.prepare('UPDATE points SET pinned = ? WHERE id = ?').run(pinned ? 1 : 0, id).changes === 1;
  }

  // --- leases: a write session's promise to gc that it is running (docs/design.md) ---

  addLease(l: LeaseRow): void {
    this.db.prepare('INSERT INTO leases (id, pid, host, started, renewed) VALUES (@id, @pid, @host, @started, @renewed)').run(l);
  }

  /** False when the lease is gone (expired and reaped by gc): the session must not rely on it. */
  renewLease(id: string, now: number): boolean {
    return this.db.prepare('UPDATE leases SET renewed = ? WHERE id = ?').run(now, id).changes === 1;
  }

  leaseExists(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM leases WHERE id = ?').get(id) !== undefined;
  }

  releaseLease(id: string): void {
    this.db.prepare('DELETE FROM leases WHERE id = ?').run(id);
  }

  leases(): LeaseRow[] {
    return this.db.prepare('SELECT id, pid, host, started, renewed FROM leases ORDER BY started').all() as LeaseRow[];
  }

  /**
   * Deletes leases not renewed since `before`, and those whose holder `gone` says is dead: their
   * sessions died (or, if only stalled, will fail at commit).
   */
  reapLeases(before: number, gone: (host: string, pid: number) => boolean = () => false): number {
    let n = this.db.prepare('DELETE FROM leases WHERE renewed < ?').run(before).changes;
    for (const l of this.leases()) if (gone(l.host, l.pid)) n += this.db.prepare('DELETE FROM leases WHERE id = ?').run(l.id).changes;
    return n;
  }

  // --- the condemned set and its epoch ---

  /** Bumped by every change to the condemned set: a view of the index older than it may be stale. */
  epoch(): number {
    const r = this.db.prepare("SELECT value FROM pool_state WHERE key = 'epoch'").get() as { value: string } | undefined;
    return r ? Number(r.value) : 0;
  }

  bumpEpoch(): number {
    const next = this.epoch() + 1;
    this.db.prepare("INSERT INTO pool_state (key, value) VALUES ('epoch', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(String(next));
    return next;
  }

  condemn(rows: Array<{ digest: string; pack: string }>, reason: CondemnedRow['reason'], now: number): number {
    const st = this.db.prepare('INSERT OR IGNORE INTO condemned (digest, pack, reason, condemned_at) VALUES (?, ?, ?, ?)');
    let n = 0;
    for (const r of rows) n += st.run(r.digest, r.pack, reason, now).changes;
    return n;
  }

  /** Locations of a digest (or of all digests) that verify found damaged and gc has not removed. */
  damagedLocations(digest?: string): CondemnedRow[] {
    const rows = digest
      ? this.db.prepare("SELECT * FROM condemned WHERE digest = ? AND reason = 'damaged' AND deleted_at IS NULL").all(digest)
      : this.db.prepare("SELECT * FROM condemned WHERE reason = 'damaged' AND deleted_at IS NULL").all();
    return (rows as CondemnedDb[]).map(toCondemned);
  }

  /** A damaged location that checks sound again (its pack was repaired) returns to service. */
  restoreLocation(digest: string, pack: string): number {
    return this.db.prepare("DELETE FROM condemned WHERE digest = ? AND pack = ? AND reason = 'damaged'").run(digest, pack).changes;
  }

  condemned(): CondemnedRow[] {
    return (this.db.prepare('SELECT * FROM condemned').all() as CondemnedDb[]).map(toCondemned);
  }

  condemnedCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM condemned').get() as { n: number }).n;
  }

  /** Records that gc deleted these packs (their index files first, then the packs). */
  markPacksDeleted(packs: string[], now: number): void {
    const st = this.db.prepare('UPDATE condemned SET deleted_at = ? WHERE pack = ? AND deleted_at IS NULL');
    for (const p of packs) st.run(now, p);
  }

  /** Forgets deleted locations no live session can still hold in its view (deleted before it began). */
  dropDeletedBefore(before: number): number {
    return this.db.prepare('DELETE FROM condemned WHERE deleted_at IS NOT NULL AND deleted_at < ?').run(before).changes;
  }

  // --- the gc lock: one gc per pool at a time ---

  /**
   * Takes (or renews) the gc lock unless a live holder has it; returns that holder when refused.
   * A holder is dead when it was not renewed since `staleBefore` or `gone` says so.
   */
  takeGcLock(holder: { host: string; pid: number; id: string }, now: number, staleBefore: number, gone: (host: string, pid: number) => boolean = () => false): string | undefined {
    const r = this.db.prepare("SELECT value FROM pool_state WHERE key = 'gc_lock'").get() as { value: string } | undefined;
    if (r) {
      const cur = JSON.parse(r.value) as { host: string; pid: number; id: string; renewed: number };
      if (cur.id !== holder.id && cur.renewed >= staleBefore && !gone(cur.host, cur.pid)) return `pid ${cur.pid} on ${cur.host}`;
    }
    this.db
      .prepare("INSERT INTO pool_state (key, value) VALUES ('gc_lock', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
      .run(JSON.stringify({ ...holder, renewed: now }));
    return undefined;
  }

  releaseGcLock(id: string): void {
    const r = this.db.prepare("SELECT value FROM pool_state WHERE key = 'gc_lock'").get() as { value: string } | undefined;
    if (r && (JSON.parse(r.value) as { id: string }).id === id) this.db.prepare("DELETE FROM pool_state WHERE key = 'gc_lock'").run();
  }

  // --- verification results ---

  recordVerification(v: VerificationRow): void {
    this.db
      .prepare('INSERT INTO verifications (point, time, full, ok, detail) VALUES (?, ?, ?, ?, ?) ON CONFLICT(point) DO UPDATE SET time = excluded.time, full = excluded.full, ok = excluded.ok, detail = excluded.detail')
      .run(v.point, v.time, v.full ? 1 : 0, v.ok ? 1 : 0, v.detail);
  }

  verifications(): VerificationRow[] {
    const rows = this.db.prepare('SELECT point, time, full, ok, detail FROM verifications').all() as Array<{ point: string; time: string; full: number; ok: number; detail: string }>;
    return rows.map((r) => ({ point: r.point, time: r.time, full: r.full === 1, ok: r.ok === 1, detail: r.detail }));
  }

  /** When each pack's chunks were last re-hashed (ms since the epoch). */
  packsVerified(): Map<string, number> {
    const rows = this.db.prepare('SELECT pack, time FROM packs_verified').all() as Array<{ pack: string; time: number }>;
    return new Map(rows.map((r) => [r.pack, r.time]));
  }

  setPacksVerified(packs: string[], time: number): void {
    const st = this.db.prepare('INSERT INTO packs_verified (pack, time) VALUES (?, ?) ON CONFLICT(pack) DO UPDATE SET time = excluded.time');
    for (const p of packs) st.run(p, time);
  }

  forgetPacksVerified(packs: string[]): void {
    const st = this.db.prepare('DELETE FROM packs_verified WHERE pack = ?');
    for (const p of packs) st.run(p);
  }

  // --- log chains (pool/log-chain.ts) ---

  log(source: string, name: string): LogRow | undefined {
    const r = this.db.prepare('SELECT * FROM logs WHERE source = ? AND name = ?').get(source, name) as LogDb | undefined;
    return r ? toLog(r) : undefined;
  }

  /** A source's log records in chain order (optionally only seq >= from). */
  logs(source: string, from = 0): LogRow[] {
    return (this.db.prepare('SELECT * FROM logs WHERE source = ? AND seq >= ? ORDER BY seq').all(source, from) as LogDb[]).map(toLog);
  }

  lastLog(source: string): LogRow | undefined {
    const r = this.db.prepare('SELECT * FROM logs WHERE source = ? ORDER BY seq DESC LIMIT 1').get(source) as LogDb | undefined;
    return r ? toLog(r) : undefined;
  }

  /** Keys ('source/name') of every log record: cheap, for gc's re-mark check. */
  /** Every log record's gc mark key (logMarkKey). */
  logKeys(): string[] {
    return this.allLogs().map(logMarkKey);
  }

  allLogs(): LogRow[] {
    return (this.db.prepare('SELECT * FROM logs ORDER BY source, seq').all() as LogDb[]).map(toLog);
  }

  insertLog(l: LogRow): void {
    this.db
      .prepare('INSERT INTO logs (source, name, seq, kind, time, meta, manifest, bytes) VALUES (@source, @name, @seq, @kind, @time, @meta, @manifest, @bytes)')
      .run({ ...l, meta: JSON.stringify(l.meta), manifest: JSON.stringify(l.manifest) });
  }

  /** Deletes a source's log records with seq below `seq`. */
  deleteLogsBefore(source: string, seq: number): number {
    return this.db.prepare('DELETE FROM logs WHERE source = ? AND seq < ?').run(source, seq).changes;
  }
}
