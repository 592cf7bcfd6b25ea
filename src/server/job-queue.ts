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
  private readonly waiters = new Set<() => void>();
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
    this.wake();
    return job;
  }

  /** Starts and returns the next job this agent may run now, if any. */
  take(agentId: string, agentRun: string | null = null): JobRow | undefined {
    const open = this.db.openJobs();
    const running = open.filter((j) => j.state === 'running');
    if (running.length >= this.opts.maxRunning) return undefined;
    const busy = new Set(running.map((j) => j.source));
    const now = new Date().toISOString();
    for (const j of open) {
      if (j.state !== 'queued' || j.agentId !== agentId || busy.has(j.source)) continue;
      if (j.notBefore && j.notBefore > now) continue;
      if (this.db.startJob(j.id, now, agentRun)) return this.db.job(j.id);
    }
    return undefined;
  }

  /** Resolves when something may have become runnable, or after `ms`. */
  waitForWork(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  end(id: string, end: JobEnd): JobRow | undefined {
    const now = new Date().toISOString();
    const result = end.state === 'succeeded' ? end.result : end.state === 'failed' ? (end.result ?? null) : null;
    const error = end.state === 'succeeded' ? null : end.error;
    if (!this.db.finishJob(id, end.state, now, result, error)) return undefined;
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
    this.wake();
    return job;
  }

  /** Puts an interrupted running job back in the queue (agent or server restarted): it resumes. */
  requeue(id: string): void {
    this.db.requeueJob(id);
    this.wake();
  }
}
