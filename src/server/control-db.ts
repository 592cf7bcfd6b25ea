/**
 * The control catalog: agents, join tokens, protection groups, sources, jobs and alerts, in
 * SQLite (WAL) beside the pool. Recovery points themselves stay in the pool's catalog; this one
 * holds policy and the work the server hands out.
 */
import Database from 'better-sqlite3';
import type { SourceOptions } from '../core/protocol.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS agents (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, hostname TEXT NOT NULL, created TEXT NOT NULL,
  last_seen TEXT, revoked INTEGER NOT NULL DEFAULT 0, version TEXT, cert_serial TEXT);
CREATE TABLE IF NOT EXISTS join_tokens (
  id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, name TEXT, created TEXT NOT NULL, expires TEXT NOT NULL,
  used TEXT, used_by TEXT);
CREATE TABLE IF NOT EXISTS groups (
  name TEXT PRIMARY KEY, sync_every_ms INTEGER, points TEXT NOT NULL, retain_ms INTEGER NOT NULL,
  compress INTEGER NOT NULL, throttle_bps INTEGER, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
  name TEXT PRIMARY KEY, group_name TEXT NOT NULL REFERENCES groups(name), agent_id TEXT NOT NULL REFERENCES agents(id),
  kind TEXT NOT NULL, path TEXT NOT NULL, created TEXT NOT NULL, last_sync TEXT, last_point_slot TEXT, options TEXT);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, type TEXT NOT NULL, source TEXT NOT NULL, agent_id TEXT NOT NULL, state TEXT NOT NULL,
  origin TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, params TEXT NOT NULL, progress TEXT, result TEXT,
  error TEXT, created TEXT NOT NULL, started TEXT, finished TEXT, retry_of TEXT, not_before TEXT);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, created);
CREATE TABLE IF NOT EXISTS alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
  object TEXT NOT NULL, message TEXT NOT NULL, state TEXT NOT NULL, raised TEXT NOT NULL, updated TEXT NOT NULL,
  resolved TEXT);
CREATE INDEX IF NOT EXISTS alerts_active ON alerts(key, state);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

export interface AgentRow {
  id: string;
  name: string;
  hostname: string;
  created: string;
  lastSeen: string | null;
  revoked: boolean;
  version: string | null;
}

export interface GroupRow {
  name: string;
  syncEveryMs: number | null;
  points: string[];
  retainMs: number;
  compress: boolean;
  throttleBps: number | null;
  created: string;
}

export interface SourceRowC {
  name: string;
  group: string;
  agentId: string;
  kind: 'dir' | 'image' | 'btrfs' | 'postgres' | 'sqlite';
  /** how the agent reads it */
  options: SourceOptions;
  path: string;
  created: string;
  lastSync: string | null;
  lastPointSlot: string | null;
}

export type JobType = 'sync' | 'restore' | 'drill';
export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobRow {
  id: string;
  type: JobType;
  source: string;
  agentId: string;
  state: JobState;
  origin: string;
  attempt: number;
  params: Record<string, unknown>;
  progress: Record<string, unknown> | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
  created: string;
  started: string | null;
  finished: string | null;
  retryOf: string | null;
  notBefore: string | null;
}

export interface AlertRow {
  id: number;
  key: string;
  kind: string;
  severity: 'info' | 'warning' | 'critical';
  object: string;
  message: string;
  state: 'active' | 'resolved';
  raised: string;
  updated: string;
  resolved: string | null;
}

type Raw = Record<string, unknown>;
const json = <T>(v: unknown): T | null => (v === null || v === undefined ? null : (JSON.parse(v as string) as T));

function agentOf(r: Raw): AgentRow {
  return { id: r.id as string, name: r.name as string, hostname: r.hostname as string, created: r.created as string, lastSeen: r.last_seen as string | null, revoked: r.revoked === 1, version: r.version as string | null };
}
function groupOf(r: Raw): GroupRow {
  return { name: r.name as string, syncEveryMs: r.sync_every_ms as number | null, points: JSON.parse(r.points as string) as string[], retainMs: r.retain_ms as number, compress: r.compress === 1, throttleBps: r.throttle_bps as number | null, created: r.created as string };
}
function sourceOf(r: Raw): SourceRowC {
  return { name: r.name as string, group: r.group_name as string, agentId: r.agent_id as string, kind: r.kind as SourceRowC['kind'], options: json<SourceOptions>(r.options) ?? {}, path: r.path as string, created: r.created as string, lastSync: r.last_sync as string | null, lastPointSlot: r.last_point_slot as string | null };
}
function jobOf(r: Raw): JobRow {
  return {
    id: r.id as string, type: r.type as JobType, source: r.source as string, agentId: r.agent_id as string, state: r.state as JobState,
    origin: r.origin as string, attempt: r.attempt as number, params: json(r.params) ?? {}, progress: json(r.progress), result: json(r.result),
    error: json(r.error), created: r.created as string, started: r.started as string | null, finished: r.finished as string | null,
    retryOf: r.retry_of as string | null, notBefore: r.not_before as string | null,
  };
}
function alertOf(r: Raw): AlertRow {
  return { id: r.id as number, key: r.key as string, kind: r.kind as string, severity: r.severity as AlertRow['severity'], object: r.object as string, message: r.message as string, state: r.state as AlertRow['state'], raised: r.raised as string, updated: r.updated as string, resolved: r.resolved as string | null };
}

export class ControlDb {
  readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    // Each statement is prepared once and reused: preparing it at every call was a large share
    // of the server's main thread with many agents polling and reporting.
    const prepare = this.db.prepare.bind(this.db);
    const statements = new Map<string, Database.Statement>();
    this.db.prepare = ((sql: string): Database.Statement => {
      let st = statements.get(sql);
      if (!st) statements.set(sql, (st = prepare(sql)));
      return st;
    }) as unknown as typeof this.db.prepare;
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
    // Columns added after the first release of a table.
    const cols = (this.db.prepare('PRAGMA table_info(sources)').all() as Array<{ name: string }>).map((c) => c.name);
    if (!cols.includes('options')) this.db.exec('ALTER TABLE sources ADD COLUMN options TEXT');
    const jobCols = (this.db.prepare('PRAGMA table_info(jobs)').all() as Array<{ name: string }>).map((c) => c.name);
    if (!jobCols.includes('agent_run')) this.db.exec('ALTER TABLE jobs ADD COLUMN agent_run TEXT');
  }

  close(): void {
    this.db.close();
  }

  setting(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  // --- agents and join tokens
  addJoinToken(t: { id: string; secretHash: string; name: string | null; created: string; expires: string }): void {
    this.db.prepare('INSERT INTO join_tokens (id, secret_hash, name, created, expires) VALUES (?, ?, ?, ?, ?)').run(t.id, t.secretHash, t.name, t.created, t.expires);
  }

  joinToken(id: string): { id: string; secretHash: string; name: string | null; expires: string; used: string | null } | undefined {
    const r = this.db.prepare('SELECT * FROM join_tokens WHERE id = ?').get(id) as Raw | undefined;
    return r && { id: r.id as string, secretHash: r.secret_hash as string, name: r.name as string | null, expires: r.expires as string, used: r.used as string | null };
  }

  /** Marks the token used; false when it already was (one use, even under races). */
  useJoinToken(id: string, agentId: string, at: string): boolean {
    return this.db.prepare('UPDATE join_tokens SET used = ?, used_by = ? WHERE id = ? AND used IS NULL').run(at, agentId, id).changes === 1;
  }

  addAgent(a: { id: string; name: string; hostname: string; created: string; version: string | null }): void {
    this.db.prepare('INSERT INTO agents (id, name, hostname, created, version) VALUES (?, ?, ?, ?, ?)').run(a.id, a.name, a.hostname, a.created, a.version);
  }

  agents(): AgentRow[] {
    return (this.db.prepare('SELECT * FROM agents ORDER BY name').all() as Raw[]).map(agentOf);
  }

  agent(idOrName: string): AgentRow | undefined {
    const r = this.db.prepare('SELECT * FROM agents WHERE id = ? OR name = ?').get(idOrName, idOrName) as Raw | undefined;
    return r && agentOf(r);
  }

  touchAgent(id: string, at: string, version?: string): void {
    this.db.prepare('UPDATE agents SET last_seen = ?, version = COALESCE(?, version) WHERE id = ?').run(at, version ?? null, id);
  }

  revokeAgent(id: string): void {
    this.db.prepare('UPDATE agents SET revoked = 1 WHERE id = ?').run(id);
  }

  // --- groups and sources
  addGroup(g: GroupRow): void {
    this.db
      .prepare('INSERT INTO groups (name, sync_every_ms, points, retain_ms, compress, throttle_bps, created) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(g.name, g.syncEveryMs, JSON.stringify(g.points), g.retainMs, g.compress ? 1 : 0, g.throttleBps, g.created);
  }

  updateGroup(g: GroupRow): void {
    this.db
      .prepare('UPDATE groups SET sync_every_ms = ?, points = ?, retain_ms = ?, compress = ?, throttle_bps = ? WHERE name = ?')
      .run(g.syncEveryMs, JSON.stringify(g.points), g.retainMs, g.compress ? 1 : 0, g.throttleBps, g.name);
  }

  groups(): GroupRow[] {
    return (this.db.prepare('SELECT * FROM groups ORDER BY name').all() as Raw[]).map(groupOf);
  }

  group(name: string): GroupRow | undefined {
    const r = this.db.prepare('SELECT * FROM groups WHERE name = ?').get(name) as Raw | undefined;
    return r && groupOf(r);
  }

  addSource(s: SourceRowC): void {
    this.db
      .prepare('INSERT INTO sources (name, group_name, agent_id, kind, path, created, options) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(s.name, s.group, s.agentId, s.kind, s.path, s.created, JSON.stringify(s.options));
  }

  /** A source's group and options (name, agent, kind and path never change). */
  updateSource(s: SourceRowC): void {
    this.db.prepare('UPDATE sources SET group_name = ?, options = ? WHERE name = ?').run(s.group, JSON.stringify(s.options), s.name);
  }

  sources(): SourceRowC[] {
    return (this.db.prepare('SELECT * FROM sources ORDER BY name').all() as Raw[]).map(sourceOf);
  }

  source(name: string): SourceRowC | undefined {
    const r = this.db.prepare('SELECT * FROM sources WHERE name = ?').get(name) as Raw | undefined;
    return r && sourceOf(r);
  }

  markSynced(name: string, at: string): void {
    this.db.prepare('UPDATE sources SET last_sync = ? WHERE name = ?').run(at, name);
  }

  markPointSlot(name: string, slot: string): void {
    this.db.prepare('UPDATE sources SET last_point_slot = ? WHERE name = ?').run(slot, name);
  }

  // --- jobs
  addJob(j: JobRow): void {
    this.db
      .prepare(
        `INSERT INTO jobs (id, type, source, agent_id, state, origin, attempt, params, created, retry_of, not_before)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(j.id, j.type, j.source, j.agentId, j.state, j.origin, j.attempt, JSON.stringify(j.params), j.created, j.retryOf, j.notBefore);
  }

  job(id: string): JobRow | undefined {
    const r = this.db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Raw | undefined;
    return r && jobOf(r);
  }

  jobs(opts: { state?: JobState; source?: string; limit?: number } = {}): JobRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.state) {
      where.push('state = ?');
      args.push(opts.state);
    }
    if (opts.source) {
      where.push('source = ?');
      args.push(opts.source);
    }
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created DESC, id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, opts.limit ?? 200) as Raw[]).map(jobOf);
  }

  /** Jobs not finished (queued or running), oldest first. */
  openJobs(): JobRow[] {
    return (this.db.prepare("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY created, id").all() as Raw[]).map(jobOf);
  }

  startJob(id: string, at: string, agentRun: string | null): boolean {
    return (
      this.db.prepare("UPDATE jobs SET state = 'running', started = ?, attempt = attempt + 1, error = NULL, agent_run = ? WHERE id = ? AND state = 'queued'").run(at, agentRun, id).changes === 1
    );
  }

  /** The agent process a running job was handed to. */
  jobRun(id: string): string | null {
    return (this.db.prepare('SELECT agent_run FROM jobs WHERE id = ?').get(id) as { agent_run: string | null } | undefined)?.agent_run ?? null;
  }

  requeueJob(id: string): void {
    this.db.prepare("UPDATE jobs SET state = 'queued' WHERE id = ? AND state = 'running'").run(id);
  }

  setProgress(id: string, progress: Record<string, unknown>): void {
    this.db.prepare("UPDATE jobs SET progress = ? WHERE id = ? AND state = 'running'").run(JSON.stringify(progress), id);
  }

  finishJob(id: string, state: 'succeeded' | 'failed' | 'cancelled', at: string, result: Record<string, unknown> | null, error: { code: string; message: string } | null): boolean {
    return (
      this.db
        .prepare("UPDATE jobs SET state = ?, finished = ?, result = ?, error = ? WHERE id = ? AND state IN ('queued', 'running')")
        .run(state, at, result && JSON.stringify(result), error && JSON.stringify(error), id).changes === 1
    );
  }

  // --- alerts
  activeAlert(key: string): AlertRow | undefined {
    const r = this.db.prepare("SELECT * FROM alerts WHERE key = ? AND state = 'active'").get(key) as Raw | undefined;
    return r && alertOf(r);
  }

  addAlert(a: Omit<AlertRow, 'id'>): AlertRow {
    const info = this.db
      .prepare('INSERT INTO alerts (key, kind, severity, object, message, state, raised, updated, resolved) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(a.key, a.kind, a.severity, a.object, a.message, a.state, a.raised, a.updated, a.resolved);
    return { ...a, id: Number(info.lastInsertRowid) };
  }

  resolveAlert(id: number, at: string): void {
    this.db.prepare("UPDATE alerts SET state = 'resolved', resolved = ?, updated = ? WHERE id = ?").run(at, at, id);
  }

  alerts(opts: { state?: 'active' | 'resolved'; limit?: number } = {}): AlertRow[] {
    const rows = opts.state
      ? this.db.prepare('SELECT * FROM alerts WHERE state = ? ORDER BY id DESC LIMIT ?').all(opts.state, opts.limit ?? 500)
      : this.db.prepare('SELECT * FROM alerts ORDER BY id DESC LIMIT ?').all(opts.limit ?? 500);
    return (rows as Raw[]).map(alertOf);
  }
}
