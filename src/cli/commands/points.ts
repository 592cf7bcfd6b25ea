/** holdfast points --pool DIR [--source NAME] [--json] */
import type { Command } from 'commander';
import { formatBytes } from '../../core/units.js';
import { info, printJson } from '../output.js';
import { withPool } from '../pool-option.js';

export function registerPoints(program: Command): void {
  program
    .command('points')
    .description('list recovery points')
    .requiredOption('--pool <dir>', 'storage pool directory')
    .option('--source <name>', 'only this source')
    .option('--json', 'machine-readable output')
    .action(async (opts: { pool: string; source?: string; json?: boolean }) => {
      await withPool(opts.pool, (pool) => {
        if (opts.source) pool.requireSource(opts.source);
        const points = pool.catalog.points(opts.source).map((p) => ({
          id: p.id,
          source: p.source,
          time: p.time,
          kind: p.kind,
          logicalBytes: p.logicalBytes,
          entries: p.files,
          readBytes: p.readBytes,
          newBytes: p.newBytes,
          storedNewBytes: p.storedNewBytes,
          durationMs: p.durationMs,
          parent: p.parent,
          torn: p.torn,
        }));
        if (opts.json) return Promise.resolve(printJson(points));
        if (points.length === 0) return Promise.resolve(info('no recovery points'));
        info(['ID'.padEnd(14), 'SOURCE'.padEnd(16), 'TIME'.padEnd(25), 'KIND'.padEnd(6), 'LOGICAL'.padStart(10), 'NEW'.padStart(10)].join(' '));
        for (const p of points) {
          info([p.id.padEnd(14), p.source.padEnd(16), p.time.padEnd(25), p.kind.padEnd(6), formatBytes(p.logicalBytes).padStart(10), formatBytes(p.newBytes).padStart(10)].join(' '));
        }
        return Promise.resolve();
      });
    });
}
