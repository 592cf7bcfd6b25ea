/** holdfast jobs [--state S] [--source S] [--json]. */
import type { Command } from 'commander';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import type { JobView } from '../job-wait.js';
import { printJson, table } from '../output.js';

export function registerJobs(program: Command): void {
  addServerOptions(
    program
      .command('jobs')
      .description('list recent jobs (queued, running and finished)')
      .option('--state <state>', 'queued, running, succeeded, failed or cancelled')
      .option('--source <name>', 'only this source')
      .option('--json', 'machine-readable output'),
  ).action(async (opts: ServerOpts & { state?: string; source?: string; json?: boolean }) => {
    const q = new URLSearchParams();
    if (opts.state) q.set('state', opts.state);
    if (opts.source) q.set('source', opts.source);
    await withServer(opts, async (c) => {
      const jobs = await c.json<Array<JobView & { origin: string; created: string; finished: string | null; attempt: number }>>('GET', `/api/v1/jobs?${q.toString()}`);
      if (opts.json) return printJson(jobs);
      table(
        ['ID', 'TYPE', 'SOURCE', 'STATE', 'ORIGIN', 'CREATED', 'RESULT'],
        jobs.map((j) => [j.id, j.type, j.source, j.state, j.origin, j.created, j.state === 'succeeded' ? String((j.result?.point as string | undefined) ?? (j.result?.target as string | undefined) ?? '') : j.error?.message.slice(0, 60)]),
      );
    });
  });
}
