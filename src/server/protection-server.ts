/**
 * The protection server's state and operations, independent of HTTP: the pool, the control
 * catalog, the job queue with each running job's transfer, alerts and the scheduler. Routes
 * are thin: they authenticate, validate, and call in here.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { HoldfastError } from '../core/errors.js';
import { normalizeSubPath, restoreSelection } from '../core/entry-path.js';
import { parseJoinToken, formatJoinToken } from '../core/tokens.js';
import type { JobSpec, JoinReply, RestoreReport, SourceOptions, SyncReport } from '../core/protocol.js';
import { Pool } from '../pool/pool.js';
import type { PointRow } from '../pool/catalog.js';
import { Alerts, type AlertLog } from './alerts.js';
import { Drills } from './drills.js';
import { ControlDb, type AgentRow, type GroupRow, type JobRow, type SourceRowC } from './control-db.js';
import { JobQueue, type JobEnd } from './job-queue.js';
import { CheckedPages } from './checked-pages.js';
import { JobTransfer } from './job-transfer.js';
import { recoverableRange } from './log-receiver.js';
import { databaseRestoreParams, databaseSpecParts, isDatabaseKind, logScope, planDatabaseRestore } from './log-restore.js';
import { Maintenance, type MaintenanceOptions } from './maintenance.js';
import { issueAgentCert } from './pki.js';
import { rpoState } from './schedule.js';
import { hashSecret, makeDataDir, prepareServerData, type ServerData } from './server-data.js';
import { WebState } from './web-state.js';
import { checkSourceOptions, patchSourceOptions, type SourceOptionsPatch } from './source-options.js';
import { join } from 'node:path';

export interface ServerOptions {
  dataDir: string;
  listenHost: string;
  maxRunning?: number;
  retryDelayMs?: number;
  heartbeatMs?: number;
  /** an agent silent for this long is offline */
  offlineAfterMs?: number;
  /** prune, gc, verify and storage-check schedules */
  maintenance?: MaintenanceOptions;
  log: AlertLog & { info(obj: object, msg: string): void };
}

/** A btrfs subvolume is restored like any directory: its points are 'dir' points. */
const pointKind = (k: SourceRowC['kind']): 'dir' | 'image' => (k === 'image' ? 'image' : 'dir');

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function checkName(what: string, name: string): void {
  if (!NAME.test(name)) throw new HoldfastError('BAD_ARGUMENT', `${what} name '${name}' is not valid (letters, digits, '.', '_', '-'; up to 63; starting with a letter or digit)`);
}

export class ProtectionServer {
  readonly queue: JobQueue;
  readonly alerts: Alerts;
  readonly heartbeatMs: number;
  readonly offlineAfterMs: number;
  private readonly transfers = new Map<string, JobTransfer>();
  /** each source's latest point's checked manifest pages, for its next commit */
  private readonly checkedPages = new CheckedPages();
  /** console and portal: accounts, sessions, the file-version index, usage samples */
  readonly web: WebState;
  /** prune, gc, verify, storage allocation (maintenance.ts) */
  readonly maintenance: Maintenance;
  /** recoverability drills: requests, results, alerts, schedules (drills.ts) */
  readonly drills: Drills;

  private constructor(
    readonly data: ServerData,
    readonly db: ControlDb,
    readonly pool: Pool,
    readonly opts: ServerOptions,
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 10_000;
    this.offlineAfterMs = opts.offlineAfterMs ?? Math.max(3 * this.heartbeatMs, 30_000);
    this.queue = new JobQueue(db, { maxRunning: opts.maxRunning ?? 16, retryDelayMs: opts.retryDelayMs ?? 60_000 });
    this.alerts = new Alerts(db, opts.log);
    this.queue.onEnd = (job, end, retry) => this.jobEnded(job, end, retry);
    this.web = new WebState(opts.dataDir, db, pool, opts.log);
    this.maintenance = new Maintenance({ pool, db, alerts: this.alerts, log: opts.log }, opts.maintenance);
    this.drills = new Drills(this);
  }

  static async open(opts: ServerOptions): Promise<ProtectionServer> {
    await makeDataDir(opts.dataDir);
    const db = new ControlDb(join(opts.dataDir, 'control.sqlite'));
    const data = await prepareServerData(opts.dataDir, opts.listenHost, {
      get: () => db.setting('admin_token_hash'),
      set: (h) => db.setSetting('admin_token_hash', h),
    });
    const pool = await Pool.open(data.poolDir);
    const server = new ProtectionServer(data, db, pool, opts);
    // Jobs that were running when the server stopped resume: their agents are asked again.
    for (const j of db.openJobs()) if (j.state === 'running') server.queue.requeue(j.id);
    return server;
  }

  async close(): Promise<void> {
    if (this.heardTimer) clearTimeout(this.heardTimer);
    await this.maintenance.close();
    for (const t of this.transfers.values()) t.abort();
    this.transfers.clear();
    await this.web.close();
    await this.pool.close();
    this.db.close();
  }

  // --- authentication
  checkAdminToken(secret: string): boolean {
    const want = this.db.setting('admin_token_hash');
    if (!want) return false;
    return timingSafeEqual(Buffer.from(hashSecret(secret)), Buffer.from(want));
  }

  /** The agent behind a client certificate, if it is known and not revoked. */
  agentById(id: string): AgentRow | undefined {
    const a = this.db.agent(id);
    return a && a.id === id && !a.revoked ? a : undefined;
  }

  // --- agents
  createJoinToken(expiresMs: number, name?: string): { token: string; expires: string } {
    if (name !== undefined) checkName('agent', name);
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const expires = new Date(Date.now() + expiresMs).toISOString();
    this.db.addJoinToken({ id, secretHash: hashSecret(secret), name: name ?? null, created: new Date().toISOString(), expires });
    return { token: formatJoinToken({ id, secret, caFingerprint: this.data.caFingerprint }), expires };
  }

  async join(tokenText: string, publicKey: string, hostname: string, name: string | undefined): Promise<JoinReply> {
    const t = parseJoinToken(tokenText);
    const row = this.db.joinToken(t.id);
    const refuse = (why: string): never => {
      throw new HoldfastError('UNAUTHORIZED', `join token refused: ${why}`);
    };
    if (!row || !timingSafeEqual(Buffer.from(hashSecret(t.secret)), Buffer.from(row.secretHash))) refuse('unknown token');
    if (row?.used) refuse('it was already used');
    if (row && row.expires < new Date().toISOString()) refuse(`it expired at ${row.expires}`);
    const agentName = row?.name ?? name ?? hostname.split('.')[0] ?? 'agent';
    checkName('agent', agentName);
    if (this.db.agent(agentName)) throw new HoldfastError('CONFLICT', `an agent named '${agentName}' already exists; join with --name`);
    const id = randomBytes(8).toString('hex');
    let cert: string;
    try {
      cert = await issueAgentCert(this.data.ca, id, publicKey);
    } catch (err) {
      throw new HoldfastError('BAD_ARGUMENT', `the agent's public key is not a P-256 SPKI PEM key: ${(err as Error).message}`);
    }
    const now = new Date().toISOString();
    // The token is spent first: two agents racing with one token cannot both join.
    if (!this.db.useJoinToken(t.id, id, now)) refuse('it was already used');
    this.db.addAgent({ id, name: agentName, hostname, created: now, version: null });
    this.opts.log.info({ agent: agentName, id }, 'agent joined');
    return { agentId: id, name: agentName, cert };
  }

  agentStatus(a: AgentRow): 'online' | 'offline' | 'revoked' {
    if (a.revoked) return 'revoked';
    const lastSeen = this.heard.get(a.id) ?? a.lastSeen; // heard lately, not yet written
    return lastSeen && Date.now() - Date.parse(lastSeen) < this.offlineAfterMs ? 'online' : 'offline';
  }

  /** agents heard from since their lastSeen was last written, and when */
  private readonly heard = new Map<string, string>();
  private heardTimer: NodeJS.Timeout | undefined;

  seen(agentId: string, version?: string): void {
    const at = new Date().toISOString();
    if (version !== undefined) {
      this.db.touchAgent(agentId, at, version);
      this.alerts.resolve(`agent-offline:${agentId}`);
      return;
    }
    // Written for all agents together once a second (one catalog commit): a write (an fsync) per
    // request was a large share of the server's main thread with 50 agents syncing.
    this.heard.set(agentId, at);
    this.heardTimer ??= setTimeout(() => this.writeHeard(), 1000);
  }

  private writeHeard(): void {
    this.heardTimer = undefined;
    const batch = [...this.heard];
    this.heard.clear();
    this.db.db.transaction(() => {
      for (const [id, at] of batch) this.db.touchAgent(id, at);
    })();
    for (const [id] of batch) this.alerts.resolve(`agent-offline:${id}`);
  }

  /**
   * An agent process says hello: jobs handed to an earlier process of it, and jobs this one gave
   * up, go back to the queue (they resume). Jobs this process is still being handed stay.
   */
  hello(agentId: string, run: string, abandoned: string[], version: string): void {
    this.seen(agentId, version);
    for (const j of this.db.openJobs()) {
      if (j.agentId !== agentId || j.state !== 'running') continue;
      if (this.db.jobRun(j.id) !== run || abandoned.includes(j.id)) {
        this.dropTransfer(j.id);
        this.queue.requeue(j.id);
      }
    }
  }

  revoke(nameOrId: string): AgentRow {
    const a = this.requireAgent(nameOrId);
    this.db.revokeAgent(a.id);
    for (const j of this.db.openJobs()) if (j.agentId === a.id) this.queue.end(j.id, { state: 'cancelled', error: { code: 'FORBIDDEN', message: `agent '${a.name}' was revoked` } });
    return { ...a, revoked: true };
  }

  requireAgent(nameOrId: string): AgentRow {
    const a = this.db.agent(nameOrId);
    if (!a) throw new HoldfastError('NOT_FOUND', `no agent named '${nameOrId}'`, { agent: nameOrId });
    return a;
  }

  // --- groups and sources
  createGroup(g: Omit<GroupRow, 'created'>): GroupRow {
    checkName('protection group', g.name);
    if (this.db.group(g.name)) throw new HoldfastError('CONFLICT', `protection group '${g.name}' already exists`);
    const row = { ...g, created: new Date().toISOString() };
    this.db.addGroup(row);
    return row;
  }

  requireGroup(name: string): GroupRow {
    const g = this.db.group(name);
    if (!g) throw new HoldfastError('NOT_FOUND', `no protection group named '${name}'`, { group: name });
    return g;
  }

  addSource(s: { name: string; group: string; agent: string; kind: SourceRowC['kind']; path: string; options?: SourceOptions }): SourceRowC {
    checkName('source', s.name);
    this.requireGroup(s.group);
    const agent = this.requireAgent(s.agent);
    if (!s.path.startsWith('/')) throw new HoldfastError('BAD_ARGUMENT', `source path '${s.path}' must be absolute (a path on agent '${agent.name}')`);
    if (this.db.source(s.name) || this.pool.catalog.source(s.name)) throw new HoldfastError('CONFLICT', `source '${s.name}' already exists`);
    checkSourceOptions(s.name, s.kind, s.options ?? {});
    const row: SourceRowC = { name: s.name, group: s.group, agentId: agent.id, kind: s.kind, options: s.options ?? {}, path: s.path, created: new Date().toISOString(), lastSync: null, lastPointSlot: null };
    this.db.addSource(row);
    return row;
  }

  /**
   * Moves a source to another group and/or changes its options; both reach the agent with the
   * source's next sync. Name, agent, kind and path stay: its points and the agent's tracker state
   * belong to them.
   */
  editSource(name: string, e: { group?: string; options?: SourceOptionsPatch }): SourceRowC {
    const s = this.requireSource(name);
    if (e.group !== undefined) this.requireGroup(e.group);
    const next: SourceRowC = { ...s, group: e.group ?? s.group, options: patchSourceOptions(s.options, e.options ?? {}) };
    checkSourceOptions(s.name, s.kind, next.options);
    this.db.updateSource(next);
    return next;
  }

  requireSource(name: string): SourceRowC {
    const s = this.db.source(name);
    if (!s) throw new HoldfastError('SOURCE_NOT_FOUND', `no source named '${name}'`, { source: name });
    return s;
  }

  /** Sources visible to a caller: all for the administrator, its own for an agent. */
  sourcesFor(agentId?: string): SourceRowC[] {
    return this.db.sources().filter((s) => agentId === undefined || s.agentId === agentId);
  }

  /** A source as the console and CLI show it: owner, schedule compliance, newest point, running job. */
  sourceView(s: SourceRowC): Record<string, unknown> {
    const g = this.db.group(s.group);
    const latest = this.pool.catalog.latestPointHead(s.name);
    const rpo = g ? rpoState(g, new Date(s.created), latest ? new Date(latest.time) : undefined, new Date()) : undefined;
    const jobs = this.db.jobs({ source: s.name, limit: 1 });
    const last = jobs[0];
    const status = !latest ? 'never-synced' : last?.state === 'failed' ? 'failing' : rpo && !rpo.compliant ? 'rpo-missed' : 'ok';
    return {
      name: s.name, group: s.group, agent: this.db.agent(s.agentId)?.name ?? s.agentId, kind: s.kind, path: s.path, options: s.options, created: s.created,
      status, latestPoint: latest ? { id: latest.id, time: latest.time } : null, points: this.pool.catalog.pointSpan(s.name)?.count ?? 0, recoverable: recoverableRange(this, s.name),
      rpo: rpo ?? null, lastDrill: this.drills.brief(this.drills.latest(s.name)), lastJob: last ? { id: last.id, type: last.type, state: last.state, finished: last.finished } : null,
    };
  }

  points(source: string): PointRow[] {
    this.requireSource(source);
    return this.pool.catalog.points(source);
  }

  // --- jobs
  requestSync(source: string, origin: string, check?: 'light' | 'heavy'): JobRow {
    const s = this.requireSource(source);
    const agent = this.requireAgent(s.agentId);
    if (agent.revoked) throw new HoldfastError('CONFLICT', `source '${source}' belongs to revoked agent '${agent.name}'`);
    this.db.markSynced(source, new Date().toISOString());
    return this.queue.enqueue('sync', source, s.agentId, check ? { check } : {}, origin);
  }

  /**
   * A restore job: the whole point, one entry (`path`, placed in TARGET under its own name) or
   * several (`paths`, each so; one job, so they are checked and written together).
   */
  requestRestore(r: { source: string; point?: string; at?: string; latest?: boolean; path?: string; paths?: string[]; to: string; agent?: string; overwrite: boolean; start?: boolean; port?: number }): JobRow {
    if (!r.to.startsWith('/')) throw new HoldfastError('BAD_ARGUMENT', `restore target '${r.to}' must be an absolute path (on the agent that restores)`);
    if (r.path !== undefined && r.paths !== undefined) throw new HoldfastError('BAD_ARGUMENT', 'give path or paths, not both');
    const s = this.requireSource(r.source);
    if (isDatabaseKind(s.kind) && r.path === undefined && r.paths === undefined) {
      // A database is recovered whole: the nearest point and the log records up to the target.
      const plan = planDatabaseRestore(this, s, { point: r.point, at: r.at, latest: r.latest });
      const agent = r.agent ? this.requireAgent(r.agent) : this.requireAgent(s.agentId);
      if (agent.revoked) throw new HoldfastError('CONFLICT', `agent '${agent.name}' is revoked`);
      return this.queue.enqueue('restore', r.source, agent.id, { target: r.to, overwrite: r.overwrite, ...databaseRestoreParams(plan, { start: r.start !== false, port: r.port }) }, 'manual');
    }
    const p = this.pool.resolvePoint(r.source, { point: r.point, at: r.at });
    const agent = r.agent ? this.requireAgent(r.agent) : this.requireAgent(s.agentId);
    if (agent.revoked) throw new HoldfastError('CONFLICT', `agent '${agent.name}' is revoked`);
    const given = r.paths ?? (r.path === undefined ? [] : [r.path]);
    for (const x of given) {
      try {
        normalizeSubPath(x);
      } catch {
        throw new HoldfastError('BAD_ARGUMENT', `path '${x}' is not a path inside the recovery point (no '..' components)`, { path: x });
      }
    }
    const chosen = given.length === 0 ? [] : restoreSelection(given);
    if (chosen.length > 1 && p.kind !== 'dir') throw new HoldfastError('BAD_ARGUMENT', `recovery point ${p.id} is an image: there are no several paths to restore`);
    const where = chosen.length > 1 ? { subPaths: chosen } : { subPath: chosen[0] };
    return this.queue.enqueue('restore', r.source, agent.id, { point: p.id, target: r.to, ...where, overwrite: r.overwrite }, 'manual');
  }

  /** The job's spec, as the agent receives it. */
  jobSpec(job: JobRow): JobSpec {
    if (job.type === 'drill') return this.drills.spec(job);
    const s = this.requireSource(job.source);
    const cfg = this.pool.config;
    if (job.type === 'sync') {
      const g = this.requireGroup(s.group);
      const parent = this.pool.catalog.latestPoint(s.name);
      return {
        id: job.id,
        attempt: job.attempt,
        type: 'sync',
        source: { name: s.name, kind: s.kind, path: s.path, options: s.options },
        parent: parent && { id: parent.id, manifest: parent.manifest },
        ...(job.params.check === 'light' || job.params.check === 'heavy' ? { consistencyCheck: job.params.check } : {}),
        compressionLevel: g.compress ? cfg.compressionLevel : 0,
        throttleBps: g.throttleBps,
        cdc: cfg.cdc,
        imageChunk: cfg.imageChunk,
        syncEveryMs: g.syncEveryMs,
      };
    }
    const p = this.pool.catalog.point(job.params.point as string);
    if (!p) throw new HoldfastError('POINT_NOT_FOUND', `recovery point ${String(job.params.point)} no longer exists`);
    return {
      id: job.id,
      attempt: job.attempt,
      type: 'restore',
      source: { name: s.name, kind: p.kind },
      point: { id: p.id, manifest: p.manifest, logicalBytes: p.logicalBytes },
      target: job.params.target as string,
      subPath: job.params.subPath as string | undefined,
      subPaths: job.params.subPaths as string[] | undefined,
      overwrite: job.params.overwrite === true,
      rename: job.params.rename as string | undefined,
      owner: job.params.owner as { uid: number; gid: number } | undefined,
      ...databaseSpecParts(this, job, s, p),
    };
  }

  /** A running job of this agent, in the attempt named (if any), or a clear refusal (never another agent's job). */
  runningJob(agentId: string, jobId: string, attempt?: string | string[]): JobRow {
    const j = this.db.job(jobId);
    if (!j || j.agentId !== agentId) throw new HoldfastError('NOT_FOUND', `no job ${jobId} for this agent`, { job: jobId });
    if (j.state !== 'running') throw new HoldfastError('CONFLICT', `job ${jobId} is ${j.state}, not running`, { job: jobId });
    if (typeof attempt === 'string' && Number(attempt) !== j.attempt) {
      throw new HoldfastError('CONFLICT', `job ${jobId} is in attempt ${j.attempt}; attempt ${attempt} is over`, { job: jobId });
    }
    return j;
  }

  transfer(job: JobRow): JobTransfer {
    let t = this.transfers.get(job.id);
    if (!t) {
      const s = this.requireSource(job.source);
      if (job.type === 'sync') {
        const g = this.requireGroup(s.group);
        const parent = this.pool.catalog.latestPoint(s.name);
        const scope = {
          contentOf: [],
          manifestsOnly: parent ? [parent.manifest] : [],
          parent: parent ? { id: parent.id, manifest: parent.manifest } : null,
          parentPages: this.checkedPages.of(s.name, parent?.id),
        };
        t = new JobTransfer(this.pool, scope, g.compress ? this.pool.config.compressionLevel : 0);
      } else {
        const p = this.pool.catalog.point(job.params.point as string);
        t = new JobTransfer(this.pool, { contentOf: p ? [p.manifest] : [], manifestsOnly: [], raw: logScope(this, job) }, 0);
      }
      this.transfers.set(job.id, t);
    }
    return t;
  }

  private dropTransfer(jobId: string): void {
    this.transfers.get(jobId)?.abort();
    this.transfers.delete(jobId);
  }

  async completeSync(job: JobRow, r: SyncReport): Promise<Record<string, unknown>> {
    const s = this.requireSource(job.source);
    const t = this.transfer(job);
    const started = job.started ? Date.parse(job.started) : Date.now();
    let stats;
    try {
      stats = await t.finish(r.manifest, pointKind(s.kind));
    } catch (err) {
      this.syncCommitFailed(job, err);
      throw err;
    }
    const id = randomBytes(6).toString('hex');
    const parent = this.pool.catalog.latestPointHead(s.name);
    const row: PointRow = {
      id,
      source: s.name,
      // A database's copy is consistent at its own time (postgres: when pg_backup_stop returned).
      time: r.pointTime && !Number.isNaN(Date.parse(r.pointTime)) ? new Date(r.pointTime).toISOString() : (job.started ?? new Date().toISOString()),
      kind: pointKind(s.kind),
      manifest: r.manifest,
      logicalBytes: r.logicalBytes,
      files: r.entries,
      readBytes: r.readBytes,
      newBytes: stats.newBytes,
      storedNewBytes: stats.storedNewBytes,
      durationMs: Date.now() - started,
      parent: parent?.id ?? null,
      torn: r.torn.length,
      ...(r.meta ? { meta: r.meta } : {}),
    };
    try {
      await t.commit(row, s.path);
    } catch (err) {
      this.syncCommitFailed(job, err);
      throw err;
    }
    this.checkedPages.set(s.name, id, t.checkedPages);
    const result = {
      point: id,
      source: s.name,
      time: row.time,
      logicalBytes: r.logicalBytes,
      entries: r.entries,
      readBytes: r.readBytes,
      sentBytes: r.sentBytes,
      receivedBytes: t.receivedBytes,
      newBytes: stats.newBytes,
      storedNewBytes: stats.storedNewBytes,
      newChunks: stats.newChunks,
      durationMs: row.durationMs,
      tracker: r.tracker,
      check: r.check ?? null,
      torn: r.torn,
      warnings: r.warnings,
    };
    this.trackingReport(s.name, job, r);
    // A new express full starts a chain the hole is behind: restores after it need nothing before it.
    this.alerts.resolve(`log-gap:${s.name}`);
    this.queue.end(job.id, { state: 'succeeded', result });
    this.web.pointCommitted();
    return result;
  }

  /** A transient conflict sends the job back to the queue; anything else fails it. */
  private syncCommitFailed(job: JobRow, err: unknown): void {
    this.failJob(job, err instanceof HoldfastError ? { code: err.code, message: err.message } : { code: 'INTERNAL', message: (err as Error).message });
  }

  completeRestore(job: JobRow, r: RestoreReport): Record<string, unknown> {
    const started = job.started ? Date.parse(job.started) : Date.now();
    const result = { ...r, point: job.params.point, source: job.source, durationMs: Date.now() - started };
    this.queue.end(job.id, { state: 'succeeded', result });
    return result;
  }

  /**
   * A sync that had to compare with its parent because tracking was lost (not because it was
   * asked to) was a consistency check: it raises an alert with what it found, resolved by the
   * next sync whose tracker worked.
   */
  private trackingReport(source: string, job: JobRow, r: SyncReport): void {
    const key = `consistency:${source}`;
    const lost = r.warnings.find((w) => /reading everything|consistency check/.test(w));
    if (job.params.check || !lost) {
      if (r.tracker !== 'full' || job.params.check) this.alerts.resolve(key);
      return;
    }
    const found = r.check ? ` — found ${r.check.added} added, ${r.check.changed} changed, ${r.check.removed} removed files` : '';
    this.alerts.raise(key, 'consistency-check', 'warning', source, `source '${source}' lost change tracking and was checked against its previous recovery point: ${lost}${found}`);
  }

  /** A transient conflict (RETRY) sends the job back to the queue, a few times; anything else fails it. */
  failJob(job: JobRow, error: { code: string; message: string }): void {
    if (error.code === 'RETRY' && job.attempt < 5) {
      this.dropTransfer(job.id);
      this.queue.requeue(job.id);
      return;
    }
    this.queue.end(job.id, { state: 'failed', error });
  }

  private jobEnded(job: JobRow, end: JobEnd, retry: JobRow | undefined): void {
    this.dropTransfer(job.id);
    this.maintenance.jobEnded(job, end);
    if (job.type === 'drill') return this.drills.jobEnded(job, end); // its own alert: drill-failed
    const key = `job-failed:${job.type}:${job.source}`;
    if (end.state === 'succeeded') this.alerts.resolve(key);
    else if (end.state === 'failed') {
      const again = retry ? ` (retrying at ${retry.notBefore})` : job.retryOf ? ' (the automatic retry failed too)' : '';
      this.alerts.raise(key, 'job-failed', retry ? 'warning' : 'critical', job.source, `${job.type} of source '${job.source}' failed: ${end.error.message}${again}`);
      this.opts.log.warn({ job: job.id, source: job.source, error: end.error }, 'job failed');
    }
  }
}
