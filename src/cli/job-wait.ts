/** Waiting for a server job from the CLI: progress on a terminal, the result or a clear failure at the end. */
import { HoldfastError, isErrorCode } from '../core/errors.js';
import type { ServerClient } from '../agent/remote/server-client.js';
import { progressBar } from './output.js';

export interface JobView {
  id: string;
  type: string;
  source: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: { bytesDone?: number; totalBytes?: number; entries?: number; sentBytes?: number } | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

export async function waitForJob(client: ServerClient, job: JobView, showProgress: boolean, signal?: AbortSignal): Promise<JobView> {
  const bar = progressBar(`${job.type} ${job.source}`, 0, showProgress);
  try {
    let j = job;
    // The server answers the wait as soon as the job ends (or after a second, with its progress);
    // a server without that route is polled every half second.
    let canWait = true;
    while (j.state === 'queued' || j.state === 'running') {
      if (!canWait) await new Promise((r) => setTimeout(r, 500));
      if (signal?.aborted) throw new HoldfastError('ABORTED', `stopped waiting; job ${job.id} goes on (see \`holdfast jobs\`)`);
      try {
        j = await client.json<JobView>('GET', canWait ? `/api/v1/jobs/${job.id}/wait?timeout=1` : `/api/v1/jobs/${job.id}`, undefined, { signal });
      } catch (err) {
        if (signal?.aborted) continue;
        if (!canWait || !(err instanceof HoldfastError && err.code === 'NOT_FOUND')) throw err;
        canWait = false;
        continue;
      }
      const p = j.progress;
      bar.update(p?.bytesDone ?? 0, j.state === 'queued' ? 'queued' : `${p?.entries ?? 0} entries, sent ${p?.sentBytes ?? 0} B`);
    }
    if (j.state !== 'succeeded') {
      const code = j.error?.code;
      throw new HoldfastError(isErrorCode(code) && code !== 'BAD_ARGUMENT' ? code : 'JOB_FAILED', `${j.type} job ${j.id} of source '${j.source}' ${j.state}: ${j.error?.message ?? 'no reason given'}`, { job: j.id });
    }
    return j;
  } finally {
    bar.stop();
  }
}
