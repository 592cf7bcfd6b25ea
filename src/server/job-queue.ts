/**
 * The work the server hands out. Jobs wait in the control catalog; an agent's long poll takes
 * the oldest job for it that may start now: never two jobs on one source at once, never more
 * than `maxRunning` jobs at once. A failed job that was not itself a retry gets one automatic
 * re-run after `retryDelayMs`.
 */
import { randomBytes } from 'node:crypto';
import type { ControlDb, JobRow, JobType } from './control-db.js';

export interface JobQueueOptions {
  maxRunning: number;
  retryDelayMs: number;
}

export type JobEnd =
  | { state: 'succeeded'; result: Record<string, unknown> }
  | { state: 'failed'; error: { code: string; message: string }; result?: Record<string, unknown> }
  | { state: 'cancelled'; error: { code: string; message: string } };

export class JobQueue {
  /** long polls waiting for work, by agent */
  private readonly waiters = new Map<string, Set<() => void>>();
  /**
   * Queued jobs per agent, kept by this queue's own changes (every change of a job's state goes
   * through it) and reloaded from the catalog after an end or a requeue. A poll of an agent with
   * nothing queued, and a wake-up of it, cost nothing: with 50 agents polling, reading the open
   * jobs for every poll and every scheduler tick was a third of the server's main thread.
   */
  private queued: Map<string, number> | undefined;
  /** callers waiting for a job to end (a CLI's `sync --wait`), by job */
  private readonly endWaiters = new Map<string, Set<() => void>>();
  /** called after a job ends (the server releases transfers, raises or resolves alerts) */
  onEnd: (job: JobRow, end: JobEnd, retry: JobRow | undefined) => void = () => undefined;

  constructor(
    private readonly db: ControlDb,
    private readonly opts: JobQueueOptions,
  ) {}

  /**
   * Queues a job. A sync for a source that already has a queued sync returns that one instead
   * (asking twice does not sync twice).
   */
  enqueue(type: JobType, source: string, agentId: string, params: Record<string, unknown>, origin: string, extra: { retryOf?: string; notBefore?: string } = {}): JobRow {
    if (type === 'sync') {
      const queued = this.db.openJobs().find((j) => j.type === 'sync' && j.source === source && j.state === 'queued');
      if (queued) return queued;
    }
    const job: JobRow = {
      id: randomBytes(8).toString('hex'),
      type,
      source,
      agentId,
      state: 'queued',
      origin,
      attempt: 0,
      params,
      progress: null,
      result: null,
      error: null,
      created: new Date().toISOString(),
      started: null,
      finished: null,
      retryOf: extra.retryOf ?? null,
      notBefore: extra.notBefore ?? null,
    };
    this.db.addJob(job);
    this.count(agentId, 1);
    this.wake(agentId);
    return job;
  }

  /** Starts and returns the next job this agent may run now, if any. */
  take(agentId: string, agentRun: string | null = null): JobRow | undefined {
    if (!this.queuedFor(agentId)) return undefined;
    const open = this.db.openJobs();
    const running = open.filter((j) => j.state === 'running');
    if (running.length >= this.opts.maxRunning) return undefined;
    const busy = new Set(running.map((j) => j.source));
    const now = new Date().toISOString();
    for (const j of open) {
      if (j.state !== 'queued' || j.agentId !== agentId || busy.has(j.source)) continue;
      if (j.notBefore && j.notBefore > now) continue;
      if (this.db.startJob(j.id, now, agentRun)) {
        this.count(agentId, -1);
        return this.db.job(j.id);
      }
    }
    return undefined;
  }

  /** Whether this agent has a queued job (which may still have to wait for its time or a slot). */
  queuedFor(agentId: string): boolean {
    return (this.counts().get(agentId) ?? 0) > 0;
  }

  private counts(): Map<string, number> {
    if (!this.queued) {
      const m = new Map<string, number>();
      for (const j of this.db.openJobs()) if (j.state === 'queued') m.set(j.agentId, (m.get(j.agentId) ?? 0) + 1);
      this.queued = m;
    }
    return this.queued;
  }

  private count(agentId: string, delta: number): void {
    if (this.queued) this.queued.set(agentId, (this.queued.get(agentId) ?? 0) + delta);
  }

  /** Resolves when something may have become runnable for this agent, or after `ms`. */
  waitForWork(agentId: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(agentId);
      if (!set) this.waiters.set(agentId, (set = new Set()));
      const mine = set;
      const done = (): void => {
        clearTimeout(timer);
        mine.delete(done);
        if (mine.size === 0 && this.waiters.get(agentId) === mine) this.waiters.delete(agentId);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      mine.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Wakes the polls of one agent, or of every agent that has a queued job (a slot or a retry's time may have come). */
  wake(agentId?: string): void {
    const agents = agentId !== undefined ? [agentId] : [...this.waiters.keys()].filter((a) => this.queuedFor(a));
    for (const a of agents) for (const w of [...(this.waiters.get(a) ?? [])]) w();
  }

  /** Resolves when the job ends, or after `ms`. */
  whenEnded(id: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.endWaiters.get(id);
      if (!set) this.endWaiters.set(id, (set = new Set()));
      const mine = set;
      const done = (): void => {
        clearTimeout(timer);
        mine.delete(done);
        if (mine.size === 0 && this.endWaiters.get(id) === mine) this.endWaiters.delete(id);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      mine.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  end(id: string, end: JobEnd): JobRow | undefined {
    const now = new Date().toISOString();
    const result = end.state === 'succeeded' ? end.result : end.state === 'failed' ? (end.result ?? null) : null;
    const error = end.state === 'succeeded' ? null : end.error;
    if (!this.db.finishJob(id, end.state, now, result, error)) return undefined;
    this.queued = undefined; // it may have ended while queued (cancelled): count again
    const job = this.db.job(id);
    if (!job) return undefined;
    let retry: JobRow | undefined;
    if (end.state === 'failed' && job.retryOf === null && job.type === 'sync') {
      retry = this.enqueue(job.type, job.source, job.agentId, job.params, 'retry', {
        retryOf: job.id,
        notBefore: new Date(Date.now() + this.opts.retryDelayMs).toISOString(),
      });
    }
    this.onEnd(job, end, retry);
    for (const w of [...(this.endWaiters.get(id) ?? [])]) w();
    this.wake();
    return job;
  }

  /** Puts an interrupted running job back in the queue (agent or server restarted): it resumes. */
  requeue(id: string): void {
    this.db.requeueJob(id);
    this.queued = undefined;
    this.wake();
  }
}
