/** holdfast sync SOURCE [--wait] [--json] [--consistency-check [--heavy]]: ask the server for a sync now. */
import type { Command } from 'commander';
import { formatBytes } from '../../core/units.js';
import { HoldfastError } from '../../core/errors.js';
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
      .option('--consistency-check', 'compare the source with its latest recovery point instead of trusting change tracking (by metadata); sends only what differs')
      .option('--heavy', 'with --consistency-check: read and hash every file')
      .option('--json', 'machine-readable output (with --wait: the job result)'),
  ).action(async (source: string, opts: ServerOpts & { wait?: boolean; json?: boolean; consistencyCheck?: boolean; heavy?: boolean }) => {
    if (opts.heavy && !opts.consistencyCheck) throw new HoldfastError('BAD_ARGUMENT', '--heavy goes with --consistency-check');
    const body = opts.consistencyCheck ? { check: opts.heavy ? 'heavy' : 'light' } : {};
    await withServer(opts, async (c) => {
      const job = await c.json<JobView>('POST', `/api/v1/sources/${encodeURIComponent(source)}/sync`, body);
      if (!opts.wait) {
        if (opts.json) printJson(job);
        else info(`sync job ${job.id} queued for source '${source}'`);
        return;
      }
      const done = await waitForJob(c, job, !opts.json, interruptSignal());
      const r = done.result ?? {};
      if (opts.json) printJson({ job: done.id, ...r });
      else if (opts.consistencyCheck && r.check) {
        const f = r.check as { added: number; changed: number; removed: number; mismatched: number };
        info(`consistency check of '${source}': ${f.added} added, ${f.changed} changed (${f.mismatched} with unchanged metadata), ${f.removed} removed files; repaired in recovery point ${String(r.point)}`);
      } else info(`recovery point ${String(r.point)} of source '${source}': read ${formatBytes(Number(r.readBytes))}, sent ${formatBytes(Number(r.sentBytes))}, new ${formatBytes(Number(r.newBytes))} in ${(Number(r.durationMs) / 1000).toFixed(1)} s`);
    });
  });
}
