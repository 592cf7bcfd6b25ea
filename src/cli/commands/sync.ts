/** holdfast sync SOURCE [--wait] [--json]: ask the server for a sync now. */
import type { Command } from 'commander';
import { formatBytes } from '../../core/units.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { waitForJob, type JobView } from '../job-wait.js';
import { info, printJson } from '../output.js';
import { interruptSignal } from '../pool-option.js';

export function registerSync(program: Command): void {
  addServerOptions(
    program
      .command('sync <source>')
      .description('synchronize a source now (a recovery point when it completes)')
      .option('--wait', 'wait for the job to end; non-zero exit if it fails')
      .option('--json', 'machine-readable output (with --wait: the job result)'),
  ).action(async (source: string, opts: ServerOpts & { wait?: boolean; json?: boolean }) => {
    await withServer(opts, async (c) => {
      const job = await c.json<JobView>('POST', `/api/v1/sources/${encodeURIComponent(source)}/sync`);
      if (!opts.wait) {
        if (opts.json) printJson(job);
        else info(`sync job ${job.id} queued for source '${source}'`);
        return;
      }
      const done = await waitForJob(c, job, !opts.json, interruptSignal());
      const r = done.result ?? {};
      if (opts.json) printJson({ job: done.id, ...r });
      else info(`recovery point ${String(r.point)} of source '${source}': read ${formatBytes(Number(r.readBytes))}, sent ${formatBytes(Number(r.sentBytes))}, new ${formatBytes(Number(r.newBytes))} in ${(Number(r.durationMs) / 1000).toFixed(1)} s`);
    });
  });
}
