/**
 * The server's storage maintenance: pruning by group policy, garbage collection, verification
 * and the storage-allocation check, on demand (the admin API) and on schedule (the scheduler's
 * tick calls `tick`). gc and verify are background tasks with progress, one at a time: a verify
 * reading a pack that gc is deleting would report damage that is not there. Both run while syncs
 * run; the pool's leases and commit check keep that safe (docs/design.md, "Garbage collection
 * and concurrent syncs"). Prunes are short catalog changes, serialized among themselves.
 *
 * Alerts kept here: `verify-damage` (critical; resolved when a verify finds the pool sound, which
 * runs by itself once syncs have re-sent every damaged chunk), `pool-full` (critical; a sync
 * failed with POOL_FULL; resolved by the next successful sync), `pool-capacity` and
 * `quota:<source>` (warnings at 90% of the pool's file system and of a source's quota).
 */
import { randomBytes } from 'node:crypto';
import { HoldfastError, isHoldfastError } from '../core/errors.js';
import { formatBytes } from '../core/units.js';
import { runGc, type GcReport } from '../pool/gc.js';
import { damageDetail, verifyPool, type VerifyReport } from '../pool/verify.js';
import type { Pool } from '../pool/pool.js';
import type { Alerts } from './alerts.js';
import type { ControlDb, JobRow } from './control-db.js';
import type { JobEnd } from './job-queue.js';
import { GroupPolicies } from './group-policy.js';
import { pruneGroups, type GroupPruneResult } from './retention-policy.js';
import { serverStorage, type ServerStorage } from './storage-usage.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** warn at this share of a quota or of the pool's file system */
export const WARN_SHARE = 0.9;
/** after a sync, storage is checked again once the last check is this old */
const USAGE_AFTER_SYNC_GAP_MS = 60_000;
const RECENT_TASKS = 20;

export interface MaintenanceOptions {
  /** scheduled prune of every group (null: off); default 1 h */
  pruneEveryMs?: number | null;
  /** prune a source's points right after each of its syncs; default true */
  pruneAfterSync?: boolean;
  /** scheduled gc (null: off); default 1 d */
  gcEveryMs?: number | null;
  /** start gc after a prune that removed points; default false */
  gcAfterPrune?: boolean;
  /** scheduled full verify (null: off); default 7 d */
  verifyEveryMs?: number | null;
  /** a scheduled verify re-hashes only packs not re-hashed within this span; default: the verify interval */
  verifyOlderThanMs?: number;
  /** storage allocation check (quota and pool alerts); default 10 min */
  usageEveryMs?: number;
}

export interface MaintenanceHost {
  pool: Pool;
  db: ControlDb;
  alerts: Alerts;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export type TaskType = 'gc' | 'verify';

export interface TaskView {
  id: string;
  type: TaskType;
  origin: string;
  state: 'running' | 'succeeded' | 'failed';
  params: Record<string, unknown>;
  progress: { phase: string; done: number; total: number } | null;
  result: GcReport | VerifyReport | null;
  error: { code: string; message: string } | null;
  started: string;
  finished: string | null;
}

type Schedule = 'prune' | 'gc' | 'verify' | 'usage';

export class Maintenance {
  readonly policies: GroupPolicies;
  private readonly every: Record<Schedule, number | null>;
  private current: { view: TaskView; abort: AbortController; done: Promise<void> } | undefined;
  private readonly recent: TaskView[] = [];
  private pruning: Promise<unknown> = Promise.resolve();
  private storageRun: Promise<ServerStorage> | undefined;
  private storageDirty = false;
  private healCheck = false;

  constructor(
    private readonly host: MaintenanceHost,
    private readonly opts: MaintenanceOptions = {},
  ) {
    this.policies = new GroupPolicies(host.db);
    const verifyEvery = opts.verifyEveryMs === undefined ? 7 * DAY : opts.verifyEveryMs;
    this.every = {
      prune: opts.pruneEveryMs === undefined ? HOUR : opts.pruneEveryMs,
      gc: opts.gcEveryMs === undefined ? DAY : opts.gcEveryMs,
      verify: verifyEvery,
      usage: opts.usageEveryMs ?? 10 * 60_000,
    };
    // A first start counts as a run: a new server does not gc or verify the moment it starts.
    const now = new Date().toISOString();
    for (const s of ['prune', 'gc', 'verify', 'usage'] as const) if (!this.last(s)) this.setLast(s, now);
  }

  private last(s: Schedule): string | undefined {
    return this.host.db.setting(`maintenance.${s}.last`);
  }

  private setLast(s: Schedule, at: string): void {
    this.host.db.setSetting(`maintenance.${s}.last`, at);
  }

  private due(s: Schedule, now: Date): boolean {
    const every = this.every[s];
    const last = this.last(s);
    return every !== null && (!last || now.getTime() - Date.parse(last) >= every);
  }

  /** Called by the scheduler each second: starts whatever fell due. Never waits. */
  tick(now: Date): void {
    if (this.due('prune', now)) {
      this.setLast('prune', now.toISOString());
      this.background('scheduled prune', this.prune({ origin: 'schedule' }));
    }
    if (!this.current && this.healCheck) {
      this.healCheck = false;
      if (this.damageHealed()) this.startVerify({ full: false, origin: 'heal' });
    }
    if (!this.current && this.due('verify', now)) {
      this.setLast('verify', now.toISOString());
      this.startVerify({ full: true, olderThanMs: this.opts.verifyOlderThanMs ?? this.every.verify ?? 7 * DAY, origin: 'schedule' });
    }
    if (!this.current && this.due('gc', now)) {
      this.setLast('gc', now.toISOString());
      this.startGc({ origin: 'schedule' });
    }
    const lastUsage = Date.parse(this.last('usage') ?? '') || 0;
    if (!this.storageRun && (this.due('usage', now) || (this.storageDirty && now.getTime() - lastUsage >= Math.min(USAGE_AFTER_SYNC_GAP_MS, this.every.usage ?? Infinity)))) {
      this.background('storage check', this.storage());
    }
  }

  private background(what: string, p: Promise<unknown>): void {
    p.catch((err: unknown) => this.host.log.warn({ err: (err as Error).message }, `${what} failed`));
  }

  /** A job ended: the hooks that follow a sync (prune, heal, storage check, pool-full alert). */
  jobEnded(job: JobRow, end: JobEnd): void {
    if (job.type !== 'sync') return;
    if (end.state === 'succeeded') {
      this.host.alerts.resolve('pool-full');
      this.storageDirty = true;
      if (this.host.db.activeAlert('verify-damage')) this.healCheck = true;
      if (this.opts.pruneAfterSync !== false) this.background(`prune of source '${job.source}'`, this.prune({ source: job.source, origin: 'after-sync' }));
    } else if (end.state === 'failed' && end.error.code === 'POOL_FULL') {
      this.host.alerts.raise('pool-full', 'pool-full', 'critical', this.host.pool.dir, `sync of source '${job.source}' failed: ${end.error.message}`);
    }
  }

  // --- prune
  prune(o: { group?: string; source?: string; dryRun?: boolean; origin: string }): Promise<GroupPruneResult> {
    const run = this.pruning.then(async () => {
      const r = await pruneGroups(this.host.pool, this.host.db, this.policies, o);
      if (!r.dryRun && (r.removed > 0 || r.logsRemoved > 0)) {
        const removed = r.groups.flatMap((g) => g.sources.flatMap((s) => s.remove.map((p) => `${s.source}/${p.id}`)));
        const logs = r.groups.flatMap((g) => g.sources.filter((s) => s.logs.records > 0).map((s) => ({ source: s.source, ...s.logs })));
        this.host.log.info({ origin: o.origin, removed, logs }, `pruned ${r.removed} recovery point(s) and ${r.logsRemoved} log record(s)`);
        this.storageDirty = true;
        if (this.opts.gcAfterPrune && !this.current) this.startGc({ origin: 'after-prune' });
      }
      return r;
    });
    this.pruning = run.catch(() => undefined);
    return run;
  }

  // --- background tasks
  startGc(o: { dryRun?: boolean; repackBelow?: number; origin: string }): TaskView {
    return this.start('gc', o.origin, { dryRun: o.dryRun === true, repackBelow: o.repackBelow }, async (view, signal) => {
      const r = await runGc(this.host.pool, {
        dryRun: o.dryRun,
        repackBelow: o.repackBelow,
        signal,
        onProgress: (phase, done, total) => (view.progress = { phase, done, total }),
      });
      if (!r.dryRun) this.storageDirty = true;
      return r;
    });
  }

  startVerify(o: { full: boolean; olderThanMs?: number; origin: string }): TaskView {
    return this.start('verify', o.origin, { full: o.full, olderThanMs: o.olderThanMs }, async (view) => {
      const r = await verifyPool(this.host.pool, { full: o.full, olderThanMs: o.olderThanMs, onProgress: (done, total) => (view.progress = { phase: 'packs', done, total }) });
      this.verifyAlert(r);
      return r;
    });
  }

  private start(type: TaskType, origin: string, params: Record<string, unknown>, fn: (view: TaskView, signal: AbortSignal) => Promise<GcReport | VerifyReport>): TaskView {
    if (this.current) {
      const c = this.current.view;
      throw new HoldfastError('CONFLICT', `a ${c.type} task (${c.id}, started ${c.started}) is running; one gc or verify runs at a time`);
    }
    const view: TaskView = { id: randomBytes(8).toString('hex'), type, origin, state: 'running', params, progress: null, result: null, error: null, started: new Date().toISOString(), finished: null };
    const abort = new AbortController();
    const done = fn(view, abort.signal).then(
      (result) => {
        view.state = 'succeeded';
        view.result = result;
        this.host.log.info({ task: view.id, origin, result }, `${type} finished`);
      },
      (err: unknown) => {
        view.state = 'failed';
        view.error = isHoldfastError(err) ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: (err as Error).message };
        this.host.log.warn({ task: view.id, origin, error: view.error }, `${type} failed`);
      },
    );
    this.current = {
      view,
      abort,
      done: done.finally(() => {
        view.finished = new Date().toISOString();
        this.current = undefined;
        this.recent.unshift(view);
        this.recent.length = Math.min(this.recent.length, RECENT_TASKS);
      }),
    };
    return view;
  }

  task(id: string): TaskView {
    const t = this.current?.view.id === id ? this.current.view : this.recent.find((v) => v.id === id);
    if (!t) throw new HoldfastError('NOT_FOUND', `no maintenance task ${id} (the server keeps the last ${RECENT_TASKS})`, { task: id });
    return t;
  }

  status(): Record<string, unknown> {
    const schedule: Record<string, unknown> = {};
    for (const s of ['prune', 'gc', 'verify', 'usage'] as const) {
      const every = this.every[s];
      const last = this.last(s) ?? null;
      schedule[s] = { everyMs: every, last, next: every === null || !last ? null : new Date(Date.parse(last) + every).toISOString() };
    }
    return { running: this.current?.view ?? null, recent: this.recent, schedule };
  }

  // --- verification alerts and healing
  private verifyAlert(r: VerifyReport): void {
    if (r.ok) {
      this.host.alerts.resolve('verify-damage');
      return;
    }
    const list = (xs: string[]): string => `${xs.slice(0, 10).join('; ')}${xs.length > 10 ? '; …' : ''}`;
    const points = r.damagedPoints.map((p) => `${p.source} ${p.point} (${p.time}): ${damageDetail(p)}`);
    const logs = (r.damagedLogs ?? []).map((l) => `${l.source} ${l.name} (seq ${l.seq})`);
    const found: string[] = [];
    if (points.length > 0) found.push(`${points.length} damaged recovery point(s): ${list(points)}`);
    if (logs.length > 0) found.push(`${logs.length} damaged log record(s), past which a database cannot be recovered: ${list(logs)}`);
    const msg =
      found.length > 0
        ? `verify found ${found.join('; and ')}. The next sync of each source re-sends the damaged chunks it still has${logs.length > 0 ? "; shipped logs are not sent again: a new express full ('holdfast sync SOURCE') starts a sound chain" : ''}`
        : `verify found ${r.damagedChunks.length} damaged chunk(s) and ${r.problems.length} problem(s) that no recovery point or log record depends on: ${r.problems.slice(0, 3).join('; ')}`;
    this.host.alerts.raise('verify-damage', 'verify-damage', found.length > 0 ? 'critical' : 'warning', this.host.pool.dir, msg);
  }

  /** Every damaged chunk has a sound copy again (syncs re-sent them): a quick verify can confirm it. */
  private damageHealed(): boolean {
    const damaged = this.host.pool.catalog.damagedLocations();
    return damaged.length > 0 && damaged.every((d) => this.host.pool.index.has(d.digest));
  }

  // --- storage allocation
  /** Fresh figures, and the quota and pool alerts they imply; concurrent callers share one pass. */
  storage(): Promise<ServerStorage> {
    this.storageRun ??= (async () => {
      try {
        this.storageDirty = false;
        const u = await serverStorage(this.host.pool, this.host.db, this.policies);
        this.setLast('usage', u.time);
        this.storageAlerts(u);
        return u;
      } finally {
        this.storageRun = undefined;
      }
    })();
    return this.storageRun;
  }

  private storageAlerts(u: ServerStorage): void {
    const a = this.host.alerts;
    const p = u.pool;
    const share = p.capacityBytes > 0 ? 1 - p.freeBytes / p.capacityBytes : 0;
    if (share >= WARN_SHARE) {
      a.raise('pool-capacity', 'pool-capacity', 'warning', this.host.pool.dir, `storage pool ${this.host.pool.dir} is ${(share * 100).toFixed(0)}% full: ${formatBytes(p.freeBytes)} free of ${formatBytes(p.capacityBytes)}`);
    } else a.resolve('pool-capacity');
    for (const s of u.sources) {
      const key = `quota:${s.source}`;
      if (s.quotaBytes !== null && s.storedBytes >= WARN_SHARE * s.quotaBytes) {
        const pct = ((100 * s.storedBytes) / s.quotaBytes).toFixed(0);
        a.raise(key, 'quota', 'warning', s.source, `source '${s.source}' stores ${formatBytes(s.storedBytes)}, ${pct}% of its ${s.quotaFrom} quota of ${formatBytes(s.quotaBytes)} (group '${s.group}')`);
      } else a.resolve(key);
    }
  }

  async close(): Promise<void> {
    const c = this.current;
    c?.abort.abort();
    // gc stops at its next step; a verify cannot be stopped and is not waited for (the pool's
    // close ends it, unrecorded: a verify records everything in one transaction at its end).
    if (c?.view.type === 'gc') await c.done;
    await this.pruning;
    await this.storageRun?.catch(() => undefined);
  }
}
