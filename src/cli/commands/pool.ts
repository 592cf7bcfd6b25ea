/** holdfast pool init DIR | holdfast pool stats --pool DIR [--json] */
import type { Command } from 'commander';
import { Pool } from '../../pool/pool.js';
import { formatBytes } from '../../core/units.js';
import { info, printJson } from '../output.js';
import { withPool } from '../pool-option.js';

export function registerPool(program: Command): void {
  const pool = program.command('pool').description('create and inspect storage pools');
  pool
    .command('init')
    .argument('<dir>', 'directory for the new pool (created if missing; must be empty)')
    .option('--json', 'machine-readable output')
    .description('create a storage pool in a directory')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const config = await Pool.init(dir);
      if (opts.json) printJson({ pool: dir, id: config.id, config });
      else info(`created storage pool ${config.id} at ${dir}`);
    });
  pool
    .command('stats')
    .requiredOption('--pool <dir>', 'storage pool directory')
    .option('--json', 'machine-readable output')
    .description('sizes and counts of a storage pool')
    .action(async (opts: { pool: string; json?: boolean }) => {
      await withPool(opts.pool, async (p) => {
        const points = p.catalog.points();
        const logicalBytes = points.reduce((s, x) => s + x.logicalBytes, 0);
        const stored = await p.storedBytes();
        let chunkBytes = 0;
        for (const [, loc] of p.index.entries()) chunkBytes += loc.length;
        const stats = {
          pool: opts.pool,
          sources: p.catalog.sources().length,
          points: points.length,
          logicalBytes,
          uniqueBytes: chunkBytes,
          storedBytes: stored.bytes,
          chunks: p.index.size,
          packs: stored.packs,
          dedupRatio: chunkBytes > 0 ? logicalBytes / chunkBytes : 0,
          compressionRatio: stored.bytes > 0 ? chunkBytes / stored.bytes : 0,
        };
        if (opts.json) printJson(stats);
        else {
          info(`sources ${stats.sources}, recovery points ${stats.points}`);
          info(`logical ${formatBytes(logicalBytes)}, unique ${formatBytes(chunkBytes)}, stored ${formatBytes(stored.bytes)} in ${stored.packs} packs, ${stats.chunks} chunks`);
          info(`dedup ${stats.dedupRatio.toFixed(2)}x, compression ${stats.compressionRatio.toFixed(2)}x`);
        }
      });
    });
}
