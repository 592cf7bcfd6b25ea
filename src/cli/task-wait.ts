/** Waiting for a server maintenance task (gc, verify) from the CLI: progress on a terminal, the result or the failure. */
import { HoldfastError, isErrorCode } from '../core/errors.js';
import type { ServerClient } from '../agent/remote/server-client.js';
import { progressBar, type Progress } from './output.js';

export interface TaskView<R> {
  id: string;
  type: string;
  state: 'running' | 'succeeded' | 'failed';
  progress: { phase: string; done: number; total: number } | null;
  result: R | null;
  error: { code: string; message: string } | null;
}

export async function waitForTask<R>(client: ServerClient, task: TaskView<R>, showProgress: boolean, signal?: AbortSignal): Promise<R> {
  let bar: Progress | undefined;
  let phase: string | undefined;
  try {
    let t = task;
    while (t.state === 'running') {
      await new Promise((r) => setTimeout(r, 400));
      if (signal?.aborted) throw new HoldfastError('ABORTED', `stopped waiting; ${t.type} task ${t.id} goes on on the server`);
      t = await client.json<TaskView<R>>('GET', `/api/v1/maintenance/tasks/${t.id}`);
      const p = t.progress;
      if (p && p.phase !== phase) {
        bar?.stop();
        phase = p.phase;
        bar = progressBar(`${t.type} ${p.phase}`, p.total, showProgress, 'count');
      }
      if (p) bar?.update(p.done);
    }
    if (t.state !== 'succeeded' || t.result === null) {
      const code = t.error?.code;
      throw new HoldfastError(isErrorCode(code) ? code : 'SERVER_ERROR', `${t.type} task ${t.id} failed: ${t.error?.message ?? 'no reason given'}`);
    }
    return t.result;
  } finally {
    bar?.stop();
  }
}
