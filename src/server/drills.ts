/**
 * Recoverability drills on the server: asking for one (a 'drill' job for the source's agent),
 * the job's spec, recording what the agent found with the recovery point (control table
 * `drills`), the `drill-failed` alert (raised by a failed drill, resolved by the next good one of
 * the source), and each group's drill schedule and check query (columns of `groups`, added here
 * beside the only code that reads them).
 *
 * A schedule is either recovery-point-like times of day ('03:30' or '03:30,15:30', server local
 * time) or an interval ('12h'): a source is drilled when a time falls due, or when its last drill
 * (or scheduled request) is that old. Only sources with a recovery point are drilled.
 */
import { HoldfastError } from '../core/errors.js';
import { parseDuration } from '../core/units.js';
import type { DrillJobSpec, DrillReport } from '../core/protocol.js';
import type { JobRow, SourceRowC } from './control-db.js';
import type { JobEnd } from './job-queue.js';
import type { ProtectionServer } from './protection-server.js';
import { lastSlot } from './schedule.js';
import { databaseRestoreParams, databaseSpecParts, isDatabaseKind, planDatabaseRestore } from './log-restore.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS drills (
  id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, point TEXT NOT NULL, job TEXT NOT NULL UNIQUE,
  time TEXT NOT NULL, at TEXT, ok INTEGER NOT NULL, check_kind TEXT NOT NULL, detail TEXT NOT NULL,
  duration_ms INTEGER NOT NULL, restore_ms INTEGER, check_ms INTEGER, origin TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS drills_by_source ON drills(source, id);
CREATE INDEX IF NOT EXISTS drills_by_point ON drills(point, id);
`;
const TIMES = /^([01]\d|2[0-3]):[0-5]\d(,([01]\d|2[0-3]):[0-5]\d)*$/;

export interface DrillRow {
  id: number;
  source: string;
  point: string;
  job: string;
  /** when the drill ended */
  time: string;
  /** the time it recovered to, when asked for one */
  at: string | null;
  ok: boolean;
  check: string;
  detail: string;
  durationMs: number;
  restoreMs: number | null;
  checkMs: number | null;
  origin: string;
}

export type DrillSchedule = { times: string[] } | { everyMs: number };

export interface DrillPolicy {
  /** as given: '03:30', '03:30,15:30', '12h'; null: no scheduled drills */
  schedule: string | null;
  /** a query the check runs as well (PostgreSQL: instead of amcheck where it is missing) */
  query: string | null;
}

type Raw = Record<string, unknown>;
function rowOf(r: Raw): DrillRow {
  return {
    id: r.id as number, source: r.source as string, point: r.point as string, job: r.job as string, time: r.time as string, at: r.at as string | null,
    ok: r.ok === 1, check: r.check_kind as string, detail: r.detail as string, durationMs: r.duration_ms as number,
    restoreMs: r.restore_ms as number | null, checkMs: r.check_ms as number | null, origin: r.origin as string,
  };
}

/** '03:30,15:30' → times; '12h' → interval; throws BAD_ARGUMENT otherwise. */
export function parseDrillSchedule(text: string): DrillSchedule {
  const t = text.replace(/\s+/g, '');
  if (TIMES.test(t)) return { times: [...new Set(t.split(','))].sort() };
  let everyMs: number;
  try {
    everyMs = parseDuration(t);
  } catch {
    throw new HoldfastError('BAD_ARGUMENT', `drill schedule '${text}' is neither times of day (HH:MM[,HH:MM…]) nor an interval (e.g. 12h, 7d), nor 'off'`);
  }
  if (everyMs < 60_000) throw new HoldfastError('BAD_ARGUMENT', `drill schedule '${text}' is too frequent (at least 1m)`);
  return { everyMs };
}

export class Drills {
  constructor(private readonly server: ProtectionServer) {
    const db = server.db.db;
    db.exec(SCHEMA);
    const cols = (db.prepare('PRAGMA table_info(groups)').all() as Array<{ name: string }>).map((c) => c.name);
    if (!cols.includes('drill_schedule')) db.exec('ALTER TABLE groups ADD COLUMN drill_schedule TEXT');
    if (!cols.includes('drill_query')) db.exec('ALTER TABLE groups ADD COLUMN drill_query TEXT');
  }

  // --- group policy
  policy(group: string): DrillPolicy {
    const r = this.server.db.db.prepare('SELECT drill_schedule, drill_query FROM groups WHERE name = ?').get(group) as { drill_schedule: string | null; drill_query: string | null } | undefined;
    return { schedule: r?.drill_schedule ?? null, query: r?.drill_query ?? null };
  }

  /** Throws on a bad value before anything is created or changed. */
  static check(patch: { drillSchedule?: string; drillQuery?: string }): void {
    if (patch.drillSchedule !== undefined && patch.drillSchedule !== 'off') parseDrillSchedule(patch.drillSchedule);
  }

  /** 'off' (schedule) or '' (query) clears. */
  updatePolicy(group: string, patch: { drillSchedule?: string; drillQuery?: string }): DrillPolicy {
    Drills.check(patch);
    const cur = this.policy(group);
    const schedule = patch.drillSchedule === undefined ? cur.schedule : patch.drillSchedule === 'off' ? null : patch.drillSchedule.replace(/\s+/g, '');
    const query = patch.drillQuery === undefined ? cur.query : patch.drillQuery.trim() || null;
    this.server.db.db.prepare('UPDATE groups SET drill_schedule = ?, drill_query = ? WHERE name = ?').run(schedule, query, group);
    return { schedule, query };
  }

  /** The fields a group view adds. */
  groupView(group: string): Record<string, unknown> {
    const p = this.policy(group);
    return { drillSchedule: p.schedule, drillQuery: p.query };
  }

  // --- jobs
  /** Queues a drill of the point at or before `at` (or the one named, or the newest). A queued drill of the source is reused. */
  request(source: string, o: { at?: string; point?: string; check?: 'postgres' | 'sqlite' | 'bytes'; origin: string }): JobRow {
    const s = this.server.requireSource(source);
    const agent = this.server.requireAgent(s.agentId);
    if (agent.revoked) throw new HoldfastError('CONFLICT', `source '${source}' belongs to revoked agent '${agent.name}'`);
    if (o.at && o.point) throw new HoldfastError('BAD_ARGUMENT', 'give a point or a time (--at), not both');
    let params: Record<string, unknown>;
    if (isDatabaseKind(s.kind) && !o.check) {
      // The same plan as a restore: the nearest point and the log records up to the target (or all
      // of them), refused when the chain cannot reach it or has a gap.
      const plan = planDatabaseRestore(this.server, s, o.point ? { point: o.point } : o.at ? { at: o.at } : { latest: true });
      params = { ...databaseRestoreParams(plan, { start: false }), ...(plan.targetTime ? { at: plan.targetTime } : {}) };
    } else {
      const p = this.server.pool.resolvePoint(source, { point: o.point, at: o.at });
      params = { point: p.id, ...(o.at ? { at: new Date(o.at).toISOString() } : {}), ...(o.check ? { check: o.check } : {}) };
    }
    const queued = this.server.db.openJobs().find((j) => j.type === 'drill' && j.source === source && j.state === 'queued');
    if (queued && JSON.stringify(queued.params) === JSON.stringify(params)) return queued;
    return this.server.queue.enqueue('drill', source, s.agentId, params, o.origin);
  }

  spec(job: JobRow): DrillJobSpec {
    const s = this.server.requireSource(job.source);
    const p = this.server.pool.catalog.point(job.params.point as string);
    if (!p) throw new HoldfastError('POINT_NOT_FOUND', `recovery point ${String(job.params.point)} of source '${s.name}' no longer exists`);
    const pg = (s.options as { postgres?: { connect?: string; bin?: string } }).postgres;
    const query = this.policy(s.group).query;
    const db = databaseSpecParts(this.server, job, s, p);
    return {
      id: job.id,
      attempt: job.attempt,
      type: 'drill',
      source: { name: s.name, kind: s.kind, path: s.path },
      point: { id: p.id, kind: p.kind, time: p.time, manifest: p.manifest, logicalBytes: p.logicalBytes, files: p.files, ...(p.meta ? { meta: p.meta } : {}) },
      ...(typeof job.params.at === 'string' ? { at: job.params.at } : {}),
      ...(db.logs ? { logs: db.logs } : {}),
      ...(db.database?.immediate ? { immediate: true } : {}),
      check: { ...(typeof job.params.check === 'string' ? { kind: job.params.check as 'postgres' | 'sqlite' | 'bytes' } : {}), ...(query ? { query } : {}), ...(pg?.bin ? { bin: pg.bin } : {}), ...(pg?.connect ? { connect: pg.connect } : {}) },
    };
  }

  /** What the drill's agent may read: the point's content and the raw chunks of the log records its plan named. */
  /** The agent's report: recorded, alerted, and the job ends (failed when the drill found a problem). */
  complete(job: JobRow, r: DrillReport): Record<string, unknown> {
    const row = this.record(job, { ok: r.ok, check: r.check, detail: r.detail, restoreMs: r.restoreMs, checkMs: r.checkMs });
    const result = { ...this.view(row), entries: r.entries, bytes: r.bytes, counts: r.counts ?? null };
    if (r.ok) this.server.queue.end(job.id, { state: 'succeeded', result });
    else this.server.queue.end(job.id, { state: 'failed', error: { code: 'JOB_FAILED', message: `drill of source '${job.source}' (recovery point ${row.point}) failed: ${r.detail}` }, result });
    return result;
  }

  /**
   * A drill job that ended without a report (the agent failed it, or it could not start) still
   * counts as a failed drill — except the first time its agent was lost during it: that says
   * nothing about the point, so the drill runs again (its agent clears the copy it left).
   */
  jobEnded(job: JobRow, end: JobEnd): void {
    if (end.state !== 'failed' || this.byJob(job.id)) return;
    if (end.error.code === 'SERVER_UNREACHABLE' && job.retryOf === null) {
      this.server.queue.enqueue('drill', job.source, job.agentId, job.params, 'retry', { retryOf: job.id, notBefore: new Date(Date.now() + 2000).toISOString() });
      return;
    }
    this.record(job, { ok: false, check: 'none', detail: `the drill could not run: ${end.error.code}: ${end.error.message}`, restoreMs: null, checkMs: null });
  }

  private record(job: JobRow, r: { ok: boolean; check: string; detail: string; restoreMs: number | null; checkMs: number | null }): DrillRow {
    const now = new Date().toISOString();
    const started = job.started ? Date.parse(job.started) : Date.now();
    const db = this.server.db.db;
    const info = db
      .prepare('INSERT INTO drills (source, point, job, time, at, ok, check_kind, detail, duration_ms, restore_ms, check_ms, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(job.source, String(job.params.point), job.id, now, typeof job.params.at === 'string' ? job.params.at : null, r.ok ? 1 : 0, r.check, r.detail, Date.now() - started, r.restoreMs, r.checkMs, job.origin);
    const row = this.byId(Number(info.lastInsertRowid)) as DrillRow;
    const key = `drill:${job.source}`;
    if (r.ok) this.server.alerts.resolve(key);
    else this.server.alerts.raise(key, 'drill-failed', 'critical', job.source, `drill of source '${job.source}' (recovery point ${row.point}${row.at ? ` at ${row.at}` : ''}) failed: ${r.detail}`);
    this.server.opts.log.info({ source: job.source, point: row.point, ok: r.ok, check: r.check }, 'drill recorded');
    return row;
  }

  // --- results
  private byId(id: number): DrillRow | undefined {
    const r = this.server.db.db.prepare('SELECT * FROM drills WHERE id = ?').get(id) as Raw | undefined;
    return r && rowOf(r);
  }

  byJob(job: string): DrillRow | undefined {
    const r = this.server.db.db.prepare('SELECT * FROM drills WHERE job = ?').get(job) as Raw | undefined;
    return r && rowOf(r);
  }

  /** Newest first. */
  list(o: { source?: string; limit?: number } = {}): DrillRow[] {
    const rows = o.source
      ? this.server.db.db.prepare('SELECT * FROM drills WHERE source = ? ORDER BY id DESC LIMIT ?').all(o.source, o.limit ?? 100)
      : this.server.db.db.prepare('SELECT * FROM drills ORDER BY id DESC LIMIT ?').all(o.limit ?? 100);
    return (rows as Raw[]).map(rowOf);
  }

  latest(source: string): DrillRow | undefined {
    return this.list({ source, limit: 1 })[0];
  }

  /** Each point's newest drill. */
  latestByPoint(source: string): Map<string, DrillRow> {
    const rows = (this.server.db.db.prepare('SELECT * FROM drills WHERE source = ? ORDER BY id').all(source) as Raw[]).map(rowOf);
    return new Map(rows.map((r) => [r.point, r]));
  }

  view(r: DrillRow): Record<string, unknown> {
    return { id: r.id, source: r.source, point: r.point, job: r.job, time: r.time, at: r.at, ok: r.ok, check: r.check, detail: r.detail, durationMs: r.durationMs, restoreMs: r.restoreMs, checkMs: r.checkMs, origin: r.origin };
  }

  /** What a point or source view shows: ok or not, when, and the words. */
  brief(r: DrillRow | undefined): { time: string; ok: boolean; detail: string } | null {
    return r ? { time: r.time, ok: r.ok, detail: r.detail } : null;
  }

  // --- schedule
  /** Called by the scheduler's tick: queues the drills that fell due. Never waits. */
  tick(now: Date): void {
    const s = this.server;
    const open = s.db.openJobs();
    const schedules = new Map<string, DrillSchedule | null>();
    for (const src of s.db.sources()) {
      if (!schedules.has(src.group)) {
        const text = this.policy(src.group).schedule;
        let sch: DrillSchedule | null = null;
        try {
          sch = text ? parseDrillSchedule(text) : null;
        } catch {
          sch = null; // checked when set; an old value that no longer parses schedules nothing
        }
        schedules.set(src.group, sch);
      }
      const sch = schedules.get(src.group);
      if (!sch || open.some((j) => j.type === 'drill' && j.source === src.name)) continue;
      if (this.due(src, sch, now)) this.scheduled(src, now);
    }
  }

  private due(src: SourceRowC, sch: DrillSchedule, now: Date): boolean {
    const s = this.server;
    if (!s.pool.catalog.latestPointHead(src.name)) return false;
    const agent = s.db.agent(src.agentId);
    if (!agent || agent.revoked) return false;
    if ('times' in sch) {
      const slot = lastSlot(sch.times, now);
      const key = `drill.slot.${src.name}`;
      const last = s.db.setting(key);
      if (!slot || slot.getTime() < Date.parse(src.created) || (last && last >= slot.toISOString())) return false;
      s.db.setSetting(key, slot.toISOString());
      return true;
    }
    const lastAsked = s.db.setting(`drill.asked.${src.name}`);
    const lastDrill = this.latest(src.name)?.time;
    const last = Math.max(lastAsked ? Date.parse(lastAsked) : 0, lastDrill ? Date.parse(lastDrill) : 0);
    return now.getTime() - last >= sch.everyMs;
  }

  /** A scheduled drill that cannot even be planned (a gap in the log chain) is a failed drill too. */
  private scheduled(src: SourceRowC, now: Date): void {
    this.server.db.setSetting(`drill.asked.${src.name}`, now.toISOString());
    try {
      this.request(src.name, { origin: 'schedule' });
    } catch (err) {
      const why = (err as Error).message;
      this.server.opts.log.warn({ source: src.name, err: why }, 'scheduled drill could not be queued');
      this.server.alerts.raise(`drill:${src.name}`, 'drill-failed', 'critical', src.name, `scheduled drill of source '${src.name}' could not run: ${why}`);
    }
  }
}
