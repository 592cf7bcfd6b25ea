/** holdfast usage (--pool DIR [--retention-days N] | --server URL) [--json] */
import type { Command } from 'commander';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import { poolUsage } from '../../pool/usage.js';
import type { ServerStorage } from '../../server/storage-usage.js';
import { addServerOptions, withServer, type ServerOpts } from '../admin-client.js';
import { info, printJson, table } from '../output.js';
import { interruptSignal, withPool } from '../pool-option.js';

const pct = (n: number, of: number): string => (of > 0 ? `${((100 * n) / of).toFixed(1)}%` : '-');

export function registerUsage(program: Command): void {
  const cmd = program
    .command('usage')
    .description('storage allocation: pool capacity, used and free; per group and source logical, unique and shared bytes, and quotas (DPM 2007 default allocation)')
    .option('--pool <dir>', 'storage pool directory (local)')
    .option('--retention-days <n>', 'with --pool: retention range for the default recovery point quota', '5')
    .option('--json', 'machine-readable output');
  addServerOptions(cmd).action(async (opts: ServerOpts & { pool?: string; retentionDays: string; json?: boolean }) => {
    if (!opts.pool) {
      await withServer(opts, async (c) => {
        const u = await c.json<ServerStorage>('GET', '/api/v1/usage', undefined, { timeoutMs: 600_000 });
        if (opts.json) printJson(u);
        else showServer(u);
      });
      return;
    }
    const days = Number(opts.retentionDays);
    if (!Number.isSafeInteger(days) || days < 1) throw new HoldfastError('BAD_ARGUMENT', `--retention-days must be a whole number of at least 1, not '${opts.retentionDays}'`);
    await withPool(opts.pool, async (pool) => {
      const u = await poolUsage(pool, { retentionDays: days, signal: interruptSignal() });
      if (opts.json) return printJson(u);
      info(`pool ${u.pool}: capacity ${formatBytes(u.capacityBytes)}, used ${formatBytes(u.usedBytes)} (${pct(u.usedBytes, u.capacityBytes)}), free ${formatBytes(u.freeBytes)}`);
      info(`stored ${formatBytes(u.storedBytes)} in ${u.packs} packs, ${formatBytes(u.unreferencedBytes)} unreferenced (gc frees it)`);
      table(
        ['SOURCE', 'POINTS', 'LATEST', 'ALL POINTS', 'UNIQUE', 'SHARED', 'QUOTA'],
        u.sources.map((s) => [s.source, s.points, formatBytes(s.latestLogicalBytes), formatBytes(s.allLogicalBytes), formatBytes(s.uniqueBytes), formatBytes(s.sharedBytes), formatBytes(s.defaultAllocation.totalBytes)]),
      );
    });
  });
}

function showServer(u: ServerStorage): void {
  const p = u.pool;
  info(`pool: capacity ${formatBytes(p.capacityBytes)}, used ${formatBytes(p.usedBytes)} (${pct(p.capacityBytes - p.freeBytes, p.capacityBytes)} not free), free ${formatBytes(p.freeBytes)}`);
  info(`stored ${formatBytes(p.storedBytes)} in ${p.packs} packs: ${formatBytes(p.referencedBytes)} referenced, ${formatBytes(p.unreferencedBytes)} unreferenced (gc frees it)`);
  info('');
  table(
    ['GROUP', 'SOURCES', 'RETAIN', 'LATEST', 'UNIQUE', 'SHARED', 'QUOTA', 'USED'],
    u.groups.map((g) => [g.group, g.sources, `${g.retentionDays}d`, formatBytes(g.latestLogicalBytes), formatBytes(g.uniqueBytes), formatBytes(g.sharedBytes), formatBytes(g.quotaBytes), pct(g.storedBytes, g.quotaBytes)]),
  );
  info('');
  table(
    ['SOURCE', 'GROUP', 'POINTS', 'LATEST', 'ALL POINTS', 'UNIQUE', 'SHARED', 'QUOTA', 'USED'],
    u.sources.map((s) => [
      s.source,
      s.group ?? '-',
      s.points,
      formatBytes(s.latestLogicalBytes),
      formatBytes(s.allLogicalBytes),
      formatBytes(s.uniqueBytes),
      formatBytes(s.sharedBytes),
      s.quotaBytes === null ? '-' : `${formatBytes(s.quotaBytes)}${s.quotaFrom === 'explicit' ? '' : ' (dpm)'}`,
      s.quotaBytes === null ? '-' : pct(s.storedBytes, s.quotaBytes),
    ]),
  );
}
