/**
 * The file-version index: for every path of every directory source, the runs of recovery points
 * over which it stayed the same (content, size, mtime, owner, mode, ACL). It answers "every
 * version of this file" and the portal's search without reading a manifest.
 *
 * A row is written only when a path changes: a version holds its first and last point (by the
 * source's indexing sequence; `last` NULL while it is in the newest indexed point). Points are
 * indexed in commit order, each in one transaction with its `vi_points` row, so a crash leaves a
 * point wholly indexed or not at all, and `catchUp()` (run at start, after each commit and
 * before each query) indexes whatever is missing. Points pruned later simply drop out of the
 * runs when they are expanded against the live catalog. The file is derived data: deleting it
 * rebuilds it from the manifests.
 */
import { createHash } from 'node:crypto';
import Database, { type Statement } from 'better-sqlite3';
import type { Entry } from '../core/manifest.js';
import { hasContent } from '../core/manifest.js';
import { ROOT_PATH, baseName } from '../core/entry-path.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS vi_points (
  source TEXT NOT NULL, seq INTEGER NOT NULL, point TEXT NOT NULL UNIQUE, time TEXT NOT NULL, PRIMARY KEY (source, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vi_paths (
  id INTEGER PRIMARY KEY, source TEXT NOT NULL, path TEXT NOT NULL, name TEXT NOT NULL, UNIQUE (source, path));
CREATE INDEX IF NOT EXISTS vi_paths_name ON vi_paths (name COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS vi_versions (
  path INTEGER NOT NULL, first INTEGER NOT NULL, last INTEGER, type TEXT NOT NULL, size INTEGER NOT NULL,
  mtime TEXT NOT NULL, hash TEXT, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL, acl TEXT,
  PRIMARY KEY (path, first)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vi_versions_open ON vi_versions (path) WHERE last IS NULL;
`;

/** One version of one path: the same from point `first` through `last` (sequence numbers). */
export interface VersionRow {
  pathId: number;
  first: number;
  /** null: still so in the newest indexed point */
  last: number | null;
  type: Entry['type'];
  size: number;
  mtimeNs: string;
  /** content identity: a hash of the chunk list (files) or the target (links); null for others */
  hash: string | null;
  mode: number;
  uid: number;
  gid: number;
  acl: string | null;
}

export interface IndexedPoint {
  seq: number;
  point: string;
  time: string;
}

type Raw = Record<string, unknown>;
const versionOf = (r: Raw): VersionRow => ({
  pathId: r.path as number, first: r.first as number, last: r.last as number | null, type: r.type as Entry['type'], size: r.size as number,
  mtimeNs: r.mtime as string, hash: r.hash as string | null, mode: r.mode as number, uid: r.uid as number, gid: r.gid as number, acl: r.acl as string | null,
});

function contentHash(e: Entry): string | null {
  if (hasContent(e)) {
    const h = createHash('sha256');
    for (const [d, n] of e.chunks) h.update(`${d}:${n};`);
    for (const [o, n] of e.holes ?? []) h.update(`h${o}:${n};`);
    return h.digest('base64url').slice(0, 22);
  }
  if (e.type === 'symlink') return createHash('sha256').update(e.target).digest('base64url').slice(0, 22);
  return null;
}

/** What makes two entries the same version. */
const signature = (type: string, size: number, mtime: string, hash: string | null, mode: number, uid: number, gid: number, acl: string | null): string =>
  `${type}|${size}|${mtime}|${hash ?? ''}|${mode}|${uid}|${gid}|${acl ?? ''}`;

const CACHE_MAX_PATHS = 500_000;

interface OpenVersion {
  id: number;
  sig: string;
  /** the sequence number of the last point indexing saw this path in */
  mark: number;
}

export class VersionIndex {
  readonly db: Database.Database;
  /** the open versions of the source indexed last, kept for its next point (saves reading them back) */
  private cache: { source: string; seq: number; open: Map<string, OpenVersion> } | undefined;
  /** the statements of per-path lookups, which a search makes thousands of */
  private pathIdStmt: Statement | undefined;
  private versionsStmt: Statement | undefined;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL'); // derived data: a lost tail is re-indexed
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  points(source: string): IndexedPoint[] {
    return this.db.prepare('SELECT seq, point, time FROM vi_points WHERE source = ? ORDER BY seq').all(source) as IndexedPoint[];
  }

  lastPoint(source: string): IndexedPoint | undefined {
    return this.db.prepare('SELECT seq, point, time FROM vi_points WHERE source = ? ORDER BY seq DESC LIMIT 1').get(source) as IndexedPoint | undefined;
  }

  isIndexed(point: string): boolean {
    return this.db.prepare('SELECT 1 FROM vi_points WHERE point = ?').get(point) !== undefined;
  }

  /**
   * Indexes one recovery point, the next in the source's commit order: entries equal to the open
   * version of their path extend it; others close it and open a new one; paths gone close.
   */
  async indexPoint(source: string, point: { id: string; time: string }, entries: AsyncIterable<Entry> | Iterable<Entry>): Promise<{ changed: number; entries: number }> {
    const prev = this.lastPoint(source);
    const prevSeq = prev?.seq ?? 0;
    const seq = prevSeq + 1;
    const cached = this.cache;
    this.cache = undefined; // until this point is committed
    const open = cached && cached.source === source && cached.seq === prevSeq ? cached.open : this.openVersions(source, prevSeq);
    const fresh: Array<{ path: string; id?: number; sig: string; type: string; size: number; mtime: string; hash: string | null; mode: number; uid: number; gid: number; acl: string | null }> = [];
    let count = 0;
    for await (const e of entries) {
      count++;
      const size = hasContent(e) ? e.size : 0;
      const hash = contentHash(e);
      const acl = e.xattrs?.['system.posix_acl_access'] ?? null;
      const sig = signature(e.type, size, e.mtimeNs, hash, e.mode, e.uid, e.gid, acl);
      const o = open.get(e.path);
      if (o) {
        o.mark = seq;
        if (o.sig === sig) continue;
      }
      fresh.push({ path: e.path, id: o?.id, sig, type: e.type, size, mtime: e.mtimeNs, hash, mode: e.mode, uid: e.uid, gid: e.gid, acl });
    }
    const closeStmt = this.db.prepare('UPDATE vi_versions SET last = ? WHERE path = ? AND last IS NULL');
    const pathStmt = this.db.prepare('INSERT INTO vi_paths (source, path, name) VALUES (?, ?, ?)');
    const knownStmt = this.db.prepare('SELECT id FROM vi_paths WHERE source = ? AND path = ?');
    const verStmt = this.db.prepare('INSERT INTO vi_versions (path, first, last, type, size, mtime, hash, mode, uid, gid, acl) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)');
    const gone: string[] = [];
    this.db.transaction(() => {
      for (const [path, o] of open) {
        if (o.mark === seq) continue;
        closeStmt.run(prevSeq, o.id);
        gone.push(path);
      }
      for (const f of fresh) {
        let id = f.id;
        if (id === undefined) {
          const known = knownStmt.get(source, f.path) as { id: number } | undefined;
          id = known?.id ?? Number(pathStmt.run(source, f.path, f.path === ROOT_PATH ? '' : baseName(f.path)).lastInsertRowid);
        } else closeStmt.run(prevSeq, id);
        verStmt.run(id, seq, f.type, f.size, f.mtime, f.hash, f.mode, f.uid, f.gid, f.acl);
        f.id = id;
      }
      this.db.prepare('INSERT INTO vi_points (source, seq, point, time) VALUES (?, ?, ?, ?)').run(source, seq, point.id, point.time);
    })();
    for (const path of gone) open.delete(path);
    for (const f of fresh) open.set(f.path, { id: f.id as number, sig: f.sig, mark: seq });
    // Bounded: a huge source reads its open versions back instead of holding them (~300 B each).
    if (open.size <= CACHE_MAX_PATHS) this.cache = { source, seq, open };
    return { changed: fresh.length, entries: count };
  }

  /**
   * Indexes a point whose manifest is the same as the source's last indexed point's (an unchanged
   * sync): every open version simply stays open, so nothing is read.
   */
  indexUnchanged(source: string, point: { id: string; time: string }): void {
    const seq = (this.lastPoint(source)?.seq ?? 0) + 1;
    this.db.prepare('INSERT INTO vi_points (source, seq, point, time) VALUES (?, ?, ?, ?)').run(source, seq, point.id, point.time);
    if (this.cache?.source === source && this.cache.seq === seq - 1) this.cache.seq = seq;
    else this.cache = undefined;
  }

  /** The versions of a source still open after point `seq`: path → id and signature. */
  private openVersions(source: string, seq: number): Map<string, OpenVersion> {
    const open = new Map<string, OpenVersion>();
    const rows = this.db
      .prepare('SELECT p.id, p.path, v.type, v.size, v.mtime, v.hash, v.mode, v.uid, v.gid, v.acl FROM vi_paths p JOIN vi_versions v ON v.path = p.id AND v.last IS NULL WHERE p.source = ?')
      .iterate(source) as IterableIterator<Raw>;
    for (const r of rows) {
      const sig = signature(r.type as string, r.size as number, r.mtime as string, r.hash as string | null, r.mode as number, r.uid as number, r.gid as number, r.acl as string | null);
      open.set(r.path as string, { id: r.id as number, sig, mark: seq });
    }
    return open;
  }

  pathId(source: string, path: string): number | undefined {
    this.pathIdStmt ??= this.db.prepare('SELECT id FROM vi_paths WHERE source = ? AND path = ?');
    return (this.pathIdStmt.get(source, path) as { id: number } | undefined)?.id;
  }

  /** Every version of one path, oldest first. */
  versions(pathId: number): VersionRow[] {
    this.versionsStmt ??= this.db.prepare('SELECT * FROM vi_versions WHERE path = ? ORDER BY first');
    return (this.versionsStmt.all(pathId) as Raw[]).map(versionOf);
  }

  /**
   * Paths whose name (or, when the text has a '/', whose path) contains the text, case-insensitive,
   * in the given sources, in (source, path) order; at most `limit`, after the path `after` (the
   * caller filters by permission and pages on: a key, not an offset, so page n costs no more than page 1).
   */
  search(sources: string[], text: string, limit: number, after?: { source: string; path: string }): Array<{ id: number; source: string; path: string }> {
    if (sources.length === 0) return [];
    const like = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const col = text.includes('/') ? 'path' : 'name';
    const marks = sources.map(() => '?').join(',');
    const from = after ? 'AND (source, path) > (?, ?)' : '';
    return this.db
      .prepare(`SELECT id, source, path FROM vi_paths WHERE source IN (${marks}) AND ${col} LIKE ? ESCAPE '\\' ${from} ORDER BY source, path LIMIT ?`)
      .all(...sources, like, ...(after ? [after.source, after.path] : []), limit) as Array<{ id: number; source: string; path: string }>;
  }

  /** Forgets a source (it was removed, or its points must be indexed again). */
  dropSource(source: string): void {
    this.cache = undefined;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM vi_versions WHERE path IN (SELECT id FROM vi_paths WHERE source = ?)').run(source);
      this.db.prepare('DELETE FROM vi_paths WHERE source = ?').run(source);
      this.db.prepare('DELETE FROM vi_points WHERE source = ?').run(source);
    })();
  }
}
