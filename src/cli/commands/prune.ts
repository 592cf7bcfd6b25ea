/** holdfast prune --pool DIR [--source S] --keep-within 14d [--keep-last N --keep-daily N ...] [--dry-run] [--json] */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { parseDuration } from '../../core/units.js';
import { prunePoints } from '../../pool/point-admin.js';
import type { RetentionPolicy } from '../../pool/retention.js';
import { info, printJson } from '../output.js';
import { withPool } from '../pool-option.js';

function count(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new HoldfastError('BAD_ARGUMENT', `--keep-${flag} needs a whole number of at least 1, not '${v}'`);
    return n;
  };
}

export function registerPrune(program: Command): void {
  program
    .command('prune')
    .description("remove recovery points a retention policy does not keep (pinned points are always kept); run 'holdfast gc' afterwards to free their space")
    .requiredOption('--pool <dir>', 'storage pool directory')
    .option('--source <name>', 'only this source (default: every source, each on its own)')
    .option('--keep-within <duration>', 'keep every point within this span before the newest point (e.g. 14d)')
    .option('--keep-last <n>', 'keep the newest N points', count('last'))
    .option('--keep-hourly <n>', 'keep the newest point of each of the last N hours', count('hourly'))
    .option('--keep-daily <n>', 'keep the newest point of each of the last N days', count('daily'))
    .option('--keep-weekly <n>', 'keep the newest point of each of the last N ISO weeks', count('weekly'))
    .option('--keep-monthly <n>', 'keep the newest point of each of the last N months', count('monthly'))
    .option('--keep-yearly <n>', 'keep the newest point of each of the last N years', count('yearly'))
    .option('--dry-run', 'show what would be removed, remove nothing')
    .option('--json', 'machine-readable output')
    .action(
      async (opts: {
        pool: string;
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
        await withPool(opts.pool, async (pool) => {
          const r = await prunePoints(pool, policy, { source: opts.source, dryRun: opts.dryRun === true });
          if (opts.json) return printJson(r);
          for (const s of r.sources) {
            for (const p of s.remove) info(`${r.dryRun ? 'would remove' : 'removed'} ${s.source} ${p.id} ${p.time}`);
            for (const k of s.keep) info(`keep ${s.source} ${k.id} ${k.time} (${k.reasons.join(', ')})`);
          }
          info(`${r.dryRun ? 'would remove' : 'removed'} ${r.removed} recovery points, kept ${r.kept}${r.removed > 0 && !r.dryRun ? "; run 'holdfast gc' to free their space" : ''}`);
        });
      },
    );
}
