/** holdfast pool init DIR | holdfast pool stats --pool DIR [--json] */
import type { Command } from 'commander';
import { Pool } from '../../pool/pool.js';
import { DEFAULT_COMPRESSION_LEVEL, MAX_COMPRESSION_LEVEL } from '../../pool/pool-config.js';
import { HoldfastError } from '../../core/errors.js';
import { formatBytes } from '../../core/units.js';
import { info, printJson } from '../output.js';
import { withPool } from '../pool-option.js';

export function registerPool(program: Command): void {
  const pool = program.command('pool').description('create and inspect storage pools');
  pool
    .command('init')
    .argument('<dir>', 'directory for the new pool (created if missing; must be empty)')
    .option('--compression-level <n>', `zstd level of stored chunks, 0 (raw) to ${MAX_COMPRESSION_LEVEL}`, String(DEFAULT_COMPRESSION_LEVEL))
    .option('--json', 'machine-readable output')
    .description('create a storage pool in a directory')
    .action(async (dir: string, opts: { compressionLevel: string; json?: boolean }) => {
      const level = Number(opts.compressionLevel);
      if (!/^\d+$/.test(opts.compressionLevel) || level > MAX_COMPRESSION_LEVEL) {
        throw new HoldfastError('BAD_ARGUMENT', `--compression-level '${opts.compressionLevel}' must be a whole number from 0 to ${MAX_COMPRESSION_LEVEL}`);
      }
      const config = await Pool.init(dir, { compressionLevel: level });
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
