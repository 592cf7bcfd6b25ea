/**
 * holdfast drill SOURCE [--at TIME | --point ID] [--wait] [--json]: a recoverability drill — the
 * source's agent restores the point into a scratch place, starts the database, checks it, stops
 * it and removes the copy; the server records the result with the point.
 * holdfast drill SOURCE --history [--json]: the source's past drills.
 */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { waitForJob, type JobView } from '../job-wait.js';
import { info, printJson, table } from '../output.js';
import { interruptSignal } from '../pool-option.js';

interface DrillView {
  id: number;
  point: string;
  time: string;
  at: string | null;
  ok: boolean;
  check: string;
  detail: string;
  durationMs: number;
  origin: string;
}

interface DrillOpts extends ServerOpts {
  at?: string;
  point?: string;
  check?: string;
  wait?: boolean;
  history?: boolean;
  json?: boolean;
}

export function registerDrill(program: Command): void {
  addServerOptions(
    program
      .command('drill <source>')
      .description("recoverability drill: restore into a scratch place on the source's agent, start the database, check it (PostgreSQL: amcheck; SQLite: integrity_check), record the result")
      .option('--at <time>', 'recover to this time (the point at or before it, and its logs); default the newest point')
      .option('--point <id>', 'drill this recovery point')
      .option('--check <kind>', 'check a directory source as a PostgreSQL data directory (postgres) or its SQLite files (sqlite); default by the source kind')
      .option('--wait', 'wait for the drill to end; non-zero exit if it failed')
      .option('--history', "list the source's past drills instead")
      .option('--json', 'machine-readable output (with --wait: the drill result)'),
  ).action(async (source: string, opts: DrillOpts) => {
    if (opts.at && opts.point) throw new HoldfastError('BAD_ARGUMENT', 'give --at or --point, not both');
    await withServer(opts, async (c) => {
      if (opts.history) {
        const rows = await c.json<DrillView[]>('GET', `/api/v1/sources/${encodeURIComponent(source)}/drills`);
        if (opts.json) return printJson(rows);
        if (rows.length === 0) return info(`no drills of source '${source}' yet`);
        table(['TIME', 'POINT', 'RESULT', 'CHECK', 'SECONDS', 'ORIGIN', 'DETAIL'], rows.map((r) => [r.time, r.point, r.ok ? 'ok' : 'FAILED', r.check, (r.durationMs / 1000).toFixed(1), r.origin, r.detail.slice(0, 120)]));
        return;
      }
      if (opts.check && !['postgres', 'sqlite', 'bytes'].includes(opts.check)) throw new HoldfastError('BAD_ARGUMENT', `--check takes postgres, sqlite or bytes, not '${opts.check}'`);
      const body = { ...(opts.at ? { at: opts.at } : {}), ...(opts.point ? { point: opts.point } : {}), ...(opts.check ? { check: opts.check } : {}) };
      const job = await c.json<JobView>('POST', `/api/v1/sources/${encodeURIComponent(source)}/drill`, body);
      if (!opts.wait) {
        if (opts.json) printJson(job);
        else info(`drill job ${job.id} queued for source '${source}'`);
        return;
      }
      let done: JobView;
      try {
        done = await waitForJob(c, job, !opts.json, interruptSignal());
      } catch (err) {
        // A failed drill is an answer, not an error: show what it found, then exit non-zero.
        const j = await c.json<JobView>('GET', `/api/v1/jobs/${job.id}`).catch(() => undefined);
        if (opts.json && j?.result) printJson({ job: j.id, ...j.result });
        throw err;
      }
      const r = done.result ?? {};
      if (opts.json) printJson({ job: done.id, ...r });
      else info(`drill of source '${source}', recovery point ${String(r.point)}: ok in ${(Number(r.durationMs) / 1000).toFixed(1)} s — ${String(r.detail)}`);
    });
  });
}
