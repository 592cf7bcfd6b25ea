/** holdfast usage --pool DIR [--retention-days N] [--json] */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import { poolUsage } from '../../pool/usage.js';
import { info, printJson } from '../output.js';
import { interruptSignal, withPool } from '../pool-option.js';

export function registerUsage(program: Command): void {
  program
    .command('usage')
    .description('storage allocation: pool capacity, used and free; per source logical, unique and shared bytes, and the default quota')
    .requiredOption('--pool <dir>', 'storage pool directory')
    .option('--retention-days <n>', 'retention range for the default recovery point quota', '5')
    .option('--json', 'machine-readable output')
    .action(async (opts: { pool: string; retentionDays: string; json?: boolean }) => {
      const days = Number(opts.retentionDays);
      if (!Number.isSafeInteger(days) || days < 1) throw new HoldfastError('BAD_ARGUMENT', `--retention-days must be a whole number of at least 1, not '${opts.retentionDays}'`);
      await withPool(opts.pool, async (pool) => {
        const u = await poolUsage(pool, { retentionDays: days, signal: interruptSignal() });
        if (opts.json) return printJson(u);
        const pct = u.capacityBytes > 0 ? ((100 * u.usedBytes) / u.capacityBytes).toFixed(1) : '0';
        info(`pool ${u.pool}: capacity ${formatBytes(u.capacityBytes)}, used ${formatBytes(u.usedBytes)} (${pct}%), free ${formatBytes(u.freeBytes)}`);
        info(`stored ${formatBytes(u.storedBytes)} in ${u.packs} packs, ${formatBytes(u.unreferencedBytes)} unreferenced (gc frees it)`);
        info(['SOURCE'.padEnd(16), 'POINTS'.padStart(6), 'LATEST'.padStart(10), 'ALL POINTS'.padStart(11), 'UNIQUE'.padStart(10), 'SHARED'.padStart(10), 'QUOTA'.padStart(10)].join(' '));
        for (const s of u.sources) {
          info(
            [
              s.source.padEnd(16),
              String(s.points).padStart(6),
              formatBytes(s.latestLogicalBytes).padStart(10),
              formatBytes(s.allLogicalBytes).padStart(11),
              formatBytes(s.uniqueBytes).padStart(10),
              formatBytes(s.sharedBytes).padStart(10),
              formatBytes(s.defaultAllocation.totalBytes).padStart(10),
            ].join(' '),
          );
        }
      });
    });
}
