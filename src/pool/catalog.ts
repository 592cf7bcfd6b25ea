/**
 * The catalog: sources and recovery points in SQLite (WAL mode). A recovery point exists when
 * its row exists; the row is inserted only after its packs, index and manifest are durable.
 */
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
  `CREATE INDEX IF NOT EXISTS points_by_source_time ON points(source, time)`,
];

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
  };
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
        `INSERT INTO points (id, source, time, kind, manifest, logical_bytes, files, read_bytes, new_bytes, stored_new_bytes, duration_ms, parent, torn)
         VALUES (@id, @source, @time, @kind, @manifest, @logicalBytes, @files, @readBytes, @newBytes, @storedNewBytes, @durationMs, @parent, @torn)`,
      )
      .run({ ...p, manifest: JSON.stringify(p.manifest) });
  }

  points(source?: string): PointRow[] {
    const rows = source
      ? this.db.prepare('SELECT * FROM points WHERE source = ? ORDER BY time, id').all(source)
      : this.db.prepare('SELECT * FROM points ORDER BY source, time, id').all();
    return (rows as PointDb[]).map(toPoint);
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

  latestPoint(source: string, atOrBefore?: string): PointRow | undefined {
    const r = (
      atOrBefore
        ? this.db.prepare('SELECT * FROM points WHERE source = ? AND time <= ? ORDER BY time DESC, id DESC LIMIT 1').get(source, atOrBefore)
        : this.db.prepare('SELECT * FROM points WHERE source = ? ORDER BY time DESC, id DESC LIMIT 1').get(source)
    ) as PointDb | undefined;
    return r ? toPoint(r) : undefined;
  }
}
