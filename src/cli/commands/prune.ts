/**
 * holdfast prune --pool DIR [--source S] --keep-within 14d [--keep-last N --keep-daily N ...] [--dry-run] [--json]
 * holdfast prune --server URL [--group G] [--dry-run] [--json]: by each protection group's retention range and keep rules
 */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes, parseDuration } from '../../core/units.js';
import { prunePoints, type PruneResult } from '../../pool/point-admin.js';
import type { RetentionPolicy } from '../../pool/retention.js';
import { info, printJson } from '../output.js';
import { withPool } from '../pool-option.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';

function count(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new HoldfastError('BAD_ARGUMENT', `--keep-${flag} needs a whole number of at least 1, not '${v}'`);
    return n;
  };
}

interface ServerPrune extends Omit<PruneResult, 'sources'> {
  groups: Array<{ group: string; sources: PruneResult['sources'] }>;
}

export function registerPrune(program: Command): void {
  const cmd = program
    .command('prune')
    .description(
      "remove recovery points a retention policy does not keep (pinned points are always kept): on a local pool by the --keep options, on a protection server by each group's retention and keep rules; run 'holdfast gc' afterwards to free their space",
    )
    .option('--pool <dir>', 'storage pool directory (local prune)')
    .option('--group <name>', "with a server: only this protection group's sources")
    .option('--source <name>', 'with --pool: only this source (default: every source, each on its own)')
    .option('--keep-within <duration>', 'keep every point within this span before the newest point (e.g. 14d)')
    .option('--keep-last <n>', 'keep the newest N points', count('last'))
    .option('--keep-hourly <n>', 'keep the newest point of each of the last N hours', count('hourly'))
    .option('--keep-daily <n>', 'keep the newest point of each of the last N days', count('daily'))
    .option('--keep-weekly <n>', 'keep the newest point of each of the last N ISO weeks', count('weekly'))
    .option('--keep-monthly <n>', 'keep the newest point of each of the last N months', count('monthly'))
    .option('--keep-yearly <n>', 'keep the newest point of each of the last N years', count('yearly'))
    .option('--dry-run', 'show what would be removed, remove nothing')
    .option('--json', 'machine-readable output');
  addServerOptions(cmd).action(
    async (opts: ServerOpts & {
      pool?: string;
      group?: string;
      source?: string;
      keepWithin?: string;
      keepLast?: number;
      keepHourly?: number;
      keepDaily?: number;
      keepWeekly?: number;
      keepMonthly?: number;
      keepYearly?: number;
      dryRun?: boolean;
      json?: boolean;
    }) => {
      const policy: RetentionPolicy = {
        within: opts.keepWithin === undefined ? undefined : parseDuration(opts.keepWithin),
        last: opts.keepLast,
        hourly: opts.keepHourly,
        daily: opts.keepDaily,
        weekly: opts.keepWeekly,
        monthly: opts.keepMonthly,
        yearly: opts.keepYearly,
      };
      const pool = opts.pool;
      if (!pool) {
        if (Object.values(policy).some((v) => v !== undefined) || opts.source) {
          throw new HoldfastError('BAD_ARGUMENT', "on a server, prune follows each group's retention and keep rules (holdfast group edit G --retain … --keep-daily …); --keep-* and --source apply only with --pool");
        }
        await withServer(opts, async (c) => {
          const r = await c.json<ServerPrune>('POST', '/api/v1/prune', { dryRun: opts.dryRun === true, ...(opts.group ? { group: opts.group } : {}) });
          show(r, r.groups.flatMap((g) => g.sources), opts.json === true);
        });
        return;
      }
      if (opts.group) throw new HoldfastError('BAD_ARGUMENT', '--group applies to a server (--server URL), not to a local pool');
      await withPool(pool, async (p) => {
        const r = await prunePoints(p, policy, { source: opts.source, dryRun: opts.dryRun === true });
        show(r, r.sources, opts.json === true);
      });
    },
  );
}

function show(r: Omit<PruneResult, 'sources'>, sources: PruneResult['sources'], json: boolean): void {
  if (json) return printJson(r);
  const verb = r.dryRun ? 'would remove' : 'removed';
  for (const s of sources) {
    for (const p of s.remove) info(`${verb} ${s.source} ${p.id} ${p.time}`);
    for (const k of s.keep) info(`keep ${s.source} ${k.id} ${k.time} (${k.reasons.join(', ')})`);
    const l = s.logs;
    if (l.records > 0) info(`${verb} ${s.source} log records ${l.first === l.last ? l.first : `${l.first} … ${l.last}`} (${l.records}, ${formatBytes(l.bytes)}): no kept point needs them`);
  }
  const logs = r.logsRemoved > 0 ? ` and ${r.logsRemoved} log records` : '';
  info(`${verb} ${r.removed} recovery points${logs}, kept ${r.kept}${r.removed + r.logsRemoved > 0 && !r.dryRun ? "; run 'holdfast gc' to free their space" : ''}`);
}
